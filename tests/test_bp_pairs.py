"""The binary pairwise flooding kernel (ebmlang.backends.numba_bp_pairs) against enumeration on
a tree and against the general kernel (numba_bp.flood) on loopy graphs: the same iteration in
another representation, so the two agree to rounding, converged or not."""

from __future__ import annotations

import numpy as np
import pytest

import ebmlang
from ebmlang.infer import bp
from ebmlang.infer.elimination import ground_factors, sampled_sizes
from ebmlang.infer.exact import log_partition
from exact import exact_marginals
from test_uai import SHARED

# a binary tree: a chain of spins with a branch, fields on every spin
TREE = """
var s[i in 0..5] : spin
var t : bool
factor chain[i in 0..4] : (0.9 - 0.35 * i) * s[i] * s[i + 1]
factor branch : -1.3 * t * s[2]
factor h[i in 0..5] : 0.25 * (i - 2) * s[i]
"""


def _tables(model):
    tables, const = ground_factors(model, np.zeros((1, model.checked.n_state)))
    return tables, sampled_sizes(model), const


def _general(tables, sizes, **kw):
    """loopy_bp with the pairwise kernel switched off: numba_bp's general flooding kernel."""
    keep = bp.pairwise
    bp.pairwise = lambda g: None
    try:
        return bp.loopy_bp(tables, sizes, **kw)
    finally:
        bp.pairwise = keep


def _grid(n, seed, scale):
    """An n x n grid of binary variables with random log tables (entries ~ scale * N(0, 1))."""
    rng = np.random.default_rng(seed)
    ids = {(i, j): i * n + j for i in range(n) for j in range(n)}
    tables = {(v,): rng.normal(0, scale, 2) for v in ids.values()}
    for (i, j), v in ids.items():
        for w in (ids.get((i + 1, j)), ids.get((i, j + 1))):
            if w is not None:
                tables[(v, w)] = rng.normal(0, scale, (2, 2))
    return tables, {v: 2 for v in ids.values()}


def test_pairwise_kernel_is_exact_on_a_binary_tree():
    """BP is exact on a tree: marginals and Bethe log Z equal enumeration to rounding."""
    model = ebmlang.compile(TREE)
    tables, sizes, const = _tables(model)
    assert bp.pairwise(bp.build(tables, sizes)) is not None
    for damping in (0.0, 0.5, 0.3):
        result = bp.loopy_bp(tables, sizes, damping=damping, tol=1e-13, schedule="parallel")
        assert result.converged
        exact = exact_marginals(model)
        assert max(np.abs(result.marginals[v] - p).max() for v, p in exact.items()) < 1e-9
        assert result.log_z + const == pytest.approx(log_partition(model), abs=1e-9)


@pytest.mark.parametrize("scale", [0.4, 1.5])
@pytest.mark.parametrize("damping", [0.0, 0.5, 0.7])
def test_pairwise_kernel_matches_the_general_kernel_on_loops(damping, scale):
    """Random 5 x 5 grids, weak (scale 0.4: converges) and strong (1.5: some runs do not),
    a fixed number of iterations and a convergence test: both kernels compute the same
    messages in float64 (ratios against log probabilities), so everything agrees to ~1e-12
    (measured); asserted to 1e-10."""
    tables, sizes = _grid(5, seed=7, scale=scale)
    assert bp.pairwise(bp.build(tables, sizes)) is not None
    for max_iter, tol in ((40, -1.0), (500, 1e-9)):
        kw = dict(damping=damping, max_iter=max_iter, tol=tol, schedule="parallel")
        new, old = bp.loopy_bp(tables, sizes, **kw), _general(tables, sizes, **kw)
        assert new.iterations == old.iterations and new.converged == old.converged
        assert new.max_residual == pytest.approx(old.max_residual, abs=1e-10)
        for v, p in old.marginals.items():
            assert np.abs(new.marginals[v] - p).max() < 1e-10
        assert new.log_z == pytest.approx(old.log_z, abs=1e-10)


def test_pairwise_kernel_applies_only_where_it_is_safe():
    """Non-binary variables, factors of three, hard zeros and log ranges near the overflow
    margin go to the general kernel, which still gives the answer."""
    tables, sizes = _grid(3, seed=1, scale=1.0)
    assert bp.pairwise(bp.build(tables, sizes)) is not None
    cases = [
        ({**tables, (0, 1): np.array([[0.0, -np.inf], [1.0, 0.0]])}, sizes),
        ({**tables, (0, 1, 2): np.zeros((2, 2, 2))}, sizes),
        ({**tables, (0,): np.zeros(3)}, {**sizes, 0: 3}),
        ({**tables, (0, 1): np.array([[400.0, -400.0], [0.0, 1.0]])}, sizes),
    ]
    for t, s in cases:
        assert bp.pairwise(bp.build(t, s)) is None
        result = bp.loopy_bp(t, s, schedule="parallel", max_iter=300)
        assert all(np.all(np.isfinite(p)) for p in result.marginals.values())


@pytest.mark.skipif(not (SHARED / "Grids_11.uai").exists(), reason=f"no Grids_11.uai in {SHARED}")
def test_pairwise_kernel_matches_the_general_kernel_on_a_uai_grid():
    """Grids_11 (10 x 10, strongly coupled, flooding BP does not converge): 200 damped
    iterations of both kernels agree to 1e-10 (measured 1e-13)."""
    model = ebmlang.load(SHARED / "Grids_11.uai")
    tables, sizes, _ = _tables(model)
    kw = dict(damping=0.5, max_iter=200, tol=-1.0, schedule="parallel")
    new, old = bp.loopy_bp(tables, sizes, **kw), _general(tables, sizes, **kw)
    assert not new.converged and new.max_residual == pytest.approx(old.max_residual, abs=1e-10)
    for v, p in old.marginals.items():
        assert np.abs(new.marginals[v] - p).max() < 1e-10
