"""R-hat and bulk ESS against ArviZ's values (recorded here from arviz 0.23.4 for fixed inputs,
and compared live when arviz is installed)."""

import math

import numpy as np
import pytest

import ebmlang
from ebmlang.diagnostics import bulk_ess, split_rhat, summarize, warnings_for


def _cases():
    rng = np.random.default_rng(0)
    ar1 = np.zeros((4, 500))
    for c in range(4):
        e = rng.standard_normal(500)
        for t in range(1, 500):
            ar1[c, t] = 0.9 * ar1[c, t - 1] + e[t]
    shift = rng.standard_normal((4, 300))
    shift[0] += 0.5
    short = rng.standard_normal((2, 50))
    binary = (rng.random((3, 400)) < 0.3).astype(float)
    return {"ar1": ar1, "shift": shift, "short": short, "binary": binary}


# (rank-normalized split R-hat, bulk ESS) from arviz.rhat(method="rank"), arviz.ess(method="bulk")
ARVIZ = {
    "ar1": (1.0380599411332447, 85.69274888463413),
    "shift": (1.025840706841694, 177.73593055214175),
    "short": (1.0055261600894279, 109.81559333358167),
    "binary": (1.0004295393037799, 1213.0672963993588),
}


@pytest.mark.parametrize("name", sorted(ARVIZ))
def test_matches_recorded_arviz_values(name):
    x = _cases()[name]
    rhat, ess = ARVIZ[name]
    assert split_rhat(x) == pytest.approx(rhat, rel=1e-10)
    assert bulk_ess(x) == pytest.approx(ess, rel=1e-9)


@pytest.mark.parametrize("name", sorted(ARVIZ))
def test_matches_live_arviz(name):
    az = pytest.importorskip("arviz")
    x = _cases()[name]
    assert split_rhat(x) == pytest.approx(float(az.rhat(x, method="rank")), rel=1e-10)
    assert bulk_ess(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-9)


def test_constant_draws_have_no_rhat():
    assert math.isnan(split_rhat(np.ones((4, 100))))


def test_sample_summary_flags_unmixed_chains():
    """Two wells far apart: chains started at random stay in their well, R-hat says so (Gibbs
    alone: one Swendsen-Wang sweep would flip the whole star at once)."""
    model = ebmlang.compile("var x : spin\nvar y[i in 0..5] : spin\n"
                            "factor tie[i in 0..5] : 6 * x * y[i]\nstat m = x\n"
                            "sampler x : gibbs\nsampler y : gibbs\n")
    draws = model.sample(draws=200, chains=4, burn_in=10, seed=0)
    rows = summarize(draws)
    names = [r[0] for r in rows]
    assert names == ["energy", "m"]
    m_rhat = rows[1][2]
    assert m_rhat > 1.01 and any("R-hat of m" in w for w in warnings_for(rows))


def test_mixed_chains_pass():
    model = ebmlang.compile("var x[i in 0..3] : bool\nfactor f[i in 0..2] : 0.3 * x[i] * x[i + 1]"
                            "\nstat n = sum(i in 0..3) x[i]\n")
    rows = summarize(model.sample(draws=2000, chains=4, seed=1))
    assert all(r[2] < 1.01 for r in rows) and not warnings_for(rows)
    assert all(r[3] > 1000 for r in rows)
