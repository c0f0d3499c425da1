"""Property tests (hypothesis): any model text either compiles or is refused with a located
user error (`FILE:LINE:COL: error: ...`), never an internal crash.

Models come from two sources: the shipped examples (their consts shrunk so that compiling is
fast) with one to three random character, token or line edits, and small models generated
from the language's own pieces (families, index offsets, params, expressions), also mutated.
A model that compiles also goes through the check-level work `ebmlang check` does. The default
run is a few hundred derandomized examples; the `slow` run draws thousands of fresh ones.
"""

from __future__ import annotations

import re
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ebmlang
from ebmlang.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LOCATED = re.compile(r"^.+:\d+:\d+: error: \S")


def _shrunk(text: str) -> str:
    """An example with every integer const above 4 set to 3 (unless it indexes a set file)."""
    if "load(" in text:
        return text
    return re.sub(r"(?m)^(const\s+\w+\s*=\s*)(\d+)\s*$",
                  lambda m: m.group(1) + str(min(int(m.group(2)), 3)), text)


SEEDS = [_shrunk(p.read_text()) for p in sorted(EXAMPLES.glob("*.ebm"))]
TOKEN = re.compile(r"\d+\.\d*(?:e[-+]?\d+)?|\d+(?:e[-+]?\d+)?|\w+|\.\.|[=!<>]=|\S")
WORDS = ["var", "latent", "input", "param", "factor", "energy", "stat", "const", "range", "set",
         "domain", "sampler", "sum", "where", "in", "and", "or", "not", "model", "load", "exp",
         "log", "sqrt", "abs", "min", "max", "softplus", "sigmoid", "real", "bool", "spin",
         "cat", "gibbs", "mh", "normal", "uniform", "0", "1", "-1", "-2", "2", "0.5", "1e400",
         "99999999999", "..", "%", "^", "/", "==", "<", "(", ")", "[", "]", "{", "}", ",", ":",
         "=", "i", "j", "N", "L", "x", "s", "J"]
CHARS = string.digits + "[](){}:,.=+-*/^%<>!#\n ijkxNLJ"


@st.composite
def _edit(draw, text: str) -> str:
    """One random edit of the text: a character, a token or a line inserted, removed or
    replaced."""
    kind = draw(st.sampled_from(["char", "char", "token", "token", "token", "line"]))
    if kind == "char":
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        ch = draw(st.sampled_from(CHARS))
        rest = text[at:] if op == "insert" else text[at + 1:]
        return text[:at] + ("" if op == "delete" else ch) + rest
    if kind == "token":
        spans = [m.span() for m in TOKEN.finditer(text)]
        if not spans:
            return text
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        op = draw(st.sampled_from(["delete", "replace", "replace", "duplicate"]))
        vocab = sorted({text[x:y] for x, y in spans}) + WORDS
        new = {"delete": "", "duplicate": text[a:b] + " " + text[a:b],
               "replace": draw(st.sampled_from(vocab))}[op]
        return text[:a] + new + text[b:]
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    op = draw(st.sampled_from(["delete", "duplicate", "swap"]))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    else:
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@st.composite
def _expr(draw, reads: list[str], depth: int = 0) -> str:
    """A random expression over the given reads, params, numbers and the language's ops."""
    if depth >= 2 or draw(st.booleans()):
        return draw(st.sampled_from(reads + ["J", "2", "0.5", "-1", "i", "(i == 0)"]))
    op = draw(st.sampled_from(["+", "-", "*", "/", "^", "%", "==", "<", "and", "call", "neg"]))
    a = draw(_expr(reads, depth + 1))
    if op == "call":
        return f"{draw(st.sampled_from(['exp', 'log', 'sqrt', 'abs', 'tanh', 'softplus']))}({a})"
    if op == "neg":
        return f"-({a})"
    b = draw(_expr(reads, depth + 1))
    return f"({a} {op} {b})"


# sums inside nonlinear functions, nested (written out at compile time), one reading i
NESTED = "softplus(J + sum(j in 0..N-1) tanh(sum(k in 0..j) T[x[k]] * x[j]) * x[i])"


@st.composite
def _generated(draw) -> str:
    """A small model from the language's pieces: a family, a param, one or two factors."""
    n = draw(st.integers(0, 3))
    dom = draw(st.sampled_from(["bool", "spin", "cat(3)", "0..2", "{1, 4}", "real"]))
    kind = draw(st.sampled_from(["var", "var", "latent"]))
    lines = [f"const N = {n}", f"{kind} x[i in 0..N-1] : {dom}", "param J = 0.5",
             "param T[a in 0..2] = 0"]
    for k in range(draw(st.integers(1, 2))):
        lo, hi = draw(st.integers(-1, 1)), draw(st.sampled_from(["N-1", "N-2", "N", "0", "-2"]))
        offsets = draw(st.lists(st.sampled_from(["i", "i + 1", "(i + 1) % N", "i - 1", "0",
                                                 "N - 1-i"]), min_size=1, max_size=3))
        body = draw(_expr([f"x[{o}]" for o in offsets] + ["T[x[i]]", "sum(j in 0..N-1) x[j]",
                                                          NESTED]))
        where = draw(st.sampled_from(["", " where i < N - 1", " where x[i] > 0"]))
        fk = draw(st.sampled_from(["factor", "energy"]))
        lines.append(f"{fk} f{k}[i in {lo}..{hi}{where}] : {body}")
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["stat m = sum(i in 0..N-1) x[i]", "sampler x : mh",
                                           "sampler x : gibbs", "energy q[i in 0..N-1] : x[i]^2"])))
    return "\n".join(lines) + "\n"


@st.composite
def models(draw) -> str:
    """A mutated example or a generated model, with one to three edits."""
    text = draw(st.sampled_from(SEEDS)) if draw(st.integers(0, 3)) else draw(_generated())
    for _ in range(draw(st.integers(0 if text not in SEEDS else 1, 3))):
        text = draw(_edit(text))
    return text


def outcome(text: str, sample: bool = False) -> str:
    """'ok' or 'error'; an AssertionError (or the crash itself) when neither holds. With
    `sample`, a model that compiles also runs two sweeps of the numpy sampler."""
    try:
        model = ebmlang.compile(text, base=str(EXAMPLES))
        _check_level(model)
    except UserError as err:
        first = err.render().splitlines()[0]
        assert LOCATED.match(first), f"an unlocated user error: {first!r}\n--- model:\n{text}"
        return "error"
    if sample:
        try:  # a run can still be refused (inputs not given, improper at these states)
            with np.errstate(all="ignore"):
                draws = model.sample(draws=2, chains=2, burn_in=1, backend="numpy",
                                     progress=False, inputs=_inputs(model))
                _gradient(model, draws.kept()[0, -1])  # the learner's kernels run too
        except UserError:
            return "refused"
    return "ok"


def _inputs(model) -> dict | None:
    """Every input at its domain's largest value (0.5 if real), or None without inputs."""
    given = {f.name: np.full(f.space.shape if f.space.dense else f.space.size,
                             f.domain.values[-1] if f.domain.finite else 0.5)
             for f in model.vars.values() if f.kind == "input"}
    return given or None


def _check_level(model) -> None:
    """What `ebmlang check` computes beyond compiling: the report, the Gaussian check at the
    initial params, where each part runs and whether the fit is fused."""
    from ebmlang.backends.fused import fit_text
    from ebmlang.backends.numba_codegen import placement_text
    from ebmlang.infer.proper import check_initial
    from ebmlang.report.text import check_report
    check_initial(model)
    check_report(model)
    placement_text(model)
    fit_text(model)


COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


@settings(max_examples=300, derandomize=True, **COMMON)
@given(models())
def test_a_model_compiles_or_is_refused_with_a_location(text):
    outcome(text)


@pytest.mark.slow
@settings(max_examples=3000, **COMMON)
@given(models())
def test_many_mutants_compile_or_are_refused_with_a_location(text):
    outcome(text, sample=True)


# ---------------------------------------------------------------- what the fuzzer found

def test_an_empty_factor_index_adds_nothing():
    """`factor down[i in 0..-2, ...]` crashed code generation (KeyError: Name('J')); an empty
    index or sum is an empty product of potentials, as for a chain of one variable."""
    text = (ROOT / "examples" / "ising.ebm").read_text().replace(
        "factor down[i in 0..L-1", "factor down[i in 0..-2")
    assert "down[i in 0..-2" in text
    model = ebmlang.compile(text, L=3)
    assert [t.owner for t in model.terms] == ["right", "field"]
    from ebmlang.report.text import check_report
    assert re.search(r"  down +factor +\[i, j\] +\(empty index\) +0\n", check_report(model))
    chain = "const N = 1\nvar x[i in 0..N-1] : spin\nfactor pair[i in 0..N-2] : x[i] * x[i+1]\n"
    assert outcome(chain) == "ok"
    assert outcome("# a model of comments only\n") == "error"  # was refused without a location


def test_compile_takes_the_base_folder_as_a_string_or_a_path():
    text = (EXAMPLES / "network.ebm").read_text()
    for base in (str(EXAMPLES), EXAMPLES):
        assert ebmlang.compile(text, base=base).checked.sets["E"].shape == (78, 2)


def test_the_readme_slow_command_selects_the_slow_tests():
    """`python -m pytest -m slow` (README): the command line's -m replaces pyproject's
    `-m 'not slow'` (pytest keeps the last -m); checked on this file's collection."""
    def collect(*flags):
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *flags,
                              "tests/test_fuzz.py"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout
    slow = collect("-m", "slow")
    assert "test_many_mutants_compile_or_are_refused_with_a_location" in slow, slow
    assert "test_a_model_compiles_or_is_refused_with_a_location" not in slow, slow
    default = collect()
    assert "test_a_model_compiles_or_is_refused_with_a_location" in default
    assert "test_many_mutants" not in default


def _gradient(model, x: list[float]) -> np.ndarray:
    """d(log-potential)/d(theta) at one state, from the generated gradient kernels."""
    out = np.zeros(model.checked.n_theta)
    state = np.array([x], float).reshape(1, -1)
    for k in model.kernels:
        k.add_gradient(out, state, model.params.theta, np.ones((1, 1)))
    return out


def _numeric_gradient(model, x: list[float], h: float = 1e-6) -> np.ndarray:
    theta, state = model.params.theta, np.array([x], float)
    out = np.zeros_like(theta)
    for k in range(len(theta)):
        theta[k] += h
        up = model.log_potential(state)[0]
        theta[k] -= 2 * h
        down = model.log_potential(state)[0]
        theta[k] += h
        out[k] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize("body, x", [
    ("x % J", 3.0),                 # d/dJ (a % J) = -floor(a / J): was an unprintable Derivative
    ("(x + J) % (2 * J)", 3.0),     # the chain rule through both arguments
    ("J * x + (x == T[x])", 2.0),   # a comparison with a param: was AttributeError (no diff)
    ("J * x * (J < x)", 2.0),
])
def test_param_gradients_through_mod_and_comparisons(body, x):
    """The fuzzer's crashes in the learner's derivatives, now checked against central
    differences at a point where the term is smooth in the params."""
    text = f"var x : 0..3\nparam J = 1.3\nparam T[a in 0..3] = 0.25 * a\nfactor f : {body}\n"
    model = ebmlang.compile(text)
    assert np.allclose(_gradient(model, [x]), _numeric_gradient(model, [x]), atol=1e-6)


def test_a_variable_read_twice_by_one_instance_has_no_neighbour_pairs():
    """`x[N - 1 - i]` and `x[i]` are the same variable when N = 1: was IndexError in graph."""
    model = ebmlang.compile("const N = 1\nvar x[i in 0..N-1] : bool\n"
                            "factor f[i in 0..0] : (x[i] + x[i]) + (x[N - 1 - i] + x[i])\n")
    assert model.graph.edges.shape == (0, 2)


def test_a_real_family_read_inside_a_sum_is_differentiated_through_it():
    """`sum(j ...) x[j]` in a real family's own factor: was AttributeError differentiating the
    sum's condition; a sum of x is linear, so with no x^2 it is refused, located."""
    text = ("const N = 3\nvar x[i in 0..N-1] : real\n"
            "energy f[i in 1..N-2] : (sum(j in 0..N-1) x[j] + x[i + 1]) + (x[N - 1 - i] - x[i])\n")
    with pytest.raises(UserError) as info:
        ebmlang.compile(text)
    assert LOCATED.match(str(info.value)) and "linear" in str(info.value)
    model = ebmlang.compile(text + "energy q[i in 0..N-1] : x[i]^2\n")
    assert model.methods["x"][0] == "gaussian"


def test_a_divisor_that_is_zero_whatever_the_params_is_refused_where_it_is():
    """`(x < J) % (J < J)` crashed sympy (ZeroDivisionError); `/` gave a conditional of zoo."""
    for op in ("%", "/"):
        text = f"var x : {{1, 4}}\nparam J = 0.5\nfactor f : (x < J) {op} (J < J)\n"
        with pytest.raises(UserError) as info:
            ebmlang.compile(text)
        assert str(info.value).startswith("<string>:3:12: error: division by zero"), info.value
