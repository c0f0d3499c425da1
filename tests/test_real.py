"""Real-valued variables: exact Gaussian updates where the energy is quadratic, HMC by default
elsewhere (random-walk MH where asked or where no gradient exists), checked against closed forms, quadrature and enumeration."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

import ebmlang
from exact import exact_marginals
from test_sampler_exact import batch_se

GMRF = """
const N = 8
var x[i in 0..N-1] : real
param a = 1.0
param c = 0.45
energy self[i in 0..N-1] : 0.5 * a * x[i] ^ 2
energy chain[i in 0..N-2] : -c * x[i] * x[i + 1]
"""


def test_gmrf_covariance_is_the_inverse_precision():
    model = ebmlang.compile(GMRF)
    assert model.methods["x"][0] == "gaussian"
    draws = model.sample(draws=4000, chains=4, burn_in=200, seed=0)
    x = draws["x"]                                     # (chains, draws, N)
    n = 8
    precision = np.eye(n) - 0.45 * (np.eye(n, k=1) + np.eye(n, k=-1))
    cov = np.linalg.inv(precision)
    for i in range(n):
        for j in range(i, n):
            prod = x[:, :, i] * x[:, :, j]             # E[x_i x_j] = cov (mean zero)
            se = batch_se(prod)
            assert abs(prod.mean() - cov[i, j]) < 5 * se, (i, j, prod.mean(), cov[i, j], se)
        m = x[:, :, i]
        assert abs(m.mean()) < 5 * batch_se(m)


@pytest.mark.parametrize("sampler", ["", "sampler x : mh\n"])
def test_double_well_against_quadrature(sampler):
    """The default (HMC: the conditional is quartic, its gradient exists) and random-walk MH
    on exp(-(x^4 - 2 x^2)): E[x^2], E[x^4] and P(x > 0) = 1/2 within 5 batch-means standard
    errors (20 batches of 4 chains x 1,000 draws: the se counts the draws' autocorrelation)."""
    text = Path("examples/doublewell.ebm").read_text() + sampler
    model = ebmlang.compile(text)
    draws = model.sample(draws=20000 if sampler else 5000, chains=4, burn_in=1000, seed=1)
    assert (draws.gradient is None) == bool(sampler)
    x = draws["x"]
    density = lambda t: np.exp(-(t ** 4 - 2 * t ** 2))  # noqa: E731
    z = quad(density, -np.inf, np.inf)[0]
    for k, fn in ((2, lambda t: t ** 2), (4, lambda t: t ** 4)):
        exact = quad(lambda t: fn(t) * density(t), -np.inf, np.inf)[0] / z
        got = fn(x)
        assert abs(got.mean() - exact) < 5 * batch_se(got, 20), (k, got.mean(), exact)
    # both wells: P(x > 0) = 1/2
    pos = (x > 0).astype(float)
    assert abs(pos.mean() - 0.5) < 5 * batch_se(pos, 20)
    if sampler:
        assert 0.2 < draws.acceptance["x"] < 0.7  # adapted toward 0.44 during burn-in
    else:                                         # dual averaging toward 0.8 in burn-in
        assert abs(draws.gradient.acceptance - 0.8) < 0.08


MH_POTTS = """
var z[i in 0..2, j in 0..2] : 0..3
param J = 0.6
factor right[i in 0..2, j in 0..1] : J * (z[i, j] == z[i, j + 1])
factor down[i in 0..1, j in 0..2]  : J * (z[i, j] == z[i + 1, j])
factor tilt[i in 0..2, j in 0..2]  : 0.2 * z[i, j]
sampler z : mh(scale=2)
"""


def test_mh_leaves_the_exact_distribution_invariant():
    model = ebmlang.compile(MH_POTTS)
    assert model.methods["z"] == ("mh", 2.0, False)
    draws = model.sample(draws=6000, chains=4, burn_in=500, seed=2)
    exact = exact_marginals(model)
    for i, p in exact.items():
        for k, value in enumerate(model.vars["z"].domain.values):
            ind = (draws.full[:, :, i] == value).astype(float)
            se = max(batch_se(ind), 1e-3)
            assert abs(ind.mean() - p[k]) < 5 * se


GRBM = """
var v[i in 0..2] : real
latent h[j in 0..1] : bool
param W[i in 0..2, j in 0..1] = 0
param b[i in 0..2] = 0
param c[j in 0..1] = 0
energy quad[i in 0..2] : 0.5 * (v[i] - b[i]) ^ 2
factor pair[i in 0..2, j in 0..1] : W[i, j] * v[i] * h[j]
factor hid[j in 0..1] : c[j] * h[j]
"""


def test_gaussian_bernoulli_rbm_mixture_moments():
    """p(v) is a mixture of four unit Gaussians centred at b + W h, with weights
    p(h) proportional to exp(c.h + |b + W h|^2 / 2): its mean and p(h) are exact."""
    model = ebmlang.compile(GRBM)
    W = np.array([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.2]])
    b, c = np.array([0.2, -0.1, 0.4]), np.array([-0.3, 0.1])
    model.params["W"], model.params["b"], model.params["c"] = W, b, c
    hs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    centres = b + hs @ W.T
    logw = hs @ c + 0.5 * (centres ** 2).sum(axis=1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    draws = model.sample(draws=6000, chains=4, burn_in=300, seed=3)
    v = draws["v"]
    for i in range(3):
        assert abs(v[..., i].mean() - w @ centres[:, i]) < 5 * batch_se(v[..., i])
    h = draws["h"]
    p_h1 = w[2] + w[3]
    assert abs(h[..., 0].mean() - p_h1) < 5 * batch_se(h[..., 0].astype(float))


@pytest.mark.parametrize("src, message", [
    ("var x : real\nfactor f : 2 * x\n", "linear in it (degree 1)"),
    ("var x : real\nenergy e : -x ^ 2\n", "coefficient 1 >= 0"),
    ("var x : real\nfactor f : x ^ 3 - x ^ 2\n", "degree 3 with odd degree"),
    ("var x : real\nvar y : bool\nfactor f : y\n", "no factor depends on it"),
])
def test_improper_models_are_compile_time_errors(src, message):
    with pytest.raises(ebmlang.UserError) as info:
        ebmlang.compile(src)
    text = info.value.render()
    assert message in text and "<string>:" in text


def test_improper_at_these_params_is_refused_before_sampling():
    model = ebmlang.load("examples/gaussian.ebm")
    model.params["eta2"] = 0.5
    with pytest.raises(ebmlang.UserError, match="improper at these params"):
        model.sample(draws=10, chains=1, seed=0)


def test_exponential_family_recovers_natural_parameters():
    """5000 draws of N(2, 0.5^2): eta1 = mu / sigma^2 = 8, eta2 = -1 / (2 sigma^2) = -2.
    The MLE of these 5000 draws is within 2% of the truth (its SE is sqrt(2/n) = 2%); the fit
    must be within 5% of the truth and 2.5% of the data's own MLE."""
    rng = np.random.default_rng(0)
    data = rng.normal(2.0, 0.5, 5000)
    mu, var = data.mean(), data.var()
    mle = np.array([mu / var, -0.5 / var])
    model = ebmlang.load("examples/gaussian.ebm")
    model.fit({"x": data}, method="pcd", epochs=30, batch_size=100, lr=0.2, seed=0)
    got = np.array([float(model.params["eta1"]), float(model.params["eta2"])])
    assert np.all(np.abs(got / np.array([8.0, -2.0]) - 1) < 0.05)
    assert np.all(np.abs(got / mle - 1) < 0.025)


def test_fit_never_steps_into_an_improper_model():
    """A huge learning rate would push eta2 above zero; the step is shrunk instead."""
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 3.0, 500)
    model = ebmlang.load("examples/gaussian.ebm")
    model.fit({"x": data}, method="pcd", epochs=3, batch_size=50, lr=5.0,
              optimizer="sgd", momentum=0.0, schedule="constant", seed=0)
    assert float(model.params["eta2"]) < 0
    assert np.all(np.isfinite(model.params.theta))


def test_gmrf_pseudo_likelihood_recovers_precision():
    """Pseudo-likelihood with closed-form Gaussian conditionals (Gauss-Hermite expectations):
    from 2400 nearly independent exact GMRF draws, a and c within 5 SE-sized bounds (0.05)."""
    rng = np.random.default_rng(7)
    n = 8
    precision = np.eye(n) - 0.45 * (np.eye(n, k=1) + np.eye(n, k=-1))
    data = rng.multivariate_normal(np.zeros(n), np.linalg.inv(precision), size=2400)
    model = ebmlang.compile(GMRF)
    model.params["a"], model.params["c"] = 2.0, 0.0
    model.fit({"x": data}, method="pl", epochs=20, batch_size=100, lr=0.05, seed=0)
    assert float(model.params["a"]) == pytest.approx(1.0, abs=0.05)
    assert float(model.params["c"]) == pytest.approx(0.45, abs=0.05)


def test_indicator_of_a_real_is_not_taken_for_gaussian():
    """0.5 x^2 - (x > 0) has third derivative 0 where sympy takes the indicator's derivative as
    0, but p(x) = N(x; 0, 1) e^[x > 0] / Z is not Gaussian: P(x > 0) = e / (1 + e). The family
    is sampled by MH (no gradient through a comparison); 5 Monte Carlo standard errors from the
    bulk ESS of the indicator."""
    from ebmlang.infer.diagnostics import bulk_ess
    m = ebmlang.compile("var x : real\nenergy e : 0.5 * x^2 - (x > 0)\n")
    assert m.methods["x"][0] != "gaussian"
    s = m.sample(draws=10000, chains=4, seed=3)
    up = (np.asarray(s["x"]) > 0).astype(float).reshape(4, -1)
    p = np.e / (1 + np.e)
    se = math.sqrt(p * (1 - p) / bulk_ess(up))
    assert abs(up.mean() - p) < 5 * se
