"""Learning against exact answers.

Reference maximum-likelihood solutions are computed here independently of ebmlang (plain numpy
enumeration and scipy), and tolerances come from the sampling error of the data (the inverse
Fisher information, computed exactly by enumeration) or from the stochastic-gradient noise.
"""

import itertools
import json

import numpy as np
import pytest
from scipy.optimize import minimize

import ebmlang
from ebmlang.cli.app import main

FVBM = """
const N = 5
var x[i in 0..N-1] : bool
param W[i in 0..N-1, j in 0..N-1] = 0
param b[i in 0..N-1] = 0
factor pair[i in 0..N-1, j in 0..N-1 where i < j] : W[i, j] * x[i] * x[j]
factor bias[i in 0..N-1] : b[i] * x[i]
"""

STATES5 = np.array(list(itertools.product([0, 1], repeat=5)), float)
PAIRS = [(i, j) for i in range(5) for j in range(i + 1, 5)]


def _features(s):
    """Sufficient statistics of the FVBM: x_i x_j for i < j, then x_i."""
    return np.column_stack([s[:, i] * s[:, j] for i, j in PAIRS] + [s[:, i] for i in range(5)])


def _independent_mle(data):
    """Exact ML by enumeration and L-BFGS, written without ebmlang."""
    F = _features(STATES5)
    mean = _features(data).mean(axis=0)

    def nll(t):
        lp = F @ t
        top = lp.max()
        logz = top + np.log(np.exp(lp - top).sum())
        p = np.exp(lp - logz)
        return logz - mean @ t, F.T @ p - mean

    res = minimize(nll, np.zeros(F.shape[1]), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000})
    return res.x, -res.fun


@pytest.fixture(scope="module")
def fvbm_data():
    rng = np.random.default_rng(0)
    W = np.triu(rng.normal(0, 1, (5, 5)), 1)
    b = rng.normal(0, 0.5, 5)
    lp = np.einsum("si,ij,sj->s", STATES5, W, STATES5) + STATES5 @ b
    p = np.exp(lp - lp.max())
    p /= p.sum()
    data = STATES5[rng.choice(32, size=2000, p=p)]
    theta, ll = _independent_mle(data)
    return data, theta, ll


def _theta(model):
    W, b = model.params["W"], model.params["b"]
    return np.array([W[i, j] for i, j in PAIRS] + list(b))


def test_exact_matches_independent_mle(fvbm_data):
    data, theta, ll = fvbm_data
    model = ebmlang.compile(FVBM)
    result = model.fit({"x": data}, method="exact")
    assert np.abs(_theta(model) - theta).max() < 1e-3
    assert result.history[-1]["value"] == pytest.approx(ll, abs=1e-6)


@pytest.mark.parametrize("method, kwargs, tol_theta, tol_ll", [
    # pl: a different estimator, but consistent and well specified here; its distance to the MLE
    # is O(1/sqrt(n)) with n = 2000 rows, about 0.02 per param, so 0.1 is ~5 SE; its log
    # likelihood is within 1e-3 nats of the maximum.
    ("pl", dict(epochs=30, batch_size=50, lr=0.05), 0.1, 1e-3),
    # pcd: stochastic gradients from 200 chains with a linearly decaying rate; the remaining
    # noise moves params by a few hundredths (measured 0.04 over seeds 0-4).
    ("pcd", dict(epochs=30, batch_size=50, lr=0.05, chains=200), 0.15, 2e-3),
])
def test_stochastic_methods_reach_the_mle(fvbm_data, method, kwargs, tol_theta, tol_ll):
    data, theta, ll = fvbm_data
    model = ebmlang.compile(FVBM)
    result = model.fit({"x": data}, method=method, seed=1, **kwargs)
    assert np.abs(_theta(model) - theta).max() < tol_theta
    assert result.history[-1]["metric"] == "LL"
    assert result.history[-1]["value"] > ll - tol_ll


def test_same_seed_same_fit(fvbm_data):
    data = fvbm_data[0][:200]
    a, b = ebmlang.compile(FVBM), ebmlang.compile(FVBM)
    a.fit({"x": data}, epochs=2, seed=3)
    b.fit({"x": data}, epochs=2, seed=3)
    assert np.array_equal(a.params.theta, b.params.theta)


ISING = """
const L = 4
var s[i in 0..L-1, j in 0..L-1] : spin
param J = 0.0
factor right[i in 0..L-1, j in 0..L-2] : J * s[i, j] * s[i, j + 1]
factor down[i in 0..L-2, j in 0..L-1]  : J * s[i, j] * s[i + 1, j]
"""


def test_ising_coupling_learned_from_exact_samples():
    """J from 3000 exact draws of a 4 x 4 open lattice at J = 0.4. The MLE's standard error is
    1 / sqrt(n Var(T)) with T the sum of neighbour products (the Fisher information of this
    one-parameter exponential family), computed exactly; we allow 4 SE plus 0.01 for PCD."""
    model = ebmlang.compile(ISING)
    true_j = 0.4
    model.params["J"] = true_j
    from ebmlang.infer.exact import probabilities
    x, p = probabilities(model)
    t = model.log_potential(x) / true_j
    var_t = p @ t ** 2 - (p @ t) ** 2
    rng = np.random.default_rng(5)
    n = 3000
    draws = x[rng.choice(len(x), size=n, p=p)][:, model.state_ids()]
    se = 1 / np.sqrt(n * var_t)
    learner = ebmlang.compile(ISING)
    learner.fit({"s": draws.reshape(n, 4, 4)}, method="pcd", epochs=15, batch_size=100,
                lr=0.05, chains=100, seed=2)
    assert abs(float(learner.params["J"]) - true_j) < 4 * se + 0.01


RBM = """
var v[i in 0..7] : bool
latent h[j in 0..2] : bool
param W[i in 0..7, j in 0..2] = normal(0, 0.1)
param b[i in 0..7] = 0
param c[j in 0..2] = 0
factor pair[i in 0..7, j in 0..2] : W[i, j] * v[i] * h[j]
factor vis[i in 0..7] : b[i] * v[i]
factor hid[j in 0..2] : c[j] * h[j]
"""


def test_rbm_exact_loglik_rises():
    """Bars: two groups of pixels switch together. The exact log-likelihood (latents summed
    out, Z enumerated) reported each epoch must rise from start to end and end well above the
    independent-pixel model."""
    rng = np.random.default_rng(0)
    a, b = rng.random(600) < 0.5, rng.random(600) < 0.4
    data = np.column_stack([a, a, a, a, b, b, b, b]).astype(float)
    flip = rng.random(data.shape) < 0.05
    data = np.where(flip, 1 - data, data)
    model = ebmlang.compile(RBM)
    result = model.fit({"v": data}, epochs=12, batch_size=20, lr=0.05, seed=0)
    lls = [h["value"] for h in result.history]
    assert all(h["metric"] == "LL" for h in result.history)
    assert lls[-1] > lls[0] + 0.5
    m = data.mean(axis=0).clip(1e-3, 1 - 1e-3)
    independent = np.mean(data @ np.log(m) + (1 - data) @ np.log(1 - m))
    assert lls[-1] > independent + 1.0


def test_missing_values_are_summed_out():
    """With 20% of the cells missing at random, exact ML marginalizes them; pcd fills them by
    clamped Gibbs and lands near the same params."""
    rng = np.random.default_rng(4)
    data = (rng.random((1500, 5)) < [0.3, 0.5, 0.6, 0.4, 0.7]).astype(float)
    data[:, 1] = np.where(rng.random(1500) < 0.7, data[:, 0], data[:, 1])
    holes = data.copy()
    holes[rng.random(holes.shape) < 0.2] = np.nan
    exact = ebmlang.compile(FVBM)
    exact.fit({"x": holes}, method="exact")
    pcd = ebmlang.compile(FVBM)
    pcd.fit({"x": holes}, method="pcd", epochs=30, batch_size=50, lr=0.05, chains=200, seed=0)
    assert np.abs(_theta(pcd) - _theta(exact)).max() < 0.25
    full = ebmlang.compile(FVBM)
    full.fit({"x": data}, method="exact")
    assert np.abs(_theta(exact) - _theta(full)).max() < 0.5  # same truth, less data


DENOISE = """
const H = 3
const W = 3
input y[i in 0..H-1, j in 0..W-1] : spin
var x[i in 0..H-1, j in 0..W-1] : spin
param eta = 0.0
param fidelity = 0.0
factor keep[i in 0..H-1, j in 0..W-1] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..H-1, j in 0..W-2] : eta * x[i, j] * x[i, j + 1]
factor down[i in 0..H-2, j in 0..W-1]  : eta * x[i, j] * x[i + 1, j]
"""


@pytest.fixture(scope="module")
def denoise_pairs():
    """Clean images from an Ising prior at eta = 0.5, noisy copies with 20% flips: then
    p(x | y) is exactly the denoising model with eta = 0.5, fidelity = log(0.8/0.2)/2."""
    prior = ebmlang.compile(ISING.replace("L = 4", "L = 3"))
    prior.params["J"] = 0.5
    from ebmlang.infer.exact import probabilities
    x, p = probabilities(prior)
    rng = np.random.default_rng(1)
    clean = x[rng.choice(len(x), 4000, p=p)][:, prior.state_ids()]
    noisy = np.where(rng.random(clean.shape) < 0.2, -clean, clean)
    return {"x": clean.reshape(-1, 3, 3), "y": noisy.reshape(-1, 3, 3)}, 0.5, np.log(4) / 2


def test_denoise_conditional_exact(denoise_pairs):
    data, eta, fid = denoise_pairs
    model = ebmlang.compile(DENOISE)
    model.fit(data, method="exact")
    # 4000 pairs: the conditional MLE's SE is about 0.02 for each param; 0.1 is 5 SE
    assert float(model.params["eta"]) == pytest.approx(eta, abs=0.1)
    assert float(model.params["fidelity"]) == pytest.approx(fid, abs=0.1)


def test_denoise_conditional_pcd(denoise_pairs):
    data, eta, fid = denoise_pairs
    model = ebmlang.compile(DENOISE)
    model.fit(data, method="pcd", epochs=5, batch_size=100, lr=0.05, seed=0)
    assert float(model.params["eta"]) == pytest.approx(eta, abs=0.15)
    assert float(model.params["fidelity"]) == pytest.approx(fid, abs=0.15)


def test_fit_cli_writes_params_that_sample_and_score_read(tmp_path, capsys):
    model = tmp_path / "bm.ebm"
    model.write_text(FVBM)
    rng = np.random.default_rng(0)
    rows = (rng.random((100, 5)) < 0.4).astype(int)
    data = tmp_path / "d.csv"
    data.write_text("x[0],x[1],x[2],x[3],x[4]\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    out = tmp_path / "p.json"
    assert main(["fit", str(model), str(data), "-o", str(out), "--epochs", "3"]) == 0
    saved = json.loads(out.read_text())
    assert set(saved["params"]) == {"W", "b"} and len(saved["history"]) == 3
    assert saved["history"][-1]["metric"] == "LL"
    scores = tmp_path / "s.csv"
    assert main(["score", str(model), str(data), "--params", str(out), "-o", str(scores)]) == 0
    lines = scores.read_text().splitlines()
    assert lines[0] == "score,logp" and len(lines) == 101
    # logp is a normalized log-probability: exp(logp) summed over all 32 states is 1
    m = ebmlang.compile(FVBM)
    from ebmlang.cli.app import load_params
    load_params(m, str(out))
    from ebmlang.infer.score import score
    allstates = score(m, {"x": STATES5})
    assert np.exp(allstates["logp"]).sum() == pytest.approx(1.0, abs=1e-9)
    assert main(["sample", str(model), "--params", str(out), "-n", "10", "--seed", "1"]) == 0


@pytest.mark.parametrize("text, message", [
    ("x[0],x[1],x[2],x[3]\n1,0,1,0\n", "missing column 'x[4]'"),
    ("x[0],x[1],x[2],x[3],x[4]\n1,0,2,0,1\n", "value 2 in column 'x[2]' is not in the domain {0, 1}"),
    ("x[0],x[1],x[2],x[3],x[4]\n1,0,abc,0,1\n", "'abc' in column 'x[2]' is not a number"),
    ("", "is empty"),
])
def test_bad_data_errors(tmp_path, capsys, text, message):
    model = tmp_path / "bm.ebm"
    model.write_text(FVBM)
    data = tmp_path / "d.csv"
    data.write_text(text)
    assert main(["fit", str(model), str(data), "-o", str(tmp_path / "p.json")]) == 1
    err = capsys.readouterr().err
    assert message in err and str(data) in err and "Traceback" not in err
    assert not (tmp_path / "p.json").exists()


def test_divergence_stops_and_keeps_last_good_params(tmp_path, capsys):
    model = tmp_path / "bm.ebm"
    model.write_text(FVBM)
    data = tmp_path / "d.csv"
    data.write_text("x[0],x[1],x[2],x[3],x[4]\n" + "1,1,1,1,1\n0,0,0,0,0\n" * 20)
    out = tmp_path / "p.json"
    code = main(["fit", str(model), str(data), "-o", str(out), "--optimizer", "sgd",
                 "--lr", "1e306", "--schedule", "constant"])
    err = capsys.readouterr().err
    assert code == 1 and "the fit diverged" in err and "Traceback" not in err
    saved = json.loads(out.read_text())["params"]
    assert all(np.all(np.isfinite(np.asarray(v, float))) for v in saved.values())


def test_exact_refuses_large_models():
    model = ebmlang.load("examples/rbm.ebm")
    with pytest.raises(ebmlang.UserError, match="enumerates every state"):
        model.fit({"v": np.zeros((2, 64))}, method="exact")


def test_pl_refuses_latents():
    model = ebmlang.compile(RBM)
    with pytest.raises(ebmlang.UserError, match="pl needs every variable observed"):
        model.fit({"v": np.zeros((2, 8))}, method="pl")
