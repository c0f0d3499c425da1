"""The binary RBM's in-place PCD update (backends/fused_pcd.py) and the unchecked SGD steps
(learn/optim.py `ProvedSteps`): the same fit as the generic fused path and the numpy reference
(to 1e-12, same seed), the divergence safeguard kept, and a PCD fit reaching the exact maximum
likelihood of a small RBM (computed here by enumeration and scipy, without ebmlang).
"""

import itertools
import json

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

import ebmlang
import ebmlang.learn.fit as fit_module
from ebmlang.cli.app import main
from ebmlang.io.data import load_data
from ebmlang.learn.fit import FitOptions, _Phases
from ebmlang.learn.optim import SAFE_BOUND, ProvedSteps


def rbm(nv: int, nh: int, extra: str = "") -> str:
    return f"""var v[i in 0..{nv - 1}] : bool
latent h[j in 0..{nh - 1}] : bool
param W[i in 0..{nv - 1}, j in 0..{nh - 1}] = normal(0, 0.01)
param b[i in 0..{nv - 1}] = 0
param c[j in 0..{nh - 1}] = 0
factor pair[i in 0..{nv - 1}, j in 0..{nh - 1}] : W[i, j] * v[i] * h[j]
factor vis[i in 0..{nv - 1}] : b[i] * v[i]
factor hid[j in 0..{nh - 1}] : c[j] * h[j]
{extra}"""


def _fit(text, data, fast: bool, backend="auto", monkeypatch=None, **kwargs):
    if not fast:
        monkeypatch.setattr(fit_module.BipartitePCD, "build", staticmethod(lambda *a: None))
    model = ebmlang.compile(text)
    model.params.theta[:] = np.random.default_rng(0).normal(0, 0.3, model.params.theta.shape)
    result = model.fit(data, backend=backend, **kwargs)
    monkeypatch.undo()
    return model.params.theta.copy(), result.history


@pytest.mark.parametrize("kwargs", [
    dict(optimizer="sgd", momentum=0.0, lr=0.05),                          # unchecked steps
    dict(optimizer="sgd", momentum=0.0, lr=0.05, schedule="constant"),
    dict(optimizer="adam"),                                                # checked steps
])
def test_fast_update_equals_the_generic_paths(kwargs, monkeypatch):
    """Same seed, 3 epochs of 95 rows (the last minibatch short), 7 chains: the in-place update
    draws the generic fused sweep's random numbers against probabilities equal up to rounding
    of the stacked products (~1e-16), so the chains are the same and the params, the metric,
    the gaps and the declared stat's averages agree to 1e-12 with the generic fused path and
    with the numpy reference."""
    text = rbm(12, 6, "stat ink = sum(i in 0..11) v[i] / 12")
    data = {"v": (np.random.default_rng(4).random((95, 12)) < 0.3).astype(float)}
    opts = dict(epochs=3, batch_size=10, chains=7, seed=5, **kwargs)
    fast, fast_hist = _fit(text, data, True, monkeypatch=monkeypatch, **opts)
    for backend in ("auto", "numpy"):
        ref, ref_hist = _fit(text, data, False, backend, monkeypatch=monkeypatch, **opts)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
        for a, b in zip(fast_hist, ref_hist):
            assert a["value"] == pytest.approx(b["value"], abs=1e-12)
            assert a["gaps"] == pytest.approx(b["gaps"], abs=1e-12)
            assert a["stats"] == b["stats"]            # chain states identical


def test_fast_update_only_where_it_applies():
    """pcd with k = 1 on a binary RBM, visible block first; not cd, k = 2, tempering, missing
    values, a second weight term, spins or a weight with a coefficient."""
    def applies(text, cells=None, **opts):
        model = ebmlang.compile(text)
        x = np.zeros((6, 4)) if cells is None else cells
        data = load_data(model, {"v": x})
        phases = _Phases(model, data, FitOptions(**opts), np.random.default_rng(0))
        return phases.bipartite is not None
    base = rbm(4, 3)
    assert applies(base)
    assert not applies(base, method="cd")
    assert not applies(base, k=2)
    assert not applies(base, tempering=3)
    assert not applies(base, backend="numpy")
    gaps = np.zeros((6, 4))
    gaps[0, 1] = np.nan
    assert not applies(base, gaps)
    assert not applies(base.replace(": bool", ": spin"), np.ones((6, 4)))
    assert not applies(base.replace(": W[i, j] * v", ": 2 * W[i, j] * v"))
    second = base + "param U[i in 0..3, j in 0..2] = 0\nfactor two[i in 0..3, j in 0..2] : U[i, j] * v[i] * h[j]\n"
    assert not applies(second)


def test_proved_steps_fall_back_near_overflow():
    """`ProvedSteps` applies lr * gap exactly (SGD's numbers) while max |theta| + lr * bound
    stays below SAFE_BOUND, and leaves theta alone beyond it (the checked path's turn)."""
    opts = FitOptions(optimizer="sgd", momentum=0.0)
    theta = np.array([1.0, -2.0, 3.0])
    steps = ProvedSteps(opts, theta, 1.0, checked=False)
    gap = np.array([0.5, -0.25, 1.0])
    total = np.array([0.125, 0.0, -1.0])
    assert steps.apply(theta, gap, 0.1, total)
    assert np.array_equal(theta, np.array([1.0, -2.0, 3.0]) + 0.1 * gap)
    assert np.array_equal(total, np.array([0.125, 0.0, -1.0]) + gap)   # the epoch's gap sum
    before, summed = theta.copy(), total.copy()
    assert not steps.apply(theta, gap, SAFE_BOUND, total)
    assert np.array_equal(theta, before) and np.array_equal(total, summed)
    theta[0] = np.nan                                   # a NaN bound is never safe
    assert not ProvedSteps(opts, theta, 1.0, checked=False).apply(theta, gap, 0.1, total)
    for other in (FitOptions(optimizer="adam"), FitOptions(optimizer="sgd", momentum=0.9),
                  FitOptions(optimizer="sgd", momentum=0.0, weight_decay=0.1)):
        assert not ProvedSteps(other, theta, 1.0, checked=False).on
    assert not ProvedSteps(opts, theta, 1.0, checked=True).on


def test_rbm_divergence_stops_with_the_last_finite_params(tmp_path, capsys):
    """lr 1e308 on the fused RBM: no step is provably finite, the checked path runs, and the
    fit stops naming the param, writing finite params."""
    model = tmp_path / "rbm.ebm"
    model.write_text(rbm(4, 3))
    data = tmp_path / "d.csv"
    data.write_text("v[0],v[1],v[2],v[3]\n" + "1,1,1,1\n0,0,0,0\n" * 20)
    out = tmp_path / "p.json"
    code = main(["fit", str(model), str(data), "-o", str(out), "--optimizer", "sgd",
                 "--momentum", "0", "--lr", "1e308", "--schedule", "constant"])
    err = capsys.readouterr().err
    assert code == 1 and "the fit diverged" in err and "Traceback" not in err
    saved = json.loads(out.read_text())["params"]
    assert all(np.all(np.isfinite(np.asarray(v, float))) for v in saved.values())


NV, NH = 5, 2
VIS = np.array(list(itertools.product([0, 1], repeat=NV)), float)


def _unpack(t):
    return t[:NV * NH].reshape(NV, NH), t[NV * NH:NV * NH + NV], t[NV * NH + NV:]


def _loglik_and_grad(t, counts):
    """Average exact log p(v) (hidden units summed out, Z over the 32 visible states) and its
    gradient, written without ebmlang."""
    W, b, c = _unpack(t)
    f = VIS @ b + np.logaddexp(0, VIS @ W + c).sum(1)
    logp = f - logsumexp(f)
    q, w = np.exp(logp), counts / counts.sum()
    hm = expit(VIS @ W + c)
    diff = w - q
    grad = np.concatenate([(VIS.T @ (diff[:, None] * hm)).ravel(), VIS.T @ diff, hm.T @ diff])
    return w @ logp, grad


def test_pcd_reaches_the_exact_mle_of_a_small_rbm():
    """2,000 draws of a 5 x 2 RBM; the exact MLE of the marginal likelihood by BFGS from 10
    starts (the best; the likelihood is not concave). PCD (the in-place update, plain SGD with a
    linear decay) must end within 0.02 nats of the maximum average log-likelihood: the data's
    own resolution is d / 2n = 17 / 4,000 = 0.004 nats (the LL difference between the MLE and
    the truth), and PCD's deficit measured over seeds 0-2 is 0.008-0.009. At the MLE the
    model's mean of each v_i equals the data's (the gradient in b is zero); PCD's must be within
    0.015, 1.4 standard errors of the data mean itself (sqrt(0.25 / 2000) = 0.011), measured
    0.003-0.005 over seeds 0-2."""
    rng = np.random.default_rng(1)
    true = np.concatenate([rng.normal(0, 2, NV * NH), rng.normal(0, 1, NV), rng.normal(0, 1, NH)])
    f = VIS @ _unpack(true)[1] + np.logaddexp(0, VIS @ _unpack(true)[0] + _unpack(true)[2]).sum(1)
    p = np.exp(f - logsumexp(f))
    idx = rng.choice(len(VIS), size=2000, p=p)
    counts = np.bincount(idx, minlength=len(VIS)).astype(float)
    best = None
    for start in np.random.default_rng(0).normal(0, 1, (10, len(true))):
        res = minimize(lambda t: tuple(-a for a in _loglik_and_grad(t, counts)), start,
                       jac=True, method="BFGS", options={"gtol": 1e-9})
        best = res if best is None or res.fun < best.fun else best
    max_ll = -best.fun
    model = ebmlang.compile(rbm(NV, NH))
    model.fit({"v": VIS[idx]}, method="pcd", optimizer="sgd", momentum=0.0, lr=0.1, epochs=30,
              batch_size=20, chains=100, seed=0)
    got = np.concatenate([model.params["W"].ravel(), model.params["b"], model.params["c"]])
    ll, _ = _loglik_and_grad(got, counts)
    assert max_ll - 0.02 < ll <= max_ll + 1e-9
    W, b, c = _unpack(got)
    f = VIS @ b + np.logaddexp(0, VIS @ W + c).sum(1)
    q = np.exp(f - logsumexp(f))
    assert np.abs(q @ VIS - VIS[idx].mean(axis=0)).max() < 0.015
