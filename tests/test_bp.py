"""Loopy belief propagation (ebmlang.infer.bp) against exact enumeration and the UAI 2014
published marginals: exact on trees, close on weakly coupled loops, honest (converged=False)
when it does not converge, and no NaN from hard zeros."""

from __future__ import annotations

import numpy as np
import pytest

import ebmlang
from ebmlang.errors import UserError
from ebmlang.infer.bp import loopy_bp
from ebmlang.infer.elimination import ground_factors, sampled_sizes
from ebmlang.infer.exact import log_partition
from ebmlang.io.uai import read_marginals
from exact import exact_marginals
from test_uai import SHARED

SCHEDULES = ("parallel", "residual")

CHAIN = """
var x[i in 0..5] : cat(3)
var b : bool
factor pair[i in 0..4] : 0.7 * (x[i] == x[i + 1]) + 0.3 * x[i] * x[i + 1] - 0.4
factor field[i in 0..5] : 0.2 * (i - 2) * x[i]
factor last : 1.1 * b * (x[5] == 2)
"""

# a star: the centre reads every leaf, with a hard zero (c == 2 needs l[0] == 1)
STAR = """
var c : cat(3)
var l[i in 0..4] : bool
factor arm[i in 0..4] : (0.5 + 0.3 * i) * l[i] * (c - 1)
factor leaf[i in 0..4] : -0.3 * i * l[i]
factor rule : log((c != 2) or (l[0] == 1))
"""

# a 3 x 3 grid of spins with weak couplings (|J| <= 0.25) and fields
WEAK = """
var s[i in 0..2, j in 0..2] : spin
factor right[i in 0..2, j in 0..1] : 0.25 * (1 - 0.3 * i) * s[i, j] * s[i, j + 1]
factor down[i in 0..1, j in 0..2] : -0.2 * (1 - 0.2 * j) * s[i, j] * s[i + 1, j]
factor h[i in 0..2, j in 0..2] : 0.3 * (i - j) * s[i, j] + 0.1
"""


def _bp(model, **kw):
    x0 = np.zeros((1, model.checked.n_state))
    tables, const = ground_factors(model, x0)
    result = loopy_bp(tables, sampled_sizes(model), **kw)
    return result, const


def _errors(model, result, const):
    exact = exact_marginals(model)
    err = max(np.abs(result.marginals[v] - p).max() for v, p in exact.items())
    return err, abs(result.log_z + const - log_partition(model))


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("src", [CHAIN, STAR], ids=["chain", "star"])
def test_bp_is_exact_on_trees(src, schedule):
    """On a tree BP's fixed point is the exact marginals and the Bethe free energy is exact,
    so both agree with enumeration to rounding (tol 1e-12 on the messages, damping 0.5)."""
    model = ebmlang.compile(src)
    result, const = _bp(model, tol=1e-12, schedule=schedule)
    assert result.converged and result.max_residual < 1e-12
    marg_err, logz_err = _errors(model, result, const)
    assert marg_err < 1e-8 and logz_err < 1e-8
    for p in result.marginals.values():
        assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1, abs=1e-12)


def test_hard_zeros_give_zeros_not_nan():
    """The star's hard zero: P(c = 2, l[0] = 0) = 0 exactly; BP's marginals stay finite and put
    probability where enumeration does, for every damping."""
    model = ebmlang.compile(STAR)
    for damping in (0.0, 0.5, 0.9):
        result, const = _bp(model, damping=damping, tol=1e-12)
        assert result.converged and np.isfinite(result.log_z)
        assert _errors(model, result, const)[0] < 1e-8


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_weak_loops_are_close(schedule):
    """Loopy BP's error falls with the coupling strength (Ihler et al. 2005); on this weakly
    coupled 3 x 3 grid it measured 6.3e-4 in the marginals and 2.2e-3 in log Z: asserted at
    about 2x those, and both schedules reach the same fixed point."""
    model = ebmlang.compile(WEAK)
    result, const = _bp(model, tol=1e-12, schedule=schedule)
    assert result.converged
    marg_err, logz_err = _errors(model, result, const)
    assert marg_err < 1.5e-3 and logz_err < 5e-3
    other, _ = _bp(model, tol=1e-12, schedule=SCHEDULES[schedule == "parallel"])
    for v, p in result.marginals.items():
        assert np.abs(p - other.marginals[v]).max() < 1e-9


def test_variables_no_table_reads_are_uniform():
    tables = {(0, 1): np.array([[0.0, 1.0], [2.0, -np.inf]])}
    result = loopy_bp(tables, {0: 2, 1: 2, 7: 3}, tol=1e-12)
    assert np.allclose(result.marginals[7], 1 / 3)
    z = np.exp([0.0, 1.0, 2.0]).sum()
    assert np.allclose(result.marginals[0], [(1 + np.e) / z, np.exp(2) / z])
    assert result.log_z == pytest.approx(np.log(z) + np.log(3), abs=1e-12)


FRUSTRATED = """
var s[i in 0..3] : spin
factor ring[i in 0..3] : -3.0 * s[i] * s[(i + 1) % 4]
factor diag : -3.0 * s[0] * s[2]
factor h[i in 0..3] : 0.4 * (i + 1) * s[i]
"""


def test_non_convergence_is_reported():
    """A strongly frustrated loop (antiferromagnetic couplings of 3 round odd cycles) without
    damping does not settle in 20 flooding iterations: converged is False, and max_residual
    says by how much."""
    model = ebmlang.compile(FRUSTRATED)
    result, _ = _bp(model, damping=0.0, max_iter=20, tol=1e-6, schedule="parallel")
    assert not result.converged and result.iterations == 20 and result.max_residual >= 1e-6
    assert all(np.all(np.isfinite(p)) for p in result.marginals.values())
    result, _ = _bp(model, max_iter=1, tol=1e-12, schedule="residual")
    assert not result.converged and result.iterations == 1


def test_every_state_impossible_is_a_user_error():
    tables = {(0, 1): np.array([[0.0, -np.inf], [-np.inf, 0.0]]), (0,): np.array([0.0, -np.inf]),
              (1,): np.array([-np.inf, 0.0])}
    with pytest.raises(UserError, match="probability 0"):
        loopy_bp(tables, {0: 2, 1: 2})


def test_bad_arguments():
    with pytest.raises(UserError, match="schedule"):
        loopy_bp({}, {0: 2}, schedule="random")
    with pytest.raises(UserError, match="damping"):
        loopy_bp({}, {0: 2}, damping=1.0)


# Regression bounds, not claims of accuracy: BP is a poor approximation on these strongly
# coupled grids. Measured on the published .MAR (max abs marginal error over the variables):
# Grids_15 (20 x 20) residual BP converges in 80 iterations with error 0.5667.
GRID_BOUNDS = {"Grids_15": 0.57}


@pytest.mark.skipif(not (SHARED / "Grids_15.uai").exists(), reason=f"no Grids_15.uai in {SHARED}")
@pytest.mark.parametrize("name", sorted(GRID_BOUNDS))
def test_uai_grid_error_against_published_marginals(name):
    path = SHARED / f"{name}.uai"
    model = ebmlang.load(path)
    result, _ = _bp(model, schedule="residual")
    assert result.converged
    index = dict(zip(model.ground_names(), model.state_ids()))
    mar = read_marginals(str(path) + ".MAR")
    err = max(np.abs(result.marginals[int(index[n])] - mar[v]).max()
              for v, n in enumerate(model.uai_names) if n is not None)
    assert err < GRID_BOUNDS[name]
