"""The fused update (ebmlang/fused.py) against the generic path and against exact enumeration.

Statistics and fields are compared with the generic kernels on the same states to 1e-12;
summed-out statistics and log marginals also against a brute-force sum over the latent states;
the fused Gibbs sweep's draws against the exact marginals and pairwise moments; and a whole
fit against `backend="numpy"` (the reference), which draws from the same random numbers.
"""

import itertools

import numpy as np
import pytest

import ebmlang
from ebmlang.backends.numeric import logsumexp
from ebmlang.learn.fit import _Phases, FitOptions
from ebmlang.backends.fused import FusedModel, Marginal
from ebmlang.infer.summed import SummedOut
from ebmlang.learn.gradient import expected_stats
from ebmlang.backends.runtime import local_logits
from exact import enumerate_states
from test_sampler_exact import batch_se

MODELS = {
    "rbm": """var v[i in 0..4] : bool
latent h[j in 0..2] : bool
param W[i in 0..4, j in 0..2] = 0
param b[i in 0..4] = 0
param c[j in 0..2] = 0
factor pair[i in 0..4, j in 0..2] : W[i, j] * v[i] * h[j]
factor vis[i in 0..4] : b[i] * v[i]
factor hid[j in 0..2] : c[j] * h[j]""",
    # other domains: categorical (the softmax path), uneven two values, spins; a const
    # factor; a term that reads no variable (its statistic is the same in every row)
    "domains": """const g = 0.6
var a[i in 0..2] : cat(3)
var s[i in 0..1] : {-1, 0.5}
latent h[k in 0..1] : spin
param T[i in 0..2, k in 0..1] = 0
param U[i in 0..1, k in 0..1] = 0
param e[i in 0..2] = 0
factor ta[i in 0..2, k in 0..1] : T[i, k] * a[i] * h[k]
factor us[i in 0..1, k in 0..1] : -g * U[i, k] * s[i] * h[k]
factor ea[i in 0..2] : e[i] * a[i]
factor lone[i in 0..2] : 0.5 * e[i]""",
    # a three-way product: each field a contraction of two reads and a param; a scalar
    # variable and a scalar param
    "threeway": """var a[i in 0..1] : bool
var b[j in 0..2] : spin
latent c[k in 0..1] : bool
var s : spin
param T[i in 0..1, j in 0..2, k in 0..1] = 0
param d[k in 0..1] = 0
param J = 0
factor t[i in 0..1, j in 0..2, k in 0..1] : T[i, j, k] * a[i] * b[j] * c[k]
factor bias[k in 0..1] : d[k] * c[k]
factor tie[k in 0..1] : J * s * c[k]""",
    # a deep Boltzmann machine: the latents are not independent (no summing out)
    "dbm": """var v[i in 0..3] : bool
latent h[j in 0..2] : bool
latent g[k in 0..1] : bool
param W[i in 0..3, j in 0..2] = 0
param V[j in 0..2, k in 0..1] = 0
param c[j in 0..2] = 0
factor one[i in 0..3, j in 0..2] : W[i, j] * v[i] * h[j]
factor two[j in 0..2, k in 0..1] : V[j, k] * h[j] * g[k]
factor hid[j in 0..2] : c[j] * h[j]""",
}


def compiled(name, seed=0, scale=0.8):
    model = ebmlang.compile(MODELS[name])
    theta = model.params.theta
    theta[:] = np.random.default_rng(seed).normal(0, scale, theta.shape)
    return model


def random_states(model, rows, seed=1):
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, model.checked.n_state))
    for f in model.vars.values():
        x[:, f.offset:f.offset + f.space.size] = rng.choice(f.domain.values, (rows, f.space.size))
    return x


def test_build_qualifies_contractions_only():
    from ebmlang.backends.fused import fit_text, unfused
    assert all(FusedModel.build(compiled(name)) is not None for name in MODELS)
    assert "not fused" not in fit_text(compiled("rbm")) + fit_text(compiled("dbm"))
    ising = ebmlang.load("examples/ising.ebm", L=4)       # s read twice: not a contraction
    assert FusedModel.build(ising) is None and "'right' is not" in unfused(ising)
    mh = ebmlang.compile(MODELS["rbm"] + "\nsampler v : mh")
    assert FusedModel.build(mh) is None and "'v' is not sampled by exact Gibbs" in unfused(mh)
    assert "not fused" in fit_text(mh)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fields_and_stats_equal_the_generic_path(name):
    model = compiled(name)
    fused, theta = FusedModel.build(model), model.params.theta
    x = random_states(model, 7)
    for block in model.parts():
        for part in block:
            field = fused.families[part.family].field(x, theta)
            want = local_logits(part, x, theta)
            np.testing.assert_allclose(field[..., None] * part.values, want, rtol=0, atol=1e-12)
    want = expected_stats(model, x, np.full(len(x), 1 / len(x)))
    np.testing.assert_allclose(fused.stats(x, theta), want, rtol=0, atol=1e-12)


def brute_force_summed(model, x, latent_names):
    """Per row: log sum over the latent states of exp F, and E[dF/dtheta | the rest], by
    enumerating every latent configuration."""
    fams = [model.vars[n] for n in latent_names]
    slots = [(i, f.domain.values) for f in fams for i in range(f.offset, f.offset + f.space.size)]
    combos = list(itertools.product(*[vals for _, vals in slots]))
    logm, stats = np.zeros(len(x)), np.zeros((len(x), model.checked.n_theta))
    for r in range(len(x)):
        states = np.repeat(x[r:r + 1], len(combos), axis=0)
        for k, (i, _) in enumerate(slots):
            states[:, i] = [c[k] for c in combos]
        lp = model.log_potential(states)
        p = np.exp(lp - logsumexp(lp))
        logm[r] = logsumexp(lp)
        stats[r] = expected_stats(model, states, p)
    return logm, stats


@pytest.mark.parametrize("name", ["rbm", "domains", "threeway"])
def test_summed_out_stats_and_marginal_are_exact(name):
    model = compiled(name)
    fused, theta = FusedModel.build(model), model.params.theta
    latent = [f.name for f in model.vars.values() if f.kind == "latent"]
    x = random_states(model, 6)
    logm, stats = brute_force_summed(model, x, latent)
    got = fused.summed_stats(x, theta, latent)
    np.testing.assert_allclose(got, stats.mean(axis=0), rtol=0, atol=1e-12)
    summed = SummedOut(model, model.state_ids(("latent",)))
    np.testing.assert_allclose(got, summed.expected_stats(x, np.full(len(x), 1 / len(x))),
                               rtol=0, atol=1e-12)
    marginal = Marginal(fused, model, latent).log_marginal(x)
    np.testing.assert_allclose(marginal, logm, rtol=0, atol=1e-12)
    np.testing.assert_allclose(marginal, summed.log_marginal(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sweeps_draw_the_exact_distribution(name):
    """Marginals of every value and E[x_i x_j] of every pair from 200 independent chains x
    400 sweeps, each within 5 standard errors (batch means over chains and 10 batches of 40
    sweeps, which the chains' independence makes trustworthy): with 40-55 checks per model and
    normal tails (5.7e-7 beyond 5 SEs), a false alarm has a chance of order 1e-5 at this
    fixed seed."""
    model = compiled(name, seed=3)
    fused, theta = FusedModel.build(model), model.params.theta
    rng = np.random.default_rng(12)
    ids = model.state_ids()
    x = random_states(model, 200, seed=2)
    for _ in range(50):
        fused.sweep(x, theta, rng)
    draws = np.empty((400,) + x.shape)
    for t in range(400):
        draws[t] = fused.sweep(x, theta, rng)
    draws = draws[:, :, ids].transpose(1, 0, 2)                   # (chains, draws, vars)
    states, p = enumerate_states(model)
    exact = states[:, ids]
    n = draws.shape[0] * draws.shape[1]
    checks = []
    for i, f in [(i, f) for f in model.vars.values() for i in range(f.space.size)]:
        col = f.offset + i
        k = int(np.flatnonzero(ids == col)[0])
        for value in f.domain.values:
            checks.append((draws[:, :, k] == value, p @ (exact[:, k] == value)))
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            checks.append((draws[:, :, a] * draws[:, :, b], p @ (exact[:, a] * exact[:, b])))
    for ind, want in checks:
        ind = ind.astype(float)
        se = max(batch_se(ind), np.sqrt(max(ind.var(), 1e-6) / n))
        assert abs(ind.mean() - want) < 5 * se, (name, ind.mean(), want, se)


def test_clamped_sweeps_draw_the_exact_conditional():
    """The DBM's data phase: v clamped to one row, (h, g) drawn from p(h, g | v), checked like
    the unclamped sweeps against the enumerated conditional (each state's probability)."""
    model = compiled("dbm", seed=4)
    fused, theta = FusedModel.build(model), model.params.theta
    rng = np.random.default_rng(8)
    v = np.array([1.0, 0.0, 1.0, 1.0])
    clamp = np.full((300, model.checked.n_state), np.nan)
    clamp[:, :4] = v
    x = random_states(model, 300, seed=3)
    draws = np.empty((300, 300, model.checked.n_state))
    for t in range(350):
        fused.sweep(x, theta, rng, clamp)
        if t >= 50:
            draws[:, t - 50] = x
    assert np.all(draws[:, :, :4] == v)
    states, p = enumerate_states(model)
    keep = np.all(states[:, :4] == v, axis=1)
    states, p = states[keep][:, 4:], p[keep] / p[keep].sum()
    n = draws.shape[0] * draws.shape[1]
    for state, want in zip(states, p):
        ind = np.all(draws[:, :, 4:] == state, axis=2).astype(float)
        se = max(batch_se(ind), np.sqrt(want * (1 - want) / n))
        assert abs(ind.mean() - want) < 5 * se, (state, ind.mean(), want, se)


def test_fit_equals_the_reference_backend():
    """pcd and cd on a 12 x 6 RBM (2^18 states: the pseudo-log-likelihood metric, through the
    fused `Marginal`): the fused fit draws the numpy backend's random numbers against
    thresholds equal up to rounding, so its chains are the same (a uniform would have to fall
    within ~1e-15 of a threshold) and its params differ only by rounding, which PCD amplifies
    by a few percent per update (measured) but not to 1e-9 in 2 x 20 updates."""
    text = MODELS["rbm"].replace("0..4", "0..11").replace("0..2", "0..5")
    data = {"v": (np.random.default_rng(4).random((40, 12)) < 0.3).astype(float)}
    for method in ("pcd", "cd"):
        fits = []
        for backend in ("auto", "numpy"):
            model = ebmlang.compile(text)
            model.params.theta[:] = np.random.default_rng(0).normal(0, 0.3, model.params.theta.shape)
            result = model.fit(data, method=method, epochs=2, chains=10, seed=5, backend=backend)
            fits.append((model.params.theta.copy(), [h["value"] for h in result.history]))
        (fast, fast_metric), (ref, ref_metric) = fits
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fast_metric, ref_metric, rtol=0, atol=1e-9)
        assert ref_metric[0] is not None
    # the deep Boltzmann machine: its data phase runs clamped chains, persistent per row
    fits = []
    for backend in ("auto", "numpy"):
        model = compiled("dbm", seed=6, scale=0.3)
        model.fit({"v": data["v"][:, :4]}, epochs=2, chains=10, seed=5, backend=backend)
        fits.append(model.params.theta.copy())
    np.testing.assert_allclose(fits[0], fits[1], rtol=0, atol=1e-9)


def test_fit_uses_the_fused_update_only_where_it_applies():
    """backend auto only (numpy and numba stay the references), pcd or cd, no inputs."""
    from ebmlang.io.data import load_data
    rbm = ebmlang.load("examples/rbm.ebm", M=4)
    data = load_data(rbm, {"v": np.zeros((5, 64))})
    for opts, fused in ((FitOptions(), True), (FitOptions(method="cd"), True),
                        (FitOptions(backend="numpy"), False), (FitOptions(backend="numba"), False)):
        assert (_Phases(rbm, data, opts, np.random.default_rng(0)).fused is not None) == fused


@pytest.mark.parametrize("name", ["rbm", "domains"])
def test_stochastic_pseudo_loglik_is_exact(name):
    """N log p(x_i | x_-i), latents summed out, for the variable i the generator picks in each
    row: against a brute-force sum over the latent states and every value of x_i, with the
    generic `SummedOut` and with the fused `Marginal`."""
    from ebmlang.learn.gradient import stochastic_pseudo_loglik
    model = compiled(name)
    latent = [f.name for f in model.vars.values() if f.kind == "latent"]
    visible = [p for block in model.parts() for p in block if model.vars[p.family].kind == "var"]
    ids = np.concatenate([p.ids for p in visible])
    values = [p.values for p in visible for _ in p.ids]
    x = random_states(model, 8)
    pick = np.random.default_rng(9).integers(0, len(ids), len(x))
    want = np.empty(len(x))
    for r in range(len(x)):
        alts = np.repeat(x[r:r + 1], len(values[pick[r]]), axis=0)
        alts[:, ids[pick[r]]] = values[pick[r]]
        own, _ = brute_force_summed(model, x[r:r + 1], latent)
        want[r] = len(ids) * (own[0] - logsumexp(brute_force_summed(model, alts, latent)[0]))
    fused = FusedModel.build(model)
    for summed in (SummedOut(model, model.state_ids(("latent",))), Marginal(fused, model, latent)):
        got = stochastic_pseudo_loglik(model, summed, x, visible, np.random.default_rng(9))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- sample's default backend

def _sample_checks(model, draws, keep=None):
    """(indicator (chains, draws), exact expectation) for every value of every free ground
    variable and E[x_a x_b] of every free pair, against the enumerated distribution
    conditioned on `keep` (a mask over the enumerated states; None: all of them)."""
    ids = model.state_ids()
    states, p = enumerate_states(model)
    if keep is not None:
        mask = keep(states)
        states, p = states[mask], p[mask] / p[mask].sum()
    free = [i for i in ids if len(np.unique(states[:, i])) > 1]
    full = draws.full.astype(float)
    out = []
    for i in free:
        f = next(f for f in model.vars.values() if f.offset <= i < f.offset + f.space.size)
        for value in f.domain.values:
            out.append((full[:, :, i] == value, p @ (states[:, i] == value)))
    for a, b in itertools.combinations(free, 2):
        out.append((full[:, :, a] * full[:, :, b], p @ (states[:, a] * states[:, b])))
    return out


def _assert_exact(checks, what):
    """Each check within 5 batch-means SEs (10 batches per chain, the chains independent; the
    binomial SE as a floor): with at most ~60 checks per case and normal tails, a false alarm
    at a fixed seed has a chance of order 1e-5."""
    for ind, want in checks:
        ind = ind.astype(float)
        n = ind.size
        se = max(batch_se(ind), np.sqrt(max(want * (1 - want), 1e-4) / n))
        assert abs(ind.mean() - want) < 5 * se, (what, ind.mean(), want, se)


def test_sample_runs_the_fused_sweep_where_it_applies():
    from ebmlang.backends.choice import auto_parts, sample_text
    from ebmlang.backends.fused import FusedPart, fused_step
    from ebmlang.backends.numba_backend import CompiledPart
    for name in MODELS:
        parts, step = auto_parts(compiled(name))
        assert step is fused_step and all(isinstance(p, FusedPart) for b in parts for p in b)
    assert "matrix products  the fused sweep" in sample_text(compiled("rbm"))
    ising = ebmlang.load("examples/ising.ebm", L=4)      # not a contraction: compiled kernels
    parts, _ = auto_parts(ising)
    assert all(isinstance(p, CompiledPart) for b in parts for p in b)
    text = sample_text(ising)
    assert "numba  gibbs_s" in text and "not the fused sweep: 'right' is not" in text
    # inputs rule the fused sweep out; the parts whose terms are all contractions still run
    # as matrix products (the numpy part), with the reason printed
    crbm = ebmlang.compile(MODELS["rbm"].replace("var v", "input v"))
    parts, _ = auto_parts(crbm)
    assert not any(isinstance(p, (FusedPart, CompiledPart)) for b in parts for p in b)
    text = sample_text(crbm)
    assert "numpy matrix products  every term on it a contraction" in text
    assert "not the fused sweep: the model has inputs" in text


CASES = {
    # name: (model, sample options, the enumerated states kept); the RBM's weights mixed in
    # sign (cluster moves fall back to Gibbs) or all >= 0 (Swendsen-Wang moves run first)
    "rbm": ("rbm", {}, None),
    "domains": ("domains", {}, None),
    "dbm": ("dbm", {}, None),
    "rbm tempering": ("rbm", dict(tempering=3), None),
    "rbm clamped": ("rbm", dict(clamp=[1, np.nan, 0, np.nan, np.nan] + [np.nan] * 3),
                    lambda s: (s[:, 0] == 1) & (s[:, 2] == 0)),
    "rbm clamped tempering": ("rbm", dict(clamp=[np.nan] * 5 + [1, np.nan, np.nan],
                                          tempering=3), lambda s: s[:, 5] == 1),
    "rbm cluster": ("rbm+", {}, None),
    "rbm cluster tempering": ("rbm+", dict(tempering=3), None),
}


def _case_model(name):
    if name != "rbm+":
        return compiled(name, seed=3)
    model = compiled("rbm", seed=3)
    w = model.checked.params["W"]
    model.params.theta[w.offset:w.offset + w.size] = np.abs(
        model.params.theta[w.offset:w.offset + w.size])
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_sample_draws_the_exact_distribution(case):
    """`model.sample` on the default backend (the fused sweep here), with clamps, tempering
    and cluster moves: every value's marginal and every pair's E[x_a x_b] against exact
    enumeration (see `_assert_exact`), 20 chains x 2,000 draws, fixed seed."""
    from ebmlang.infer.cluster_moves import frustration, cluster_moves
    name, opts, keep = CASES[case]
    model = _case_model(name)
    if name == "rbm+":      # the cluster moves do run (no negative coupling)
        assert cluster_moves(model) is not None and frustration(model) == {}
    draws = model.sample(draws=2000, chains=20, burn_in=200, seed=21, **opts)
    if "clamp" in opts:
        fixed = ~np.isnan(np.asarray(opts["clamp"]))
        assert np.all(draws.full[:, :, :8][:, :, fixed] == np.asarray(opts["clamp"])[fixed])
    _assert_exact(_sample_checks(model, draws, keep), case)


def test_default_sample_same_seed_same_draws():
    model = compiled("rbm", seed=3)
    a = model.sample(draws=50, chains=3, seed=7, tempering=2).states
    b = model.sample(draws=50, chains=3, seed=7, tempering=2).states
    assert np.array_equal(a, b)
    assert not np.array_equal(a, model.sample(draws=50, chains=3, seed=8, tempering=2).states)
