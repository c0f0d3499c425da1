"""A run split into chain groups runs them in one sweep loop (issue 16 follow-up): its draws are
bit for bit those of each group run alone from its spawned seed (what a Ray task runs), for
every part kind; watchers see the draws a block at a time as they come; and the grouped run's
marginals still match exact enumeration.

GROUP_CELLS is lowered so that small models split into several uneven groups."""

import numpy as np
import pytest

import ebmlang
from ebmlang.infer import groups
from exact import exact_marginals
from test_sampler_exact import marginal_errors

MH_SPIN = """
var x[i in 0..2] : real
var s[i in 0..2] : spin
energy e[i in 0..2] : x[i] ^ 4 - x[i] * s[i]
factor c[i in 0..1] : 0.5 * s[i] * s[i + 1]
sampler x : mh
"""
WOLFF = """
var s[i in 0..3, j in 0..3] : spin
factor right[i in 0..3, j in 0..3] : 0.4 * s[i, j] * s[i, (j + 1) % 4]
factor down[i in 0..3, j in 0..3]  : 0.4 * s[i, j] * s[(i + 1) % 4, j]
factor field[i in 0..3, j in 0..3] : 0.1 * s[i, j]
sampler s : wolff
"""
INPUTS = """
input y[i in 0..3] : spin
var x[i in 0..3] : spin
factor keep[i in 0..3] : 0.8 * x[i] * y[i]
factor chain[i in 0..2] : 0.6 * x[i] * x[i + 1]
"""


def _case(name):
    """(model, extra sample kwargs) of each part kind."""
    ex = "examples/"
    if name == "table":                       # compiled table kernels, blocks fused by runs
        return ebmlang.load(ex + "ising.ebm", L=8), {}
    if name == "categorical":                 # compiled kernel over cat(3)
        return ebmlang.load(ex + "potts.ebm", L=5), {}
    if name == "fused":                       # the fused matrix-product sweep (RBM)
        return ebmlang.load(ex + "rbm.ebm", N=6, M=4), {}
    if name == "gaussian_mixed":              # numpy Gaussian parts beside contraction parts
        return ebmlang.load(ex + "grbm.ebm", N=4, M=3), {}
    if name == "mh":                          # adaptive MH (per-group scales) + compiled spins
        return ebmlang.compile(MH_SPIN), {}
    if name == "default_hmc":                 # HMC by default for x (non-Gaussian), spins compiled
        return ebmlang.compile(MH_SPIN.replace("sampler x : mh\n", "")), {}
    if name == "hmc":                         # the joint HMC move, its step size per group
        return ebmlang.load(ex + "chain_hmc.ebm", N=5), {}
    if name == "wolff":                       # cluster moves, Wolff's step count per group
        return ebmlang.compile(WOLFF), {}
    if name == "swendsen_wang":
        return ebmlang.compile(WOLFF.replace("wolff", "swendsen_wang")), {}
    if name == "clamp":                       # clamped cells, one row per chain
        m = ebmlang.load(ex + "ising.ebm", L=4)
        clamp = np.full((11, 16), np.nan)
        clamp[::2, 3] = 1.0
        clamp[1::2, 5] = -1.0
        return m, {"clamp": clamp}
    if name == "inputs":                      # inputs, one row per chain
        rows = np.where(np.random.default_rng(1).random((11, 4)) < 0.5, -1.0, 1.0)
        return ebmlang.compile(INPUTS), {"inputs": rows}
    if name == "numpy":                       # the numpy reference backend
        return ebmlang.load(ex + "ising.ebm", L=4), {"backend": "numpy"}
    raise KeyError(name)


CASES = ["table", "categorical", "fused", "gaussian_mixed", "mh", "default_hmc", "hmc", "wolff",
         "swendsen_wang", "clamp", "inputs", "numpy"]


@pytest.mark.parametrize("name", CASES)
def test_grouped_run_is_each_group_run_alone(name, monkeypatch):
    """11 chains in groups of 4, 4 and 3 (GROUP_CELLS lowered): the draws equal, bit for bit, the
    groups' own runs joined; MH acceptance and the HMC summary are the groups' chain-weighted
    means. 40 burn-in sweeps cover MH's adaptation windows (every 25)."""
    model, kw = _case(name)
    monkeypatch.setattr(groups, "GROUP_CELLS", 4 * model.checked.n_state - 1)
    sizes = groups.chain_groups(model, 11)
    assert sizes == [4, 4, 3], sizes
    run = dict(draws=15, burn_in=40, thin=2, backend=kw.get("backend"))
    got = model.sample(chains=11, seed=21, inputs=kw.get("inputs"), clamp=kw.get("clamp"), **run)
    alone = []
    for n, sd, i, c in zip(sizes, groups.seeds(21, len(sizes)),
                           groups.rows(kw.get("inputs"), sizes), groups.rows(kw.get("clamp"), sizes)):
        alone.append(model.sample(chains=n, seed=sd, inputs=i, clamp=c, **run))
    np.testing.assert_array_equal(got.full, np.concatenate([s.full for s in alone]))
    w = np.asarray(sizes) / sum(sizes)
    assert set(got.acceptance) == set(alone[0].acceptance)
    for fam, rate in got.acceptance.items():
        assert rate == pytest.approx(np.dot(w, [s.acceptance[fam] for s in alone]), rel=1e-12)
    if name == "mh":
        assert 0 < got.acceptance["x"] < 1
    if name == "hmc":
        assert got.gradient.acceptance == pytest.approx(
            np.dot(w, [s.gradient.acceptance for s in alone]), rel=1e-12)
        assert got.gradient.divergent == sum(s.gradient.divergent for s in alone)


def test_watchers_see_grouped_blocks_as_they_come(monkeypatch):
    """keep=False over 3 groups: the watchers get draws 0, 5, 10, ... in blocks of 5 while the
    run goes on (each block's draws are those of the kept run), and nothing is held: the
    result has no draws."""
    import ebmlang.infer.sample as S
    model = ebmlang.load("examples/ising.ebm", L=4)
    monkeypatch.setattr(groups, "GROUP_CELLS", 3 * 16)
    kw = dict(draws=23, chains=8, burn_in=3, seed=2)
    kept = model.sample(**kw)
    monkeypatch.setattr(S, "CHUNK_CELLS", 5 * 8 * 16)
    seen = []
    out = model.sample(keep=False, watch=[lambda k, xs: seen.append((k, xs.copy()))], **kw)
    assert out.full is None
    assert [k for k, _ in seen] == [0, 5, 10, 15, 20]
    assert max(xs.shape[1] for _, xs in seen) == 5
    np.testing.assert_array_equal(np.concatenate([xs for _, xs in seen], axis=1), kept.full)


@pytest.mark.parametrize("name", ["potts", "wolff"])
def test_grouped_marginals_match_enumeration(name, monkeypatch):
    """12 chains in 4 groups, 1500 draws each: every ground marginal within 5 batch-means
    standard errors of the exact one (the same bar as test_sampler_exact; with ~18,000 draws
    a standard error is ~0.004, so a grouping bug that mixed or froze chains would fail)."""
    model = ebmlang.load("examples/potts.ebm", L=3) if name == "potts" else _case(name)[0]
    monkeypatch.setattr(groups, "GROUP_CELLS", 3 * model.checked.n_state)
    assert len(groups.chain_groups(model, 12)) == 4
    draws = model.sample(draws=1500, chains=12, burn_in=200, seed=13)
    for z, where in marginal_errors(model, draws, exact_marginals(model)):
        assert z < 5, (name, where)
