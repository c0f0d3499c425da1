"""Conditionals and learning statistics of terms with sums in nonlinear position, printed in
index form (middle/folded.py), checked against the model itself: the formula the user reads,
evaluated at every index of a tiny instance, gives the exact conditional computed from the
compiled log-potential (no sampling: these are identities, so the tolerance is rounding)."""

import numpy as np
import pytest
import sympy as sp

import ebmlang
from ebmlang.backends.runtime import total_log_potential
from ebmlang.middle.folded import folded_statistics
from ebmlang.middle.forms import sigmoid, softplus

FREE = """
model m
const N = 4
const M = 3
var v[i in 0..N-1] : bool
param W[i in 0..N-1, j in 0..M-1] = normal(0, 1)
param b[i in 0..N-1] = normal(0, 1)
param c[j in 0..M-1] = normal(0, 1)
factor vis[i in 0..N-1] : b[i] * v[i]
factor free[j in 0..M-1] : softplus(c[j] + sum(i in 0..N-1) W[i, j] * v[i])
"""

# a shifted read (v[i + 1]: v[0] is not read), a where, and tanh of the sum
SHIFTED = """
model m
const N = 5
var v[i in 0..N-1] : spin
param W[i in 0..N-1] = normal(0, 1)
param c = 0.3
factor f : 2 * tanh(c + sum(i in 0..N-2 where i != 2) W[i] * v[i + 1])
"""

REAL = """
model m
const N = 3
var x[i in 0..N-1] : real
param a[i in 0..N-1] = normal(0, 1)
energy quad[i in 0..N-1] : x[i] ^ 2 / 2
factor f : log(1 + (sum(i in 0..N-1) a[i] * x[i]) ^ 2)
"""


def _numeric(e, model, x: np.ndarray):
    """A test-only evaluator of a printed sympy form: consts, params and variables by value."""
    cm = model.checked
    e = e.xreplace({sp.Symbol(k): sp.Integer(int(v)) for k, v in cm.consts.items()}).doit()
    e = e.replace(softplus, lambda a: sp.log(1 + sp.exp(a)))
    e = e.replace(sigmoid, lambda a: 1 / (1 + sp.exp(-a)))
    values = {}
    for atom in e.atoms(sp.Indexed) | e.atoms(sp.Symbol):
        name = atom.base.label.name if isinstance(atom, sp.Indexed) else atom.name
        idx = tuple(int(k) for k in atom.indices) if isinstance(atom, sp.Indexed) else ()
        fam = cm.params.get(name) or cm.vars.get(name)
        if fam is None or fam.space.ndim != len(idx):    # an IndexedBase's label
            continue
        if name in cm.params:
            values[atom] = float(model.params[name][idx])
        elif name in cm.vars:
            fam = cm.vars[name]
            row = int(fam.space.lookup([np.array([k]) for k in idx])[0]) if idx else 0
            values[atom] = float(x[fam.offset + row])
    return float(e.xreplace(values))


def _states(model, n, rng):
    fam = next(iter(model.checked.vars.values()))
    return fam, [rng.choice(fam.domain.values, size=model.checked.n_state).astype(float)
                 if fam.domain.finite else rng.normal(size=model.checked.n_state)
                 for _ in range(n)]


@pytest.mark.parametrize("text", [FREE, SHIFTED])
def test_printed_logistic_is_the_exact_conditional(text):
    model = ebmlang.compile(text)
    cond = model.conditionals()[next(iter(model.checked.vars))]
    assert "where" in cond.text and "v[0]" not in cond.text.split("|")[-1]  # index form
    (a,) = [s for s in cond.expr.free_symbols if s.name == "i"]
    fam, states = _states(model, 5, np.random.default_rng(0))
    lo, hi = fam.domain.values
    for x in states:
        for k in range(fam.space.size):
            up, down = x.copy(), x.copy()
            up[fam.offset + k], down[fam.offset + k] = hi, lo
            exact = 1 / (1 + np.exp(-(model.log_potential(up) - model.log_potential(down))[0]))
            printed = _numeric(cond.expr.xreplace({a: sp.Integer(k)}), model, x)
            assert printed == pytest.approx(exact, rel=1e-10, abs=1e-12)


def test_free_energy_conditional_text_and_latex():
    cond = ebmlang.compile(FREE).conditionals()["v"]
    assert cond.blanket == ["v[i'] for i' in 0..N - 1 where i' != i"]
    assert "sum(i' in 0..N - 1 where i' != i) W[i', j]*v[i']" in cond.text
    assert r"\substack{i'=0 \\ i' \neq i}" in cond._repr_latex_()


def test_printed_density_differences_are_exact():
    model = ebmlang.compile(REAL)
    cond = model.conditionals()["x"]
    assert cond.kind == "density" and "sum(i' in 0..N - 1 where i' != i)" in cond.text
    (a,) = [s for s in cond.local.free_symbols if s.name == "i"]
    fam, states = _states(model, 4, np.random.default_rng(1))
    for x in states:
        for k in range(3):
            local = cond.local.xreplace({a: sp.Integer(k)})
            own = [s for s in local.atoms(sp.Indexed) if s.base.label.name == "x"
                   and s.indices == (k,)]
            y = x.copy()
            y[k] += 0.7
            exact = (model.log_potential(y) - model.log_potential(x))[0]
            at = [_numeric(local, model, z) for z in (y, x)]
            assert own and at[0] - at[1] == pytest.approx(exact, rel=1e-10, abs=1e-12)


def test_folded_statistics_are_the_param_derivatives():
    """d(free)/dW[a, j] and d(free)/dc[j] as printed, against central differences of the
    log-potential in theta (step 1e-6: truncation error ~1e-12, rounding ~1e-10)."""
    model = ebmlang.compile(FREE)
    (term,) = [t for t in model.terms if t.owner == "free"]
    stats = dict(folded_statistics(model.checked, term))
    assert set(stats) == {"W", "c"}
    x = np.array([1.0, 0.0, 1.0, 1.0])
    theta = model.params.theta
    p = model.checked.params
    for (a, j) in [(0, 0), (1, 2), (3, 1)]:
        for name, idx, at in (("W", (a, j), {"i": a, "j": j}), ("c", (j,), {"j": j})):
            e = stats[name].xreplace({s: sp.Integer(at[s.name]) for s in stats[name].free_symbols
                                      if s.name in at})
            pos = p[name].offset + int(np.ravel_multi_index(idx, p[name].space.shape))
            step = np.zeros_like(theta)
            step[pos] = 1e-6
            only = [k for k in model.kernels if k.term.owner == "free"]
            fd = (total_log_potential(only, x[None], theta + step) -
                  total_log_potential(only, x[None], theta - step))[0] / 2e-6
            assert _numeric(e, model, x) == pytest.approx(fd, abs=1e-7)


SCALAR = """
model m
const N = 4
var v[i in 0..N-1] : bool
param w = 0.7
param W[i in 0..N-1] = normal(0, 1)
factor f : tanh(sum(i in 0..N-1) w * W[i] * v[i])
"""


def test_folded_statistic_of_a_param_every_summand_reads():
    """d/dw of tanh(sum(i) w W[i] v[i]) sums over i; d/dW[a] does not: both against central
    differences of the log-potential (as above)."""
    model = ebmlang.compile(SCALAR)
    (term,) = model.terms
    stats = dict(folded_statistics(model.checked, term))
    x = np.array([1.0, 0.0, 1.0, 1.0])
    theta = model.params.theta
    p = model.checked.params
    for name, pos, at in (("w", p["w"].offset, {}), ("W", p["W"].offset + 2, {"i": 2})):
        e = stats[name].xreplace({s: sp.Integer(at[s.name]) for s in stats[name].free_symbols
                                  if s.name in at})
        step = np.zeros_like(theta)
        step[pos] = 1e-6
        fd = (total_log_potential(model.kernels, x[None], theta + step) -
              total_log_potential(model.kernels, x[None], theta - step))[0] / 2e-6
        assert _numeric(e, model, x) == pytest.approx(fd, abs=1e-7)
