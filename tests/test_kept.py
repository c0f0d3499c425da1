"""Kept draws (`infer.chains.Kept`): each draw stored cast to the narrow dtype, kept or
streamed a block at a time, equals the state cast, exactly: by numpy's cast, and by the
compiled parallel copy taken with many chains x cells (`backends.numba_store`)."""

import numpy as np
import pytest

from ebmlang.backends.numba_backend import PARALLEL_WORK
from ebmlang.infer.chains import Kept


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float64])
@pytest.mark.parametrize("chains,n,compiled", [(1, 11, True), (5, 11, True), (5, 13200, False),
                                               (5, 13200, True)])
def test_kept_draws_are_the_states_cast(dtype, chains, n, compiled):
    rng = np.random.default_rng(3)
    states = rng.integers(-100, 101, size=(7, chains, n)).astype(np.float64)
    seen = []
    kept = Kept(chains, 7, n, dtype, True, [], 3, compiled=compiled)
    streamed = Kept(chains, 7, n, dtype, False, [lambda k, xs: seen.append(xs.copy())], 3,
                    compiled=compiled)
    assert (kept._store is not None) == (compiled and chains * n >= PARALLEL_WORK)
    for x in states:
        kept.add(x)
        streamed.add(x)
    streamed.flush()
    want = states.transpose(1, 0, 2).astype(dtype)
    np.testing.assert_array_equal(kept.all, want)
    np.testing.assert_array_equal(np.concatenate(seen, axis=1), want)
    assert kept.all.dtype == dtype
