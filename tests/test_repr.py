"""What the Python objects show in a shell and a notebook (issue 11, item 8): one concise line
each (never the raw arrays), HTML tables, and conditionals as formulas and LaTeX."""

import re

import numpy as np
import pytest

import ebmlang

CHAIN = """model chain
var x[i in 0..3] : bool
param J = 0.5
param b[i in 0..3] = 0
factor pair[i in 0..2] : J * x[i] * x[i + 1]
factor bias[i in 0..3] : b[i] * x[i]
stat n = sum(i in 0..3) x[i]
"""


@pytest.fixture(scope="module")
def model():
    return ebmlang.compile(CHAIN)


def test_samples_and_trace_repr_say_what_they_hold(model):
    draws = model.sample(draws=30, chains=2, seed=0, backend="numpy")
    assert repr(draws) == "<Samples chain: 2 chains x 30 draws of x[4]; stats n>"
    assert repr(draws.trace()) == "<Trace chain: 2 chains x 30 draws of x[4]; stats n>"
    streamed = model.sample(draws=1, chains=1, seed=0, backend="numpy", keep=False)
    assert repr(streamed) == "<Samples chain: 1 chain x 1 draw of x[4] (not kept); stats n>"
    html = draws._repr_html_()
    assert "<th>x</th><td>var</td><td>bool</td><td>4</td>" in html
    trace_html = draws.trace()._repr_html_()
    assert all(c in trace_html for c in ("mcse_mean", "ess_tail", "r_hat", "energy"))


def test_mh_and_hmc_acceptance_in_repr():
    text = open("examples/doublewell.ebm").read()
    well = ebmlang.compile(text + "sampler x : mh\n")
    draws = well.sample(draws=40, chains=2, seed=0)
    rate = draws.acceptance["x"]
    assert repr(draws).endswith(f"; stats position; MH x accepted {rate:.3f}>")
    draws = ebmlang.compile(text).sample(draws=40, chains=2, seed=0)   # MH then HMC, the default
    move, rate = draws.gradient, draws.acceptance["x"]
    assert repr(draws).endswith(f"; stats position; MH x accepted {rate:.3f}; HMC x accepted "
                                f"{move.acceptance:.3f}, {move.divergent} divergent>")


def test_params_repr_shows_values_or_a_summary(model):
    assert repr(model.params) == "Params(J=0.5, b=<4, all 0>)"
    model.params["b"] = [0.0, 1.0, -1.0, 2.0]
    assert repr(model.params) == "Params(J=0.5, b=[0, 1, -1, 2])"
    rbm = ebmlang.load("examples/rbm.ebm")
    text = repr(rbm.params)
    W = rbm.params["W"]
    assert text.startswith(f"Params(W=<64 x 100, mean {W.mean():.3g}, sd {W.std():.3g}, "
                           f"range [{W.min():.3g}, {W.max():.3g}]>, b=<64, all 0>")
    assert len(text) < 200
    assert "<th>W</th><td>64 x 100</td>" in rbm.params._repr_html_()
    model.params["b"] = np.zeros(4)


def test_fit_result_repr(model):
    data = {"x": np.random.default_rng(0).integers(0, 2, (40, 4))}
    result = model.fit(data, epochs=2, seed=0, backend="numpy")
    last = result.history[-1]
    gaps = " ".join(f"{k} {v:.2g}" for k, v in last["gaps"].items())
    assert repr(result) == (f"<FitResult pcd: 2 epochs, last {last['metric']} "
                            f"{last['value']:.4g}, gaps {gaps}; params J, b[4]>")
    assert "<th>b</th><td>4</td>" in result._repr_html_()


SOFTMAX = "var z[i in 0..2] : cat(3)\nfactor f[i in 0..1] : 0.5 * (z[i] == z[i + 1])\n"


@pytest.mark.parametrize("source, family, start", [
    (CHAIN, "x", "p(x[i] = 1 | blanket) = sigmoid("),
    (SOFTMAX, "z", "log p(z[i] = k | blanket) = "),
    ("var y[i in 0..2] : real\nenergy e[i in 0..2] : 0.5 * y[i] ^ 2\n", "y",
     "y[i] | blanket ~ Normal(mean = 0, variance = 1)"),
    ("var x : real\nenergy well : x ^ 4 - 2 * x ^ 2\n", "x", "log p(x | blanket) = "),
])
def test_every_conditional_shows_its_formula(source, family, start):
    cond = ebmlang.compile(source).conditionals()[family]
    formula = cond.text.splitlines()[-1].strip()
    assert formula.startswith(start)
    assert repr(cond) == f"Conditional({formula})"
    latex = cond._repr_latex_()
    assert latex == f"${cond.latex}$" and latex.count("{") == latex.count("}")


def test_latex_reads_without_redundant_brackets():
    ising = ebmlang.load("examples/ising.ebm").conditionals()["s"]
    assert ising.latex == (
        r"p\left(s_{i, j} = +1 \mid \text{blanket}\right) = \sigma\left(2 \beta \left(J "
        r"\left(s_{(i + 1) \bmod L, j} + s_{(i - 1) \bmod L, j} + s_{i, (j + 1) \bmod L} "
        r"+ s_{i, (j - 1) \bmod L}\right) + h\right)\right)")
    rbm = ebmlang.load("examples/rbm.ebm").conditionals()["v"]
    assert rbm.latex == (r"p\left(v_{i} = 1 \mid \text{blanket}\right) = "
                         r"\sigma\left(b_{i} + \sum_{j=0}^{M - 1} W_{i, j} h_{j}\right)")


def test_a_mod_outside_a_read_keeps_its_brackets():
    """Only a Mod inside a subscript loses sympy's brackets: a product with a Mod factor
    still shows it apart."""
    model = ebmlang.compile("var x[i in 0..3] : bool\n"
                            "factor f[i in 0..3] : ((i + 1) % 2) * x[i] * x[(i + 1) % 4]\n")
    latex = model.conditionals()["x"].latex
    assert re.search(r"x_\{\(i \+ 1\) \\bmod 4\}", latex), latex
    assert r"\left(" in latex and r"\bmod 2" in latex, latex
