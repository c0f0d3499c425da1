"""AIS and map's annealing run the sampler's kernels at an inverse temperature (issue 14 item 1):
the compiled table kernels with tables built at beta, the fused matrix-product sweep with its
fields scaled by beta. Checked against exact answers: log Z by enumeration (or by summing the
RBM's hidden units in closed form), the MAP by enumeration; and the kernels that ran are the
ones `backends.choice` picks (so these are tests of the compiled paths, not of numpy)."""

import numpy as np
import pytest

import ebmlang
from ebmlang.backends.fused import FusedPart
from ebmlang.backends.numba_backend import CompiledPart
from ebmlang.backends.numeric import logsumexp
from ebmlang.infer.exact import enumerate_states
from ebmlang.infer.logz import ais
from ebmlang.infer.map import map_estimate
from ebmlang.infer.tempering import annealing_parts

RBM = """
const N = 5
const M = 12
var v[i in 0..N-1] : bool
latent h[j in 0..M-1] : bool
param W[i in 0..N-1, j in 0..M-1] = normal(0, 0.6)
param b[i in 0..N-1] = normal(0, 0.5)
param c[j in 0..M-1] = normal(0, 0.5)
factor pair[i in 0..N-1, j in 0..M-1] : W[i, j] * v[i] * h[j]
factor vis[i in 0..N-1] : b[i] * v[i]
factor hid[j in 0..M-1] : c[j] * h[j]
"""
CATEGORICAL = """
var z[i in 0..2, j in 0..2] : cat(3)
param J = 0.9
param g[k in 0..2] = normal(0, 0.5)
factor right[i in 0..2, j in 0..1] : J * (z[i, j] == z[i, j + 1])
factor down[i in 0..1, j in 0..2]  : J * (z[i, j] == z[i + 1, j])
factor colour[i in 0..2, j in 0..2] : g[z[i, j]]
"""
GLASS = """
var s[i in 0..3, j in 0..3] : spin
param A[i in 0..3, j in 0..3] = normal(0, 1)
param B[i in 0..3, j in 0..3] = normal(0, 1)
param h[i in 0..3, j in 0..3] = normal(0, 0.3)
factor right[i in 0..3, j in 0..3] : A[i, j] * s[i, j] * s[i, (j + 1) % 4]
factor down[i in 0..3, j in 0..3]  : B[i, j] * s[i, j] * s[(i + 1) % 4, j]
factor field[i in 0..3, j in 0..3] : h[i, j] * s[i, j]
"""


def _model(name):
    if name == "ising":            # 4 x 4 torus near critical: 65,536 states
        return ebmlang.load("examples/ising.ebm", L=4, beta=0.44), CompiledPart
    if name == "rbm":
        return ebmlang.compile(RBM), FusedPart
    if name == "categorical":
        return ebmlang.compile(CATEGORICAL), CompiledPart
    if name == "glass":
        return ebmlang.compile(GLASS), CompiledPart
    raise KeyError(name)


def _exact_log_z(name, model) -> float:
    if name == "rbm":              # 2^17 states: enumerate v, sum each h[j] in closed form
        v = np.array(np.meshgrid(*[[0, 1]] * 5, indexing="ij")).reshape(5, -1).T
        W, b, c = (np.asarray(model.params[k]) for k in "Wbc")
        return float(logsumexp(v @ b + np.logaddexp(0, v @ W + c).sum(axis=1)))
    return float(logsumexp(model.log_potential(enumerate_states(model))))


@pytest.mark.parametrize("name", ["ising", "rbm", "categorical"])
def test_ais_with_the_compiled_kernels_matches_the_exact_log_z(name):
    """The parts AIS sweeps are the compiled / fused ones; 200 runs of 300 steps. The delta-
    method SE of log mean w is sd(w / mean w) / sqrt(n); with an ESS above 50 it is itself
    accurate to ~15%, so 4 SEs keep a false alarm below 1e-3 for this fixed seed while a
    kernel at the wrong temperature (a bias of order 0.1-1 in log Z) fails."""
    model, kind = _model(name)
    parts = annealing_parts(model)
    assert all(isinstance(p, kind) for block in parts for p in block)
    x0 = np.zeros((1, model.checked.n_state))
    res = ais(model, x0, seed=3, chains=200, steps=300)
    assert res.ess > 50 and 0 < res.se < 0.2, res.detail
    assert abs(res.value - _exact_log_z(name, model)) < 4 * res.se


def test_compiled_and_numpy_ais_agree():
    """The same estimator by the numpy reference kernels and by the compiled ones: each
    within 4 of its SEs of the exact value, and of each other within 4 combined SEs."""
    model, _ = _model("categorical")
    exact = _exact_log_z("categorical", model)
    x0 = np.zeros((1, model.checked.n_state))
    runs = [ais(model, x0, seed=4, chains=200, steps=200, backend=b) for b in ("numpy", None)]
    for r in runs:
        assert abs(r.value - exact) < 4 * r.se
    assert abs(runs[0].value - runs[1].value) < 4 * np.hypot(runs[0].se, runs[1].se)


def _best(model) -> float:
    return float(np.max(model.log_potential(enumerate_states(model))))


@pytest.mark.parametrize("name", ["glass", "rbm", "categorical"])
def test_annealing_with_the_compiled_kernels_finds_the_map(name):
    """A 4 x 4 spin glass (65,536 states, frustrated), an RBM (fused) and a Potts model:
    annealing then ICM reaches the enumerated maximum of log p. The glass has a local optimum
    0.93 below the best that 4 chains of the default 500 sweeps miss for about half the seeds
    on either backend (numpy and compiled alike); 8 chains of 2000 sweeps found it for all
    8 seeds tried."""
    model, kind = _model(name)
    assert all(isinstance(p, kind) for block in annealing_parts(model) for p in block)
    res = map_estimate(model, method="anneal", seed=1, chains=8, sweeps=2000)
    assert res.method == "anneal"
    assert res.log_potential[0] == pytest.approx(_best(model), abs=1e-9)


def test_clamped_annealing_finds_the_conditional_map():
    """Cells clamped (the spin glass's first row): the best state among those agreeing with
    them, by enumeration."""
    model, _ = _model("glass")
    data = np.full((1, 16), np.nan)
    data[0, :4] = [1, -1, -1, 1]
    res = map_estimate(model, method="anneal", data=data, seed=2, chains=8, sweeps=2000)
    states = enumerate_states(model)
    keep = np.all(states[:, :4] == data[0, :4], axis=1)
    assert np.array_equal(res.states[0, :4], data[0, :4])
    assert res.log_potential[0] == pytest.approx(
        float(model.log_potential(states[keep]).max()), abs=1e-9)


def test_clamped_annealing_of_a_preactivation_model_falls_back_to_the_block_parts():
    """The free-energy RBM (the pre-activation scan) with clamped cells anneals by the compiled
    block parts (the scan would read a clamped cell's drawn value), and reaches the best state
    among those agreeing with the clamp, by enumeration of its 1,024 states."""
    from ebmlang.backends.preact import PreactPart
    model = ebmlang.load("examples/rbm_free_energy.ebm")
    assert isinstance(annealing_parts(model)[0][0], PreactPart)
    assert not any(isinstance(p, PreactPart)
                   for block in annealing_parts(model, clamped=True) for p in block)
    data = np.full((1, 10), np.nan)
    data[0, [0, 3, 7]] = [1, 0, 1]
    res = map_estimate(model, method="anneal", data=data, seed=0)
    states = enumerate_states(model)
    keep = np.all(states[:, [0, 3, 7]] == [1, 0, 1], axis=1)
    assert res.log_potential[0] == pytest.approx(
        float(model.log_potential(states[keep]).max()), abs=1e-9)


def test_check_says_where_the_tempered_tasks_run(capsys):
    from ebmlang.cli.app import main
    assert main(["check", "examples/ising.ebm", "--set", "L=4"]) == 0
    out = capsys.readouterr().out
    assert "tempered   parallel tempering, logz's AIS and map's annealing run the parts above" in out
    assert "tables built at beta" in out
