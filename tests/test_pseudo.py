"""Pseudo-likelihood against brute force: log p(x_i | x_-i) of every variable of every row by
setting x_i to each value of its domain and evaluating the model's log potential, and its
gradient by central differences; on models where one factor instance reads two (or the same
twice) of a family's variables, where the family-level parts differ from the Gibbs blocks."""

from __future__ import annotations

import numpy as np
import pytest

import ebmlang
from ebmlang.learn.gradient import pseudo_gradient, pseudo_loglik, pseudo_parts

MODELS = {
    "fvbm": """var x[i in 0..4] : bool
param W[i in 0..4, j in 0..4] = normal(0, 0.7)
param b[i in 0..4] = normal(0, 0.5)
factor pair[i in 0..4, j in 0..4 where i < j] : W[i, j] * x[i] * x[j]
factor bias[i in 0..4] : b[i] * x[i]
""",
    "potts_self_reads": """var z[i in 0..3] : cat(3)
param T[a in 0..2, c in 0..2] = normal(0, 0.5)
param J = 0.4
factor chain[i in 0..2] : T[z[i], z[i + 1]] + J * (z[i] == z[i + 1])
factor twice[i in 0..3] : J * z[i] * z[i] - 0.1 * z[i]
factor ring : J * z[0] * z[3]
""",
    "two_families": """var s[i in 0..2] : spin
var y[i in 0..2] : 0..2
param J = 0.3
param K = -0.2
param c[i in 0..2] = normal(0, 0.3)
factor ss[i in 0..1] : J * s[i] * s[i + 1]
factor sy[i in 0..2] : K * s[i] * y[i] + c[i] * y[i] + 0.1 * s[0] * y[2]
""",
    "gmrf": """var x[i in 0..2] : real
param a = 1.2
param c = 0.4
energy self[i in 0..2] : 0.5 * a * x[i] ^ 2
energy pair[i in 0..2, j in 0..2 where i < j] : -c * x[i] * x[j]
""",
}


def _log_normalizer(model, x: np.ndarray, i: int) -> np.ndarray:
    """log of the integral over x_i of exp(log potential), per row, by quadrature."""
    from scipy.integrate import quad
    out = []
    for row in x:
        def f(t, shift=0.0):
            y = row.copy()
            y[i] = t
            return np.exp(model.log_potential(y[None])[0] - shift)
        shift = np.log(f(row[i]))
        out.append(shift + np.log(quad(f, -np.inf, np.inf, args=(shift,), epsabs=0,
                                       epsrel=1e-12)[0]))
    return np.array(out)


def _brute_pl(model, x: np.ndarray) -> np.ndarray:
    """sum_i log p(x_i | x_-i) per row, by enumeration of each variable's domain (by
    quadrature for a real one)."""
    out = np.zeros(len(x))
    for f in model.vars.values():
        for i in range(f.offset, f.offset + f.space.size):
            if not f.domain.finite:
                out += model.log_potential(x) - _log_normalizer(model, x, i)
                continue
            ell = []
            for v in f.domain.values:
                y = x.copy()
                y[:, i] = v
                ell.append(model.log_potential(y))
            ell = np.stack(ell, axis=1)
            top = ell.max(axis=1, keepdims=True)
            norm = top[:, 0] + np.log(np.exp(ell - top).sum(axis=1))
            out += model.log_potential(x) - norm
    return out


def _rows(model, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, model.checked.n_state))
    for f in model.vars.values():
        x[:, f.offset:f.offset + f.space.size] = rng.choice(f.domain.values, (n, f.space.size)) \
            if f.domain.finite else rng.standard_normal((n, f.space.size))
    return x


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pseudo_likelihood_and_its_gradient_are_exact(name):
    model = ebmlang.compile(MODELS[name])
    x = _rows(model, 7, seed=len(name))
    parts = pseudo_parts(model)
    assert np.allclose(pseudo_loglik(model, x, parts), _brute_pl(model, x), atol=1e-10)
    w = np.linspace(0.5, 1.5, len(x))
    got = pseudo_gradient(model, x, w, parts)
    theta, h = model.params.theta, 1e-6
    want = np.zeros_like(theta)
    for k in range(len(theta)):
        theta[k] += h
        up = w @ _brute_pl(model, x)
        theta[k] -= 2 * h
        down = w @ _brute_pl(model, x)
        theta[k] += h
        want[k] = (up - down) / (2 * h)
    assert np.allclose(got, want, atol=1e-5), np.abs(got - want).max()


def test_one_part_per_family():
    """A fully connected machine has one Gibbs block per variable, but one PL part."""
    model = ebmlang.compile(MODELS["fvbm"])
    assert len(model.parts()) == 5
    assert [p.family for p in pseudo_parts(model)] == ["x"]


STAT_MODEL = """var x[i in 0..5] : bool
param b[i in 0..5] = 3
stat ones = sum(i in 0..5) x[i]
factor bias[i in 0..5] : b[i] * x[i]
"""


def test_the_model_side_of_the_stats_is_what_the_method_matches():
    """Issue 11 item 11: pl has no model side (it printed the initial chains' stats, which never
    change); cd reads its last k-sweep samples. Data all zeros, p(x_i = 1) = sigmoid(3) under
    the initial params, which a learning rate of 1e-9 keeps: one sweep from the data gives
    6 sigmoid(3) = 5.71 ones on average, the initial uniform chains about 3. The last
    minibatch has 200 rows: the standard error of the average is sqrt(6 p (1 - p) / 200)."""
    data = {"x": np.zeros((200, 6))}
    pl = ebmlang.compile(STAT_MODEL).fit(data, method="pl", epochs=2, lr=1e-9)
    assert all(e["stats"] == {} for e in pl.history)
    cd = ebmlang.compile(STAT_MODEL).fit(data, method="cd", epochs=2, lr=1e-9, batch_size=200)
    p = 1 / (1 + np.exp(-3.0))
    se = np.sqrt(6 * p * (1 - p) / 200)
    for e in cd.history:
        assert e["stats"]["ones"]["data"] == 0
        assert abs(e["stats"]["ones"]["model"] - 6 * p) < 5 * se
