"""The compiled Gibbs kernels' draws for a fixed seed against a reference path, value for value.

A kernel's generator is xoroshiro128+ seeded per chain from the caller's numpy Generator
(`numba_kernels._seed`, `_uniform`); given the same seed words, the reference below draws the
same uniforms in the same order (a block's variables, in its part's order) and picks the value
from the numpy backend's local log-potentials (`runtime.local_logits`, the reference backend)
by the same rule as `numba_kernels._draw`. The variables of a block share no term instance, so
updating them one after another equals drawing each from the block's starting state. Float
sums in another order can differ in the last bits, which moves a draw only when u falls within
about 1e-15 of a boundary: with a few thousand draws, never for a fixed seed. So these tests
pin the kernels' exact behaviour (every index and offset, e.g. after making them unsigned),
where the statistical tests (test_numba_backend) would only notice a wrong distribution.
"""

import math

import numpy as np
import pytest

from ebmlang.backends import numba_kernels
from ebmlang.backends.lanes import seed_words
from ebmlang.backends.numba_backend import CompiledPart, compiled_parts
from ebmlang.backends.runtime import local_logits
from ebmlang.infer.sample import init_state
from test_sampler_exact import MODELS, compile_case

CHAINS, SWEEPS = 3, 4


def _ref_draw(logits: np.ndarray, u: float) -> int:
    """numba_kernels._draw in numpy: the softmax with the log-sum-exp shift, NaN weights 0."""
    K = len(logits)
    if K == 2:
        d = logits[1] - logits[0]
        if d == d:
            return 1 if u * (1.0 + math.exp(d)) >= 1.0 else 0
    w = np.exp(logits - (logits.max() if np.isfinite(logits.max()) else 0.0))
    w[np.isnan(w)] = 0.0
    total = w.sum()
    if not total > 0.0:
        return min(int(u * K), K - 1)
    acc = np.cumsum(w[:-1])
    below = np.nonzero(u * total < acc)[0]
    return int(below[0]) if len(below) else K - 1


def _reference(part, numpy_part, x, theta, seeds) -> None:
    """One update of `part`'s variables in every chain, in place, as the kernel draws it."""
    logits = local_logits(numpy_part, x, theta)
    for c in range(x.shape[0]):
        s0, s1 = numba_kernels._seed(seeds[c, 0], seeds[c, 1])
        for a, i in enumerate(part.ids):
            u, s0, s1 = numba_kernels._uniform(np.uint64(s0), np.uint64(s1))
            x[c, i] = part.values[_ref_draw(logits[c, a], u)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_direct_kernel_draws_as_the_numpy_conditionals(name, tmp_path):
    """gibbs_<family> (the generated direct kernel over the CSR incidence arrays), serial and
    parallel chains, against the reference for SWEEPS sweeps of every block."""
    model, inputs = compile_case(name, tmp_path)
    parts, numpy_parts = compiled_parts(model, tabulate=False), model.parts()
    theta = model.params.theta
    x0 = init_state(model, CHAINS, np.random.default_rng(1), inputs)
    compiled = 0
    for parallel in (False, True):
        x, want, rng = x0.copy(), x0.copy(), np.random.default_rng(2)
        for _ in range(SWEEPS):
            for block, numpy_block in zip(parts, numpy_parts):
                for part, numpy_part in zip(block, numpy_block):
                    if not isinstance(part, CompiledPart):
                        continue
                    assert part.table is None
                    seeds = seed_words(rng, CHAINS)
                    part._fns[parallel](x, theta, seeds, *part._args)
                    _reference(part, numpy_part, want, theta, seeds)
                    compiled += 1
                    assert np.array_equal(x, want), (name, part.family, parallel)
    assert compiled


def test_hand_written_stream_kernel_draws_as_the_generated_one(tmp_path):
    """numba_kernels.tabled (the stream kernel for blankets or domains wider than MAX_UNROLL,
    with loops where the generated kernels unroll) on the tables of parts that also have a
    generated stream kernel: the same codes, the same cumulative-probability rule, so the same
    draws bit for bit (3 values, up to 4 neighbours, two patterns on the open lattice)."""
    model, _ = compile_case("potts", tmp_path)
    parts = compiled_parts(model, tabulate=True, layout="stream")
    theta = model.params.theta
    x0 = init_state(model, CHAINS, np.random.default_rng(3), None)
    x, want, rng = x0.copy(), x0.copy(), np.random.default_rng(4)
    tabled = 0
    for _ in range(SWEEPS):
        for block in parts:
            for part in block:
                t = part.table
                assert t is not None and t.runs is None
                t.refresh(part._build, theta, part.values, part.inc)
                seeds = seed_words(rng, CHAINS)
                part._fns[False](x, theta, seeds, *part._args)
                numba_kernels.tabled(want, theta, seeds, part.ids, part.values, t.pat, t.rel,
                                     t.coef, t.wid, t.cst, t.pbase, t.cdf)
                tabled += 1
                assert np.array_equal(x, want)
    assert tabled and not np.array_equal(x, x0)
