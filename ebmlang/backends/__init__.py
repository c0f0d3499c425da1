"""What runs: generated numpy kernels (the reference), compiled numba parts, fused contractions."""
