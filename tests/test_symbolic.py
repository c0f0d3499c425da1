"""The symbolic conditionals: golden text, and the same numbers as the ground kernels."""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import ebmlang
from ebmlang.backends.runtime import local_logits
from ebmlang.middle.forms import IndexSum, Ind
from test_sampler_exact import MODELS, compile_case

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "conditionals"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.ebm"))


def _render(model) -> str:
    return "\n\n".join(c.text for c in model.conditionals().values()) + "\n"


@pytest.mark.parametrize("name", EXAMPLES)
def test_conditionals_golden(name, request):
    model = ebmlang.load(ROOT / "examples" / f"{name}.ebm")
    text = _render(model)
    golden = GOLDEN / f"{name}.txt"
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run pytest --update-golden"
    assert text == golden.read_text()


def test_ising_reads_as_the_seed_says():
    c = ebmlang.load(ROOT / "examples" / "ising.ebm").conditionals()["s"]
    assert c.kind == "logistic"
    assert "sigmoid(2*beta*(J*(s[(i + 1) % L, j] + s[(i - 1) % L, j] + s[i, (j + 1) % L] + " \
           "s[i, (j - 1) % L]) + h))" in c.text
    assert "2 colours, (i + j) % 2" in c.text
    assert isinstance(c.expr, sp.Expr) and c.latex.startswith("p\\left(")


def test_rbm_hidden_conditional():
    c = ebmlang.load(ROOT / "examples" / "rbm.ebm").conditionals()["h"]
    assert "p(h[j] = 1 | blanket) = sigmoid(c[j] + sum(i in 0..N - 1) W[i, j]*v[i])" in c.text


def _value_at(expr, model, fam, row, x, value_sym=None, value=None):
    """Evaluate a derived expression at ground index `row` of `fam` on state x."""
    checked = model.checked
    subs = {sp.Symbol(n, integer=True): int(v) for n, v in zip(fam.space.names, fam.space.tuples[row])}
    subs.update({sp.Symbol(k): v for k, v in checked.consts.items()})
    if value_sym is not None:
        subs[value_sym] = value
    e = expr.xreplace(subs).doit()

    def lookup(atom):
        name = atom.base.label.name
        idx = [int(i) for i in atom.indices]
        if name in checked.params:
            return float(model.params[name][tuple(idx)])
        f = checked.vars[name]
        return float(x[f.offset + int(f.space.lookup([np.array([i]) for i in idx])[0])])

    for _ in range(3):
        e = e.xreplace({a: lookup(a) for a in e.atoms(sp.Indexed) if all(i.is_Integer for i in a.indices)})
        e = e.xreplace({sp.Symbol(p): float(model.params[p]) for p in checked.params
                        if checked.params[p].space.ndim == 0})
        e = sp.sympify(e).doit()  # a lone atom replaced by a number is a Python float
    return float(e)


@pytest.mark.parametrize("name", ["ising_torus", "potts", "threeway", "denoise", "rbm", "sums"])
def test_symbolic_conditional_equals_ground_kernel(name, tmp_path):
    """At random states, the sympy formula gives the same logits as the generated kernels."""
    model, inputs = compile_case(name, tmp_path)
    rng = np.random.default_rng(3)
    conds = model.conditionals()
    x = model.sample(draws=2, chains=1, burn_in=0, seed=1, inputs=inputs).full[0, -1]
    for block in model.parts():
        for part in block:
            fam = model.vars[part.family]
            c = conds[fam.name]
            assert not c.local.atoms(IndexSum)
            logits = local_logits(part, x[None, :], model.params.theta)[0]
            for pos in rng.choice(len(part.ids), size=min(4, len(part.ids)), replace=False):
                row = part.ids[pos] - fam.offset
                if c.kind == "logistic":
                    want = logits[pos, 1] - logits[pos, 0]
                    p = _value_at(c.expr, model, fam, row, x)
                    assert p == pytest.approx(1 / (1 + np.exp(-want)), abs=1e-9)
                else:
                    got = [_value_at(c.local, model, fam, row, x, c.value, v) for v in fam.domain.values]
                    assert np.allclose(np.array(got) - got[0], logits[pos] - logits[pos, 0])
