"""Sums inside nonlinear functions (issue 17, item 1), against exact answers.

The free-energy RBM, softplus(c[j] + sum(i) W[i, j] * v[i]) per hidden unit, is the RBM with
its hidden units summed out: log sum_h exp(c h + h W^T v) = softplus(c + W^T v) for h in {0, 1}.
So its distribution of v, and its log-likelihood and gradient at every parameter, must equal the
latent-h RBM's (computed by enumeration on both sides, to rounding).
"""

import itertools

import numpy as np
import pytest

import ebmlang
from ebmlang.errors import UserError
from ebmlang.infer.exact import probabilities
from exact import exact_marginals
from test_sampler_exact import batch_se, marginal_errors

FREE = """
const N = 6
const M = 4
var v[i in 0..N-1] : bool
param W[i in 0..N-1, j in 0..M-1] = normal(0, 1)
param b[i in 0..N-1] = normal(0, 0.5)
param c[j in 0..M-1] = normal(0, 0.5)
factor vis[i in 0..N-1] : b[i] * v[i]
factor free[j in 0..M-1] : softplus(c[j] + sum(i in 0..N-1) W[i, j] * v[i])
"""

LATENT = """
const N = 6
const M = 4
var v[i in 0..N-1] : bool
latent h[j in 0..M-1] : bool
param W[i in 0..N-1, j in 0..M-1] = normal(0, 1)
param b[i in 0..N-1] = normal(0, 0.5)
param c[j in 0..M-1] = normal(0, 0.5)
factor pair[i in 0..N-1, j in 0..M-1] : W[i, j] * v[i] * h[j]
factor vis[i in 0..N-1] : b[i] * v[i]
factor hid[j in 0..M-1] : c[j] * h[j]
"""

NET = """
const N = 6
const K = 3
var x[i in 0..N-1] : spin
param U[k in 0..K-1, i in 0..N-1] = normal(0, 0.7)
param d[k in 0..K-1] = normal(0, 0.5)
param a[k in 0..K-1] = normal(0, 1.5)
factor net : sum(k in 0..K-1) a[k] * tanh(sum(i in 0..N-1) U[k, i] * x[i] + d[k])
"""


def _pair(seed=0, n=6, m=4):
    free = ebmlang.compile(FREE, N=n, M=m)
    latent = ebmlang.compile(LATENT, N=n, M=m)
    rng = np.random.default_rng(seed)
    for name, shape, sd in (("W", (n, m), 1.0), ("b", (n,), 0.5), ("c", (m,), 0.5)):
        value = rng.normal(0, sd, shape)
        free.params[name] = value
        latent.params[name] = value
    assert np.array_equal(free.params.theta, latent.params.theta)  # same layout
    return free, latent


def _v_distribution(model):
    """P(v) as a dict from the v tuple, summing out anything else."""
    x, p = probabilities(model)
    ids = model.state_ids(("var",))
    out = {}
    for row, q in zip(x[:, ids], p):
        out[tuple(row)] = out.get(tuple(row), 0.0) + q
    return out


# ------------------------------------------------------------ (a) parse, check, evaluate


def test_nested_sums_evaluate_to_their_definition():
    """Depth 3: a linear sum over tanh of a sum holding a softplus of a sum; log_potential at
    every state equals the formula written in numpy."""
    model = ebmlang.compile("""
var x[i in 0..3] : bool
param U[k in 0..1, i in 0..3] = normal(0, 1)
param V[k in 0..1, l in 0..2] = normal(0, 1)
factor f : sum(k in 0..1) tanh(sum(l in 0..2) V[k, l] * softplus(sum(i in 0..3) U[k, i] * x[i] * (i + l)))
""")
    U, V = model.params["U"], model.params["V"]
    x = np.array(list(itertools.product([0.0, 1.0], repeat=4)))
    want = np.zeros(len(x))
    for k in range(2):
        inner = sum(V[k, l] * np.log1p(np.exp(x @ (U[k] * (np.arange(4) + l)))) for l in range(3))
        want += np.tanh(inner)
    got = model.log_potential(x[:, model.state_ids()])
    assert np.max(np.abs(got - want)) < 1e-12


@pytest.mark.parametrize("text, at, words", [
    ("var v[i in 0..2] : bool\nfactor f : softplus(sum(i in 0..2) W[i, k] * v[i])\n"
     "param W[i in 0..2, j in 0..1] = 0\n", "k]", "unknown name 'k'"),
    ("var v[i in 0..2] : bool\nfactor f[j in 0..2] : tanh(sum(i in 0..j) v[i])\n", "j)",
     "may use only consts and the indices of enclosing sums"),
    ("var v[i in 0..2] : bool\nfactor f : tanh(sum(i in 0..3) v[i])\n", "v[i])", "outside"),
])
def test_misuse_is_located(text, at, words):
    """The error names the misuse and points at it (line 2, the column of `at`)."""
    with pytest.raises(UserError) as err:
        ebmlang.compile(text)
    assert words in err.value.message
    assert err.value.span.line == 2
    assert err.value.span.col == text.splitlines()[1].index(at) + 1


# ------------------------------------------------------------ (b) blankets


def test_blanket_of_each_visible_is_every_other_visible():
    free, _ = _pair()
    edges = free.graph.edges
    ids = free.state_ids(("var",))
    for a in ids:
        nb = set(edges[edges[:, 0] == a, 1]) | set(edges[edges[:, 1] == a, 0])
        assert nb == set(ids) - {a}


# ------------------------------------------------------------ (c) the same distribution


def test_free_energy_rbm_is_the_latent_rbm_marginal():
    free, latent = _pair(seed=3)
    pf, pl = _v_distribution(free), _v_distribution(latent)
    assert pf.keys() == pl.keys()
    assert max(abs(pf[k] - pl[k]) for k in pf) < 1e-10


# ------------------------------------------------------------ (d, f) Gibbs vs enumeration


@pytest.mark.parametrize("backend", ["auto", "numba", "numpy"])
def test_gibbs_on_the_free_energy_rbm(backend):
    """auto: the pre-activation kernel (backends/preact.py); numba and numpy: the generic
    kernels, every energy difference from scratch. Marginals within 5 batch-means SEs of the exact ones (the SE from 10 batches per chain
    accounts for autocorrelation; a wrong conditional moves them by far more), and pair moments
    E[v_a v_b] likewise."""
    free, _ = _pair(seed=1)
    draws = free.sample(draws=3000, chains=4, burn_in=300, seed=2, backend=backend)
    for z, where in marginal_errors(free, draws, exact_marginals(free)):
        assert z < 5, where
    x, p = probabilities(free)
    ids = free.state_ids()
    xs = x[:, ids]
    second = (xs * p[:, None]).T @ xs
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            ind = draws.states[:, :, a] * draws.states[:, :, b]
            assert abs(ind.mean() - second[a, b]) < 5 * max(batch_se(ind), 1e-3)


def test_gibbs_on_a_small_tanh_network_energy():
    """`a[k] * tanh(sum(i) U[k, i] * x[i] + d[k])` over spins, on the pre-activation kernel:
    marginals vs enumeration, 5 SEs."""
    from ebmlang.backends.preact import why_not
    model = ebmlang.compile(NET)
    assert why_not(model) is None
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=4)
    for z, where in marginal_errors(model, draws, exact_marginals(model)):
        assert z < 5, where


def test_preact_kernel_follows_clamps_and_tempering():
    """Clamped cells stay put (the generic kernel runs then) and a tempered sweep at beta = 0
    draws every visible uniformly: means 0.5 within 5 SEs of 4000 independent draws."""
    from ebmlang.backends.preact import PreactPart
    free, _ = _pair(seed=1)
    part = PreactPart(free)
    rng = np.random.default_rng(0)
    x = np.zeros((4000, free.checked.n_state))
    part.tempered(x, free.params.theta, rng, np.zeros(4000))
    assert np.all(np.abs(x.mean(axis=0) - 0.5) < 5 * 0.5 / np.sqrt(4000))
    draws = free.sample(draws=50, chains=2, burn_in=5, seed=3,
                        clamp=[1, 0, 1, 0, np.nan, np.nan])
    assert np.all(draws["v"][..., :4] == [1, 0, 1, 0])


def test_pcd_on_the_pre_activation_kernel_moves_towards_the_mle():
    """PCD (auto: the pre-activation kernel for the negative phase) from the same start as
    the exact fit gains at least half of the exact fit's log-likelihood improvement."""
    free, latent = _pair(seed=4, n=5, m=3)
    data = _data(latent, rows=400, seed=6)
    start = _log_likelihood(free, data)
    exact = ebmlang.compile(FREE, N=5, M=3)
    exact.params.theta[:] = free.params.theta
    best = exact.fit({"v": data}, method="exact").history[-1]["value"]
    free.fit({"v": data}, method="pcd", epochs=30, batch_size=50, lr=0.05, chains=100, seed=1)
    got = _log_likelihood(free, data)
    assert got - start > 0.5 * (best - start)


# ------------------------------------------------------------ (e) learning


def _log_likelihood(model, data) -> float:
    dist = _v_distribution(model)
    return float(np.mean([np.log(dist[tuple(r)]) for r in data]))


def _data(latent, rows=300, seed=5):
    x, p = probabilities(latent)
    rng = np.random.default_rng(seed)
    return x[rng.choice(len(x), size=rows, p=p)][:, latent.state_ids(("var",))]


def test_exact_log_likelihood_and_gradient_agree():
    """The exact average log-likelihood and its gradient in (W, b, c), as fit --method exact
    computes them, are the same function for both formulations (to rounding: 1e-8)."""
    from ebmlang.learn.fit_exact import _Group, _objective
    free, latent = _pair(seed=2)
    data = _data(latent)
    full_f = np.zeros((len(data), free.checked.n_state))
    full_f[:, free.state_ids(("var",))] = data
    full_l = np.zeros((len(data), latent.checked.n_state))
    full_l[:, latent.state_ids(("var",))] = data
    ff = _objective(free, [_Group(free, full_f, None)], len(data), 0.0)
    fl = _objective(latent, [_Group(latent, full_l, None)], len(data), 0.0)
    rng = np.random.default_rng(9)
    for _ in range(3):
        theta = rng.normal(0, 0.7, free.params.theta.shape)
        (vf, gf), (vl, gl) = ff(theta.copy()), fl(theta.copy())
        assert abs(vf - vl) < 1e-8
        assert np.max(np.abs(gf - gl)) < 1e-8


def test_exact_fits_reach_the_same_log_likelihood():
    """From the same initial W, b, c the two exact fits follow the same objective (the test
    above), so L-BFGS reaches the same optimum; the log-likelihoods agree to 1e-5 nats (the
    optimizer's tolerance on a non-convex surface), and beat the initial value."""
    free, latent = _pair(seed=4, n=5, m=3)
    data = _data(latent, rows=200, seed=6)
    rf = free.fit({"v": data}, method="exact", epochs=200)
    rl = latent.fit({"v": data}, method="exact", epochs=200)
    assert rf.history[-1]["value"] == pytest.approx(rl.history[-1]["value"], abs=1e-5)
    assert rf.history[-1]["value"] > rf.history[0]["value"]
