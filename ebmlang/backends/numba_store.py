"""Kept draws copied out of the state by a compiled loop, chains in parallel: the cast of each
chain's row into its slot of the draws array, read by the threads that just swept it. At 64
chains of 4096 spins, numpy's cast into the strided slot added 0.29 ms to a 0.35 ms sweep,
this one 0.13 ms (bench/RESULTS.md, issue 14 item 4). The values are numpy's cast (the stored
dtype holds every value exactly, `infer.sample.store_dtype`)."""

from numba import njit, prange


@njit(cache=True, error_model="numpy", parallel=True)
def store_rows(x, out, k):
    """out[c, k, :] = x[c, :] for every chain c (cast to out's dtype)."""
    for c in prange(x.shape[0]):
        row = out[c, k]
        for i in range(x.shape[1]):
            row[i] = x[c, i]
