"""Kept draws (`infer.chains.Kept`): each draw stored cast to the narrow dtype, kept or
streamed a block at a time, equals the state cast, exactly."""

import numpy as np
import pytest

from ebmlang.infer.chains import Kept


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float64])
@pytest.mark.parametrize("chains", [1, 5])
def test_kept_draws_are_the_states_cast(dtype, chains):
    rng = np.random.default_rng(3)
    states = rng.integers(-100, 101, size=(7, chains, 11)).astype(np.float64)
    seen = []
    kept = Kept(chains, 7, 11, dtype, True, [], 3)
    streamed = Kept(chains, 7, 11, dtype, False, [lambda k, xs: seen.append(xs.copy())], 3)
    for x in states:
        kept.add(x)
        streamed.add(x)
    streamed.flush()
    want = states.transpose(1, 0, 2).astype(dtype)
    np.testing.assert_array_equal(kept.all, want)
    np.testing.assert_array_equal(np.concatenate(seen, axis=1), want)
    assert kept.all.dtype == dtype
