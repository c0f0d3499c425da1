"""Gibbs sampling against exact enumeration.

Each model is small enough to enumerate every state. The sampled marginal of every ground
variable and value is compared with the exact one, within 5 Monte Carlo standard errors
estimated by batch means (which account for autocorrelation). With a few hundred comparisons a
correct sampler fails such a test with probability about 1e-4; a wrong conditional (a missed
factor, a wrong sign, a double count) moves marginals by far more.
"""

import numpy as np
import pytest

import ebmlang
from exact import exact_marginals

MODELS = {
    # spin, odd torus (3 colours), field: the seed's Ising model
    "ising_torus": ("""
model ising
const L = 3
var s[i in 0..L-1, j in 0..L-1] : spin
param J = 0.4
param h = 0.1
factor right[i in 0..L-1, j in 0..L-1] : J * s[i, j] * s[i, (j + 1) % L]
factor down[i in 0..L-1, j in 0..L-1]  : J * s[i, j] * s[(i + 1) % L, j]
factor field[i in 0..L-1, j in 0..L-1] : h * s[i, j]
""", None),
    # cat(K) with indicators: Potts, open boundary
    "potts": ("""
const K = 3
var z[i in 0..2, j in 0..2] : cat(K)
param J = 0.8
factor right[i in 0..2, j in 0..1] : J * (z[i, j] == z[i, j + 1])
factor down[i in 0..1, j in 0..2]  : J * (z[i, j] == z[i + 1, j])
factor pref[i in 0..2, j in 0..2]  : 0.3 * (z[i, j] == 1)
""", None),
    # integer range domain, a tabular potential indexed by variables
    "tabular": ("""
var x[i in 0..4] : 1..3
param T[a in 1..3, b in 1..3] = normal(0, 1)
param u[a in 1..3] = uniform(-1, 1)
factor t[i in 0..3] : T[x[i], x[i + 1]]
factor one[i in 0..4] : u[x[i]]
""", None),
    # a number set domain; factors written as one sum each
    "sums": ("""
const N = 6
var x[i in 0..N-1] : {-1, 0.5, 2}
param J = 0.3
factor chain : J * (sum(i in 0..N-2) x[i] * x[i + 1]) - 0.2 * sum(i in 0..N-1) x[i] ^ 2
""", None),
    # bool, three-way factors, where filters, an energy
    "threeway": ("""
var x[i in 0..5] : bool
param W = 1.1
factor t[i in 0..3] : W * x[i] * x[i + 1] * x[i + 2]
energy e[i in 0..5] : 0.5 * x[i]
factor p[i in 0..5, j in 0..5 where i < j and (i + j) % 3 == 0] : 0.4 * x[i] * x[j]
""", None),
    # inputs: the denoising model with a given noisy image
    "denoise": ("""
input y[i in 0..2, j in 0..2] : spin
var x[i in 0..2, j in 0..2] : spin
param eta = 0.7
param fidelity = 0.9
factor keep[i in 0..2, j in 0..2] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..2, j in 0..1] : eta * x[i, j] * x[i, j + 1]
factor down[i in 0..1, j in 0..2]  : eta * x[i, j] * x[i + 1, j]
""", np.array([[1, -1, 1, 1, 1, -1, -1, 1, 1]])),
    # latent units and blocks {v}, {h}: a small RBM with strong weights
    "rbm": ("""
var v[i in 0..4] : bool
latent h[j in 0..2] : bool
param W[i in 0..4, j in 0..2] = normal(0, 1)
param b[i in 0..4] = normal(0, 0.5)
param c[j in 0..2] = -0.5
factor pair[i in 0..4, j in 0..2] : W[i, j] * v[i] * h[j]
factor vis[i in 0..4] : b[i] * v[i]
factor hid[j in 0..2] : c[j] * h[j]
""", None),
    # a graph from a set file and a scalar variable that meets everyone
    "star": ("""
set E = load("edges.csv")
var x[i in 0..4] : spin
var hub : {0, 1, 2}
param J = 0.5
factor edge[(u, v) in E] : J * x[u] * x[v]
factor spoke[i in 0..4] : 0.3 * hub * x[i] - 0.2 * hub
""", None),
}


def batch_se(indicator: np.ndarray, batches: int = 10) -> float:
    """Monte Carlo standard error of a mean over (chains, draws) by batch means."""
    c, d = indicator.shape
    means = indicator[:, : d - d % batches].reshape(c, batches, -1).mean(axis=2).ravel()
    return float(means.std(ddof=1) / np.sqrt(len(means)))


def compile_case(name, tmp_path):
    src, inputs = MODELS[name]
    (tmp_path / "edges.csv").write_text("u,v\n0,1\n1,2\n2,3\n3,4\n4,0\n0,2\n")
    return ebmlang.compile(src, base=tmp_path), inputs


def marginal_errors(model, draws, exact):
    """(standardized error, where) for every ground variable and value: the distance of the
    sampled marginal from the exact one in batch-means standard errors."""
    n = draws.chains * draws.draws
    for i, p in exact.items():
        f = next(f for f in model.vars.values() if f.offset <= i < f.offset + f.space.size)
        for k, value in enumerate(f.domain.values):
            ind = (draws.full[:, :, i] == value).astype(float)
            se = max(batch_se(ind), np.sqrt(p[k] * (1 - p[k]) / n), 1e-4)
            yield abs(ind.mean() - p[k]) / se, (i, value, ind.mean(), p[k])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gibbs_marginals_match_enumeration(name, tmp_path):
    model, inputs = compile_case(name, tmp_path)
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=11, inputs=inputs)
    for z, where in marginal_errors(model, draws, exact_marginals(model, inputs)):
        assert z < 5, (name, where)


def test_pairwise_moments_match_enumeration(tmp_path):
    """Correlations, not only marginals: E[x_i x_j] of the three-way model."""
    from exact import exact_moments
    model, _ = compile_case("threeway", tmp_path)
    draws = model.sample(draws=4000, chains=4, burn_in=300, seed=5)
    _, second = exact_moments(model)
    xs = draws.states.reshape(-1, draws.states.shape[-1])
    got = xs.T @ xs / len(xs)
    # each entry is a mean of 0/1 products: 5 batch-mean SEs, computed per entry
    for a in range(xs.shape[1]):
        for b in range(a + 1, xs.shape[1]):
            ind = draws.states[:, :, a] * draws.states[:, :, b]
            se = max(batch_se(ind), 1e-3)
            assert abs(got[a, b] - second[a, b]) < 5 * se


def test_same_seed_same_draws(tmp_path):
    model, _ = compile_case("potts", tmp_path)
    a = model.sample(draws=50, chains=3, seed=7).states
    b = model.sample(draws=50, chains=3, seed=7).states
    c = model.sample(draws=50, chains=3, seed=8).states
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_huge_weights_are_safe(backend):
    """Weights of 1e3 neither overflow nor give NaN, and the draws stay on the (near-certain)
    most probable states, found by enumeration (exp(-1000) is 0 in floating point)."""
    model = ebmlang.compile("""
var x[i in 0..3] : spin
var z : cat(4)
factor pin[i in 0..3] : 1000 * x[i]
factor pair[i in 0..2] : -1000 * x[i] * x[i + 1]
factor c : 1000 * (z == 2) - 1000 * (z == 3)
""")
    from ebmlang.infer.exact import enumerate_states
    states = enumerate_states(model)
    lp = model.log_potential(states)
    best = {tuple(s) for s in states[lp == lp.max()]}
    draws = model.sample(draws=200, chains=2, burn_in=20, seed=0, backend=backend)
    assert np.all(np.isfinite(draws.states))
    kept = draws.full.reshape(-1, draws.full.shape[-1])
    assert all(tuple(s) in best for s in kept)
    assert np.all(draws["z"] == 2)


def test_thinning_and_burn_in_count(tmp_path):
    model, _ = compile_case("potts", tmp_path)
    d = model.sample(draws=30, chains=2, burn_in=5, thin=3, seed=1)
    assert d.states.shape == (2, 30, 9)
    assert set(np.unique(d.states)) <= {0.0, 1.0, 2.0}
