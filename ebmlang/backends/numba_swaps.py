"""The replica exchange of parallel tempering, compiled: given F of every replica, decide the
swaps of one sweep's pairs and exchange the accepted states in place (the rule and the layout
are `infer.tempering`'s; this is its inner loop, a few microseconds instead of the dozen numpy
calls it took)."""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, error_model="numpy")
def swap_levels(x, F, log_u, gaps, first, chains, tried, accepted):
    """For the pairs k = first, first + 2, ... of levels (rows k * chains + c of x, level-major)
    swap chain c's states when log_u[k, c] < gaps[k] * (F[k + 1, c] - F[k, c]); F NaN counts
    as -inf. Counts the tries and acceptances per pair; returns the number of swaps."""
    levels = F.shape[0]
    n = x.shape[1]
    swaps = 0
    for k in range(first, levels - 1, 2):
        for c in range(chains):
            lo, hi = F[k, c], F[k + 1, c]
            lo = -math.inf if lo != lo else lo
            hi = -math.inf if hi != hi else hi
            tried[k] += 1
            if log_u[k, c] < gaps[k] * (hi - lo):
                accepted[k] += 1
                swaps += 1
                a, b = k * chains + c, (k + 1) * chains + c
                for i in range(n):
                    t = x[a, i]
                    x[a, i] = x[b, i]
                    x[b, i] = t
    return swaps
