"""Learners without Z for real variables: score matching (`fit --method sm`) against its
closed form on the Gaussian MRF, and its refusal of factors that are not twice differentiable."""

import numpy as np
import pytest

import ebmlang
from ebmlang.errors import UserError

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def write_csv(path, names, x):
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for r in x:
            f.write(",".join(f"{v:.12g}" for v in r) + "\n")


def test_sm_recovers_gmrf_params(tmp_path):
    """Data drawn exactly from the GMRF (a = 1.3, c = 0.45, N = 50). For F = -x'Qx/2 with
    Q = a I - c A (A the chain's adjacency), J(a, c) = E|a x - c A x|^2 / 2 - N a, whose
    minimum solves a 2 x 2 linear system: L-BFGS must land on it (to 1e-5), and it must lie
    within 5% of the truth. With 2,000 rows of 50 sites the estimator's relative standard error
    is 0.4% for a and 0.7% for c (the sd over 30 seeds of the closed form), so 5% is over 7
    standard errors."""
    model = ebmlang.load(str(ROOT / "examples" / "gmrf.ebm"))
    n, a, c = 50, 1.3, 0.45
    adj = np.eye(n, k=1) + np.eye(n, k=-1)
    q = a * np.eye(n) - c * adj
    x = np.random.default_rng(0).multivariate_normal(np.zeros(n), np.linalg.inv(q), size=2000)
    path = tmp_path / "gmrf.csv"
    write_csv(path, model.ground_names(), x)
    model.fit(str(path), method="sm")
    w = x @ adj
    suu, suw, sww = [float((p * r).sum(axis=1).mean()) for p, r in ((x, x), (x, w), (w, w))]
    a_hat = n / (suu - suw ** 2 / sww)
    c_hat = a_hat * suw / sww
    assert model.params["a"] == pytest.approx(a_hat, rel=1e-5)
    assert model.params["c"] == pytest.approx(c_hat, rel=1e-5)
    assert abs(a_hat / a - 1) < 0.05 and abs(c_hat / c - 1) < 0.05


def test_sm_refuses_abs_factor(tmp_path, capsys):
    from ebmlang.cli.app import main
    model = tmp_path / "lap.ebm"
    model.write_text("model lap\nvar x[i in 0..1] : real\nparam b = 1.0\n"
                     "energy sq[i in 0..1] : 0.5 * x[i] ^ 2\n"
                     "energy kink[i in 0..1] : b * abs(x[i])\n")
    data = tmp_path / "d.csv"
    data.write_text("x[0],x[1]\n0.5,-0.2\n1.0,0.3\n")
    assert main(["fit", str(model), str(data), "--method", "sm", "-o",
                 str(tmp_path / "p.json")]) == 1
    err = capsys.readouterr().err
    assert f"{model}:5:1: error: score matching needs every factor twice differentiable" in err
    assert "'kink'" in err and "Traceback" not in err


def test_sm_refuses_finite_family(tmp_path):
    m = ebmlang.compile("var s : bool\nparam b = 0.0\nfactor f : b * s\n")
    data = tmp_path / "d.csv"
    data.write_text("s\n1\n0\n")
    with pytest.raises(UserError, match="score matching is for real variables"):
        m.fit(str(data), method="sm")


def test_nce_recovers_gaussian_params_and_logz(tmp_path):
    """examples/gaussian.ebm (F = eta1 x + eta2 x^2) on 20,000 draws of N(2, 0.5^2): eta1 =
    mu / s^2 = 8, eta2 = -1 / (2 s^2) = -2, log Z = mu^2 / (2 s^2) + log(2 pi s^2) / 2 = 8.2258.
    The maximum-likelihood estimates from n rows have standard errors sqrt(2 / n) relative in
    s^2 (1%), so about 0.09 for eta1, 0.02 for eta2 and 0.09 for log Z; NCE with noise matched
    to the data is nearly as efficient (its spread over seeds at 4,000 rows was within that),
    so 5% on eta1 and eta2 and 0.4 on log Z are over 4 standard errors."""
    model = ebmlang.load(str(ROOT / "examples" / "gaussian.ebm"))
    x = np.random.default_rng(7).normal(2.0, 0.5, 20000)
    path = tmp_path / "g.csv"
    write_csv(path, ["x"], x[:, None])
    result = model.fit(str(path), method="nce", seed=0)
    assert abs(model.params["eta1"] / 8.0 - 1) < 0.05
    assert abs(model.params["eta2"] / -2.0 - 1) < 0.05
    assert abs(result.logz - (8 + 0.5 * np.log(2 * np.pi * 0.25))) < 0.4
    assert result.history[-1]["logZ"] == pytest.approx(result.logz)


TANH2 = """
model tanh2
var x[i in 0..1] : real
param a[k in 0..1] = 0
param U[k in 0..1, j in 0..1] = 0
param d[k in 0..1] = 0
factor hidden : sum(k in 0..1) a[k] * tanh(U[k, 0] * x[0] + U[k, 1] * x[1] + d[k])
energy confine : (x[0] ^ 2 + x[1] ^ 2) / 18
"""
TRUE = {"a": [2.0, -1.5], "U": [[1.0, 0.5], [-0.3, 1.2]], "d": [0.2, -0.4]}


def _exact_tanh2(rows: int, rng) -> np.ndarray:
    """Exact draws of ring8's model at K = 2, TRUE params, by rejection: the proposal is the
    confinement N(0, 9 I) and exp(sum_k a_k tanh(.) - sum_k |a_k|) <= 1 the acceptance."""
    a, u, d = (np.asarray(TRUE[k]) for k in "aUd")
    out = []
    while sum(map(len, out)) < rows:
        x = 3.0 * rng.standard_normal((200_000, 2))
        logacc = np.tanh(x @ u.T + d) @ a - np.abs(a).sum()
        out.append(x[np.log(rng.random(len(x))) < logacc])
    return np.concatenate(out)[:rows]


def test_sm_recovers_tanh_network_params():
    """Score matching is consistent: on 20,000 exact draws of a 2-unit tanh energy it must find
    the true params within 4 standard errors each. The standard errors are the M-estimator's
    sandwich, H^-1 C H^-1, computed here: H the Hessian of J at the estimate (central
    differences of the exact gradient), C the covariance of the mean gradient, estimated from
    40 batches of 500 rows. The fit starts from the truth moved by 0.3 per param (the model has
    symmetries, swapping the units or negating one, so a start far away may find an equal
    optimum under another labelling). Seed 3 gives |z| < 0.7 for all 8 params."""
    from ebmlang.learn.score_matching import ScoreMatching
    model = ebmlang.compile(TANH2)
    rng = np.random.default_rng(3)
    x = np.zeros((20_000, model.checked.n_state))
    x[:, model.state_ids()] = _exact_tanh2(20_000, rng)
    for k, v in TRUE.items():
        model.params[k] = v
    truth = model.params.theta.copy()
    model.params.theta[:] = truth + 0.3 * rng.choice([-1, 1], size=truth.shape)
    from scipy.optimize import minimize
    sm = ScoreMatching(model, x)
    est = minimize(sm, model.params.theta.copy(), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "gtol": 1e-12}).x
    n = len(est)
    h = np.zeros((n, n))
    for k in range(n):
        e = np.zeros(n)
        e[k] = 1e-5
        h[:, k] = (sm(est + e)[1] - sm(est - e)[1]) / 2e-5
    h = (h + h.T) / 2
    batches = np.array([ScoreMatching(model, x[b * 500:(b + 1) * 500])(est)[1]
                        for b in range(40)])
    c = np.cov(batches.T) / 40
    hinv = np.linalg.inv(h)
    se = np.sqrt(np.diag(hinv @ c @ hinv))
    assert se.max() < 0.1    # the start is 0.3 away: over 3 standard errors, a fit must move
    assert np.all(np.abs(est - truth) < 4 * se), (est - truth) / se


def test_denoising_sm_is_least_squares_on_the_gaussian(tmp_path):
    """examples/gaussian.ebm (F = eta1 x + eta2 x^2) by `--noise 0.3` on 4,000 draws of
    N(2, 0.5^2): dF/dx = eta1 + 2 eta2 x is linear in the params, so J is least squares of
    -(x~ - x) / sigma^2 on (1, 2 x~) over the noisy rows; L-BFGS must land on that solution
    (to 1e-6), and it estimates the smoothed density N(2, 0.25 + 0.09): eta2 = -1 / (2 * 0.34)
    within 5% (the relative standard error of a variance from 4,000 rows is sqrt(2 / 4000) =
    2.2%, and the 10 noisy copies add less: 5% is over 2 standard errors of the pair, and the
    seed is fixed), and --weight-decay adds its penalty to the same least squares."""
    from ebmlang.learn.score_matching import ScoreMatching
    x = np.random.default_rng(5).normal(2.0, 0.5, 4000)
    path = tmp_path / "g.csv"
    write_csv(path, ["x"], x[:, None])
    for decay in (0.0, 0.5):
        model = ebmlang.load(str(ROOT / "examples" / "gaussian.ebm"))
        sm = ScoreMatching(model, x[:, None], 0.3, decay, np.random.default_rng(0))
        a = np.stack([np.ones(len(sm.x)), 2 * sm.x[:, 0]], axis=1)
        rows = len(a)
        # minimize 0.5 mean (a theta + t)^2 + 0.5 decay |theta|^2
        theta = np.linalg.solve(a.T @ a / rows + decay * np.eye(2), -a.T @ sm.target[:, 0] / rows)
        model.fit(str(path), method="sm", noise=0.3, weight_decay=decay, seed=0)
        assert model.params.theta == pytest.approx(theta, rel=1e-6, abs=1e-8)
    model = ebmlang.load(str(ROOT / "examples" / "gaussian.ebm"))
    model.fit(str(path), method="sm", noise=0.3, seed=0)
    assert model.params["eta2"] == pytest.approx(-1 / (2 * 0.34), rel=0.05)
