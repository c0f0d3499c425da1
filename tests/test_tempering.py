"""Parallel tempering against exact answers: enumeration for finite models (5 batch-means
standard errors per marginal, as test_sampler_exact does), closed forms and quadrature for real
ones; the ladder frozen after burn-in; the flags of `ebmlang sample` and `ebmlang fit`.

Only the b = 1 replicas are kept, so a wrong swap rule (a sign, a missing beta) or a tempered
conditional that is not the conditional raised to b moves the kept marginals by far more than
5 standard errors at these sizes.
"""

import numpy as np
import pytest
from scipy.integrate import quad

import ebmlang
from ebmlang.infer import tempering
from ebmlang.cli.app import main
from exact import exact_marginals
from test_sampler_exact import batch_se, compile_case, marginal_errors

# a frustrated spin glass: couplings of both signs on a small graph, a field on a few spins
GLASS = """
var s[i in 0..7] : spin
param J[i in 0..7, j in 0..7] = normal(0, 1.2)
param h[i in 0..7] = 0
factor pair[i in 0..7, j in 0..7 where i < j and (j - i) % 2 == 1] : J[i, j] * s[i] * s[j]
factor field[i in 0..7] : h[i] * s[i]
"""

# bool variables with couplings and fields (a fully visible Boltzmann machine)
BOOLS = """
var x[i in 0..6] : bool
param W = 1.3
param b = -0.8
factor pair[i in 0..6, j in 0..6 where i < j and (i + j) % 2 == 1] : W * x[i] * x[j]
factor bias[i in 0..6] : b * x[i]
"""


def _check_marginals(model, draws, inputs=None, label=""):
    for z, where in marginal_errors(model, draws, exact_marginals(model, inputs)):
        assert z < 5, (label, where)


@pytest.mark.parametrize("name", ["ising_torus", "potts", "denoise", "threeway", "rbm"])
def test_tempered_marginals_match_enumeration(name, tmp_path):
    """Fields, Potts factors, inputs, bool couplings, latents, on the compiled backend."""
    model, inputs = compile_case(name, tmp_path)
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=11, inputs=inputs,
                         tempering=4)
    assert draws.ladder[0] == 1.0 and len(draws.swap_acceptance) == 3
    _check_marginals(model, draws, inputs, name)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_spin_glass_and_bool_couplings(backend):
    """A frustrated spin glass (param per edge: the compiled backend's per-chain tgibbs kernel)
    and a Boltzmann machine of bools, with the numpy reference beside the compiled one."""
    for src in (GLASS, BOOLS):
        model = ebmlang.compile(src)
        if "h[i]" in src:
            model.params["h"] = np.linspace(-0.5, 0.5, 8)
        draws = model.sample(draws=3000, chains=4, burn_in=300, seed=3, tempering=5,
                             tempering_min=0.2, backend=backend)
        _check_marginals(model, draws, label=backend)


def test_tempering_with_clamped_cells(tmp_path):
    """Clamps carry into every replica: the free cells sample the conditional given them."""
    model, _ = compile_case("ising_torus", tmp_path)
    clamp = np.full(9, np.nan)
    clamp[[0, 4]] = [1.0, -1.0]
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=5, clamp=clamp, tempering=3)
    x, p = ebmlang.infer.exact.probabilities(model)
    keep = (x[:, 0] == 1) & (x[:, 4] == -1)
    p = np.where(keep, p, 0.0) / p[keep].sum()
    assert np.all(draws.full[:, :, 0] == 1) and np.all(draws.full[:, :, 4] == -1)
    for i in range(9):
        ind = (draws.full[:, :, i] == 1).astype(float)
        exact = p[x[:, i] == 1].sum()
        se = max(batch_se(ind), np.sqrt(exact * (1 - exact) / ind.size), 1e-4)
        assert abs(ind.mean() - exact) < 5 * se, (i, ind.mean(), exact)


GMRF = """
const N = 5
var x[i in 0..N-1] : real
energy self[i in 0..N-1] : 0.5 * x[i] ^ 2 - 0.3 * x[i]
energy chain[i in 0..N-2] : -0.45 * x[i] * x[i + 1]
"""


def test_gaussian_model_tempered_moments():
    """Exact Gaussian updates at precision b * Q: the b = 1 draws have mean Q^-1 h and
    covariance Q^-1."""
    model = ebmlang.compile(GMRF)
    assert model.methods["x"][0] == "gaussian"
    draws = model.sample(draws=4000, chains=4, burn_in=300, seed=0, tempering=4)
    x = draws["x"]
    q = np.eye(5) - 0.45 * (np.eye(5, k=1) + np.eye(5, k=-1))
    cov = np.linalg.inv(q)
    mean = cov @ np.full(5, 0.3)
    for i in range(5):
        m = x[:, :, i]
        assert abs(m.mean() - mean[i]) < 5 * batch_se(m), (i, m.mean(), mean[i])
        for j in range(i, 5):
            prod = (x[:, :, i] - mean[i]) * (x[:, :, j] - mean[j])
            assert abs(prod.mean() - cov[i, j]) < 5 * batch_se(prod), (i, j)


WELL = """
var x : real
energy well : 4 * (x ^ 2 - 1) ^ 2 - 0.5 * x
"""


def test_mh_double_well_against_quadrature():
    """Random-walk MH on b * log p in every replica; a tilted double well exp(-4 (x^2 - 1)^2
    + x / 2): P(x > 0), E[x] and E[x^2] from quadrature."""
    model = ebmlang.compile(WELL)
    assert model.methods["x"][0] == "mh"
    draws = model.sample(draws=10000, chains=4, burn_in=1000, seed=1, tempering=4,
                         tempering_min=0.15)
    x = draws["x"]
    density = lambda t: np.exp(-4 * (t ** 2 - 1) ** 2 + 0.5 * t)  # noqa: E731
    z = quad(density, -np.inf, np.inf)[0]
    for fn in (lambda t: t, lambda t: t ** 2, lambda t: (t > 0).astype(float)):
        exact = sum(quad(lambda t: fn(np.asarray(t)) * density(t), lo, hi)[0]
                    for lo, hi in ((-np.inf, 0), (0, np.inf))) / z
        got = fn(x)
        assert abs(got.mean() - exact) < 5 * batch_se(got, 20), (got.mean(), exact)
    assert 0.2 < draws.acceptance["x"] < 0.7      # counted on the b = 1 replicas


def test_ladder_adapts_in_burn_in_and_is_frozen_after(monkeypatch, tmp_path):
    """Every sweep after burn-in runs at the final ladder; the ladder moved during burn-in."""
    seen = []
    step = tempering.Replicas.step

    def spy(self, parts, x, theta, rng, clamp=None):
        seen.append(self.ladder.copy())
        return step(self, parts, x, theta, rng, clamp)

    monkeypatch.setattr(tempering.Replicas, "step", spy)
    model, _ = compile_case("ising_torus", tmp_path)
    draws = model.sample(draws=200, chains=2, burn_in=300, seed=4, tempering=5)
    assert len(seen) == 500
    after = np.array(seen[300:])
    assert np.all(after == draws.ladder)
    assert not np.allclose(seen[0], draws.ladder)
    assert draws.ladder[0] == 1.0 and np.isclose(draws.ladder[-1], tempering.DEFAULT_MIN)
    assert np.all(np.diff(draws.ladder) < 0)


def test_swap_rates_equalize_in_burn_in(tmp_path):
    """After adaptation the pairs' swap rates are closer to each other than on the geometric
    ladder it started from (the same model, seed and length, burn-in 0 against 2000)."""
    model, _ = compile_case("ising_torus", tmp_path)
    fixed = model.sample(draws=2000, chains=4, burn_in=0, seed=6, tempering=5)
    tuned = model.sample(draws=2000, chains=4, burn_in=2000, seed=6, tempering=5)
    assert np.allclose(fixed.ladder, tempering.geometric(5, tempering.DEFAULT_MIN))
    assert np.ptp(tuned.swap_acceptance) < np.ptp(fixed.swap_acceptance)


def test_pcd_with_tempering_learns_the_coupling():
    """fit(tempering=3): J of a 4 x 4 open Ising lattice from 3000 exact draws at J = 0.4,
    within 4 standard errors of the MLE plus 0.01, as test_fit does without tempering."""
    from test_fit import ISING
    model = ebmlang.compile(ISING)
    model.params["J"] = 0.4
    x, p = ebmlang.infer.exact.probabilities(model)
    t = model.log_potential(x) / 0.4
    se = 1 / np.sqrt(3000 * (p @ t ** 2 - (p @ t) ** 2))
    rng = np.random.default_rng(5)
    data = x[rng.choice(len(x), size=3000, p=p)][:, model.state_ids()]
    learner = ebmlang.compile(ISING)
    learner.fit({"s": data.reshape(3000, 4, 4)}, method="pcd", epochs=15, batch_size=100,
                lr=0.05, chains=100, seed=2, tempering=3, tempering_min=0.3)
    assert abs(float(learner.params["J"]) - 0.4) < 4 * se + 0.01


def test_cli_reports_swaps_and_refuses_bad_ladders(tmp_path, capsys):
    path = tmp_path / "m.ebm"
    path.write_text(BOOLS)
    assert main(["sample", str(path), "-n", "200", "--seed", "1", "--tempering", "3",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "tempering: 3 replicas per chain" in out and "swap acceptance per neighbour pair" in out
    assert main(["sample", str(path), "-n", "20", "--tempering", "3",
                 "--tempering-min", "1.5"]) == 1
    assert "hottest inverse temperature must be in (0, 1)" in capsys.readouterr().err
    with pytest.raises(ebmlang.errors.UserError, match="method pl has none"):
        ebmlang.compile(BOOLS).fit({"x": np.zeros((4, 7))}, method="pl", tempering=2)


def test_cli_hints_tempering_and_warns_on_cut_ladders(tmp_path, capsys):
    """An R-hat warning ends with a one-line hint (tempering, or more replicas when tempered);
    a neighbour pair that hardly swaps is a warning under the tempering summary."""
    path = tmp_path / "m.ebm"
    path.write_text(BIMODAL)
    assert main(["sample", str(path), "-n", "200", "--chains", "8", "--seed", "1",
                 "--no-progress"]) == 0          # 8 chains: rarely all in one phase
    out = capsys.readouterr().out
    assert "warning: R-hat" in out and "hint: " in out and "try --tempering 8" in out
    assert main(["sample", str(path), "-n", "200", "--seed", "1", "--no-progress",
                 "--tempering", "2", "--tempering-min", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "warning: swap acceptance below 0.05 between replicas 0-1" in out
    assert "add replicas (--tempering R) or raise --tempering-min" in out
    path.write_text(BOOLS)
    assert main(["sample", str(path), "-n", "400", "--seed", "1", "--no-progress",
                 "--tempering", "3"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out and "hint" not in out


# two ordered phases no single-site sweep leaves (Gibbs alone: no cluster moves)
BIMODAL = """
var s[i in 0..11, j in 0..11] : spin
factor right[i in 0..11, j in 0..10] : 1.2 * s[i, j] * s[i, j + 1]
factor down[i in 0..10, j in 0..11] : 1.2 * s[i, j] * s[i + 1, j]
stat m = sum(i in 0..11, j in 0..11) s[i, j] / 144
sampler s : gibbs
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_readme_denoise_command_mixes(seed, capsys):
    """Issue 13, item 6: the README's denoise command finishes without an R-hat or a swap
    warning (seeds 1-5 gave energy R-hat 1.002-1.005 when the settings were chosen)."""
    from pathlib import Path
    examples = Path(__file__).resolve().parents[1] / "examples"
    assert main(["sample", str(examples / "denoise.ebm"), "--input",
                 str(examples / "data" / "noisy.csv"), "--tempering", "8",
                 "--tempering-min", "0.3", "--seed", str(seed), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "R-hat" in out and "warning" not in out, out
