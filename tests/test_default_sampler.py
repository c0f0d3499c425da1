"""The default sampler of a real family whose conditional is not Gaussian: its random-walk
MH update then HMC where the gradient exists (checked against 2-D quadrature, and a stiff
quartic's closed form), random-walk MH where it does not and under --tempering; `ebmlang
check` names the choice and its reason.
Tolerances come from the bulk ESS of the draws themselves (infer.diagnostics)."""

import numpy as np
import pytest

import ebmlang
from ebmlang.infer.diagnostics import bulk_ess

WELLS = """model wells
var x[i in 0..1] : real
energy well[i in 0..1] : (x[i] ^ 2 - 1) ^ 2
energy tie : -0.8 * tanh(x[0] * x[1])
"""


def grid_moments():
    """E[x0^2], E[x0^4], E[x0 x1], E[x0 > 0] of exp(-(wells) + 0.8 tanh(x0 x1)) on a
    400 x 400 grid over [-3.5, 3.5]^2 (the density there is below e^-40 at the edges; the
    midpoint rule's error is far below the Monte Carlo error)."""
    t = np.linspace(-3.5, 3.5, 401)
    a, b = np.meshgrid(t, t, indexing="ij")
    w = np.exp(-((a * a - 1) ** 2 + (b * b - 1) ** 2) + 0.8 * np.tanh(a * b))
    w /= w.sum()
    return {"x0^2": (w * a * a).sum(), "x0^4": (w * a ** 4).sum(), "x0 x1": (w * a * b).sum(),
            "x0 > 0": (w * (a > 0)).sum()}


def test_default_is_hmc_and_matches_quadrature():
    model = ebmlang.compile(WELLS)
    assert model.gradient_why["x"] is None             # the gradient exists
    assert model.methods["x"][0] == "mh"               # what the tasks without HMC run
    s = model.sample(draws=3000, chains=4, burn_in=500, seed=7)
    assert s.gradient is not None and s.gradient.kind == "hmc" and list(s.acceptance) == ["x"]
    x = s["x"]
    got = {"x0^2": x[:, :, 0] ** 2, "x0^4": x[:, :, 0] ** 4, "x0 x1": x[:, :, 0] * x[:, :, 1],
           "x0 > 0": (x[:, :, 0] > 0).astype(float)}
    for name, exact in grid_moments().items():
        v = got[name]
        # 4.5 standard errors of a mean from n_eff = bulk ESS effective draws: a false
        # failure rate below 1e-5 per moment
        tol = 4.5 * v.std() / np.sqrt(bulk_ess(v))
        assert abs(v.mean() - exact) < tol, (name, v.mean(), exact, tol)
    assert abs(s.gradient.acceptance - 0.8) < 0.08   # dual averaging's target
    # a quartic's leapfrog blows up at the jittered largest steps in the tails (about 1% of
    # moves here): rejected, counted, and the summary warns
    from ebmlang.report.text import sample_summary
    assert s.gradient.divergent == 0 or "divergent hmc moves" in sample_summary(s)


def test_stiff_quartic_chains_come_back_from_the_tail():
    """exp(-50 x^4): E[x^4] = 1 / (4 * 50) (d log Z / da = -1 / (4a)). The chains start at
    N(0, 1), deep in the tail, where a leapfrog step the bulk allows diverges at every move;
    HMC alone left a chain there (E[x^4] 5.5x the exact value at this seed); the MH update
    before each move brings it back."""
    model = ebmlang.compile("var x : real\nparam a = 50.0\nenergy q : a * x ^ 4\n")
    s = model.sample(draws=1000, chains=100, burn_in=500, seed=0)
    v = s["x"] ** 4
    assert (np.ptp(s["x"], axis=1) > 0).all()                  # no chain stuck
    # |x|^4 ~ Gamma(1/4, 1/a): sd 2 E[x^4]; 4.5 standard errors from the bulk ESS
    assert abs(v.mean() - 1 / 200) < 4.5 * 2 / 200 / np.sqrt(bulk_ess(v))


@pytest.mark.parametrize("body, why", [
    ("abs(x) + 0.5 * x ^ 2", "well has abs of x"),
    ("max(x, 0) + 0.5 * x ^ 2", "well has max of x"),
    ("(x > 0) * x ^ 4 + x ^ 2", "well has a comparison"),
])
def test_no_gradient_falls_back_to_mh_and_check_says_why(body, why):
    model = ebmlang.compile(f"var x : real\nenergy well : {body}\n")
    assert model.methods["x"][0] == "mh" and why in model.gradient_why["x"]
    s = model.sample(draws=20, chains=2, seed=0)
    assert s.gradient is None and "x" in s.acceptance
    text = model.sampler_text("x")
    assert text.startswith("random-walk MH") and why in text, text


def test_check_names_the_default_and_the_gradient_backend(tmp_path, capsys):
    from ebmlang.cli.app import main
    path = tmp_path / "wells.ebm"
    path.write_text(WELLS)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "HMC, 10 leapfrog steps" in out and "gradient compiled by numba" in out
    assert "the default for a real family whose conditional is not Gaussian" in out
    assert "numba gradient" in out


def test_tempering_runs_default_hmc_families_by_mh():
    """Under --tempering the default-hmc family is sampled by random-walk MH in each
    replica (the summary reports an MH acceptance and no gradient move); a declared hmc
    family is still refused."""
    model = ebmlang.compile(WELLS)
    s = model.sample(draws=200, chains=2, burn_in=100, seed=1, tempering=3)
    assert s.gradient is None and 0.05 < s.acceptance["x"] < 0.95
    from ebmlang.report.text import sample_summary
    assert "MH    x" in sample_summary(s) and "HMC" not in sample_summary(s)
    from ebmlang.errors import UserError
    declared = ebmlang.compile(WELLS + "sampler x : hmc(steps=5)\n")
    with pytest.raises(UserError, match="tempering"):
        declared.sample(draws=10, chains=2, seed=0, tempering=3)
