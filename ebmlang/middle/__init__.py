"""The checked model made ground: sums split, reads lowered, the factor graph and blocks, symbolic conditionals."""
