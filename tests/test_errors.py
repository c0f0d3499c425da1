"""User errors, Stan-compiler style: golden files of bad models, bad flags, and safety.

Every file `tests/bad/NAME.ebm` has `tests/bad/NAME.err`, exactly what `ebmlang check
tests/bad/NAME.ebm` prints on stderr (run from the repository root, so the text is the same on
every machine). Regenerate them with

    pytest tests/test_errors.py --update-golden

and then read the diff: each message is part of the user interface.
"""

from __future__ import annotations

import builtins
import csv
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import ebmlang
from ebmlang.cli import app as cli

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad"
ISING = ROOT / "examples" / "ising.ebm"

# Known crashes and wrong behaviour: kept as cases, marked strict xfail until fixed. Their .err
# file holds the message they should print (hand-written); it is compared only once the case
# exits 1 without a traceback and is removed from here (then regenerate with --update-golden).
XFAIL: dict[str, str] = {}


def _normalize(text: str) -> str:
    # Some messages name an absolute directory (e.g. "looked in /abs/path/tests/bad"); keep the
    # golden text machine-independent.
    return text.replace(str(ROOT), "$ROOT")


def _bad_cases():
    for path in sorted(BAD.glob("*.ebm")):
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[path.stem])] if path.stem in XFAIL \
            else []
        yield pytest.param(path.stem, marks=marks, id=path.stem)


@pytest.mark.parametrize("name", list(_bad_cases()))
def test_bad_model_golden(name, request, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    status = cli.main(["check", f"tests/bad/{name}.ebm"])
    captured = capsys.readouterr()
    err = _normalize(captured.err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert status == 1, err
    assert captured.out == ""
    assert err.startswith(("tests/bad/", "$ROOT/tests/bad/")), err
    assert ": error: " in err.splitlines()[0]
    golden = BAD / f"{name}.err"
    if name in XFAIL:  # reached only once fixed: the strict xfail then fails, as it should
        return
    if request.config.getoption("--update-golden"):
        golden.write_text(err)
    assert golden.exists(), f"no golden file {golden}; run pytest --update-golden"
    assert err == golden.read_text()


def test_every_bad_model_has_a_golden_file():
    assert len(list(BAD.glob("*.ebm"))) >= 40
    stems = {p.stem for p in BAD.glob("*.ebm")}
    assert stems == {p.stem for p in BAD.glob("*.err")}, "every bad model needs its .err file"


def test_grammar_is_lalr_without_conflicts():
    from lark import Lark
    Lark.open(str(ROOT / "grammar" / "ebm.lark"), parser="lalr", strict=True)


def test_keywords_are_the_words_of_the_grammar():
    """Every keyword of the grammar is refused as a name, and nothing else is."""
    from ebmlang.frontend.parse import KEYWORDS, parser
    words = set()
    for t in parser().terminals:
        if t.pattern.type == "str" and t.pattern.value.isalpha():
            words.add(t.pattern.value)
        elif t.name in ("VARKIND", "FACTORKIND"):
            words.update(re.findall(r"[a-z]+", t.pattern.value))
    assert words == KEYWORDS


def test_too_large_model_is_refused_at_once():
    """10^10 ground spins: refused before anything is allocated (a subprocess, with a timeout)."""
    proc = subprocess.run([sys.executable, "-m", "ebmlang", "check", "tests/bad/too_large_to_ground.ebm"],
                          cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ground elements" in proc.stderr


# ---------------------------------------------------------------- command-line and flag errors

DENOISE_SMALL = """model denoise
const H = 2
const W = 3
input y[i in 0..H-1, j in 0..W-1] : spin
var x[i in 0..H-1, j in 0..W-1] : spin
param eta = 0.5
param fidelity = 1.0
factor keep[i in 0..H-1, j in 0..W-1] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..H-1, j in 0..W-2] : eta * x[i, j] * x[i, j + 1]
"""


def _run(argv, capsys):
    status = cli.main(argv)
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def _user_error(argv, capsys, *needles):
    status, _, err = _run(argv, capsys)
    assert "Traceback" not in err and "internal error" not in err, err
    assert status == 1, err
    assert "error:" in err, err
    for needle in needles:
        assert needle in err, err
    return err


FLAG_CASES = {
    "set_not_a_number": (["check", str(ISING), "--set", "L=abc"], ["'abc' is not a number"]),
    "set_no_equals": (["check", str(ISING), "--set", "L"], ["NAME=VALUE"]),
    "set_unknown_const": (["check", str(ISING), "--set", "nosuch=3"],
                          ["no const named 'nosuch'", "the consts are: L, beta"]),
    "set_misspelt_const": (["check", str(ISING), "--set", "Beta=0.3"],
                           ["no const named 'Beta'", "did you mean 'beta'?"]),
    "set_param": (["check", str(ISING), "--set", "J=3"], ["'J' is a param, not a const"]),
    "set_huge_number": (["check", str(ISING), "--set", "L=1e400"],
                        ["--set L: '1e400' is not a finite number"]),
    "set_huge_integer": (["check", str(ISING), "--set", "L=1" + "0" * 400],
                         ["is not a finite number"]),
    "set_fraction_feeds_range": (["check", str(ISING), "--set", "L=2.5"],
                                 ["a range bound must be an integer, got 1.5",
                                  "note: L = 2.5 was set from outside the model (--set L=2.5)"]),
    "set_infinity": (["check", str(ISING), "--set", "beta=inf"], ["not a number"]),
    "sample_zero_draws": (["sample", str(ISING), "-n", "0"], ["--draws", ">= 1"]),
    "sample_negative_chains": (["sample", str(ISING), "--chains", "-1"], ["--chains", ">= 1"]),
    "sample_not_integer_thin": (["sample", str(ISING), "--thin", "1.5"], ["--thin"]),
    "unknown_subcommand": (["frobnicate", str(ISING)], ["frobnicate"]),
    "no_subcommand": ([], []),
    "missing_model_file": (["check", "no/such/model.ebm"], ["no/such/model.ebm", "cannot read"]),
    "model_is_directory": (["check", str(ROOT / "examples")], ["cannot read"]),
}
XFAIL_FLAGS: dict[str, str] = {}


@pytest.mark.parametrize("case", [
    pytest.param(k, marks=[pytest.mark.xfail(strict=True, reason=XFAIL_FLAGS[k])]
                 if k in XFAIL_FLAGS else [], id=k) for k in FLAG_CASES])
def test_flag_errors(case, capsys):
    argv, needles = FLAG_CASES[case]
    _user_error(argv, capsys, *needles)


def test_model_file_not_utf8(tmp_path, capsys):
    path = tmp_path / "latin1.ebm"
    path.write_bytes("model m\n# caf\xe9\nvar x : bool\n".encode("latin-1"))
    _user_error(["check", str(path)], capsys, "UTF-8")


def test_sample_inputs_without_input_flag(tmp_path, capsys):
    path = tmp_path / "denoise.ebm"
    path.write_text(DENOISE_SMALL)
    _user_error(["sample", str(path), "-n", "2", "--chains", "1", "--no-progress"], capsys,
                "--input")


def test_improper_gaussian_is_located_in_sample_as_in_check(tmp_path, capsys, monkeypatch):
    """Issue 11 item 2: `check` refuses it (golden file), and `sample` names the same factor,
    also at params given later (here a proper model made improper by --params)."""
    monkeypatch.chdir(ROOT)
    bad = "tests/bad/gaussian_improper_at_initial_params.ebm"
    err = _user_error(["sample", bad, "-n", "2", "--no-progress"], capsys)
    assert err.startswith(f"{bad}:3:1: error: the conditional of x[0] is improper"), err
    path = tmp_path / "g.ebm"
    path.write_text("param c = -1\nvar x[i in 0..3] : real\nenergy e[i in 0..3] : 0.5 * x[i]^2\n"
                    "factor f[i in 0..3] : c * x[i]^2\n")
    assert cli.main(["check", str(path)]) == 0
    capsys.readouterr()
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"params": {"c": 2.0}}))
    err = _user_error(["sample", str(path), "-n", "2", "--no-progress", "--params", str(params)],
                      capsys, "its x^2 coefficient is 1.5 >= 0")
    assert err.startswith(f"{path}:3:1: error: "), err  # the first factor with an x^2 term
    model = ebmlang.load(path)
    model.params["c"] = 2.0
    with pytest.raises(ebmlang.UserError) as info:
        model.sample(draws=2, chains=1, progress=False)
    assert str(info.value).startswith(f"{path}:3:1: error: "), str(info.value)


def test_errors_in_a_subprocess_have_no_traceback():
    """The real entry point, once: a user error is exit 1 on stderr, nothing on stdout."""
    proc = subprocess.run([sys.executable, "-m", "ebmlang", "sample", str(ISING), "-n", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------- nothing is run as Python

PAYLOADS = [
    "__import__('os').system('touch PWNED')",
    "open('PWNED','w')",
    "exec(\"open('PWNED','w')\")",
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory in which evaluating any payload would leave a file PWNED."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / "PWNED").exists(), "something was evaluated as Python"
    assert not (ROOT / "PWNED").exists(), "something was evaluated as Python"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_set_value_is_not_python(payload, sandbox, capsys):
    _user_error(["check", str(ISING), "--set", f"L={payload}"], capsys, "not a number")
    _user_error(["check", str(ISING), "--set", f"{payload}=3"], capsys, "NAME=VALUE")
    with pytest.raises(ebmlang.UserError):
        ebmlang.load(ISING, L=payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_csv_header_is_not_python(payload, sandbox, capsys):
    model = sandbox / "denoise.ebm"
    model.write_text(DENOISE_SMALL)
    names = [f"y[{i},{j}]" for i in range(2) for j in range(3)]
    for k in (0, 3):  # a payload instead of a real column; then a payload as an extra column
        header = list(names)
        if k == 0:
            header[0] = payload
        else:
            header.append(payload)
        with open(sandbox / "in.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerow([1] * len(header))
        err = _user_error(["sample", str(model), "--input", str(sandbox / "in.csv"), "-n", "2",
                           "--chains", "1", "--no-progress"], capsys)
        assert "in.csv:1:" in err, err


@pytest.mark.parametrize("payload", PAYLOADS)
def test_params_json_is_not_python(payload, sandbox, capsys):
    path = sandbox / "p.json"
    for doc in ({"params": {payload: 1.0}}, {"params": {"J": payload}},
                {"params": {"J": [payload]}}, {"params": payload}):
        path.write_text(json.dumps(doc))
        err = _user_error(["sample", str(ISING), "--set", "L=4", "--params", str(path), "-n", "2",
                           "--chains", "1", "--no-progress"], capsys)
        assert "p.json" in err, err


@pytest.mark.parametrize("payload", PAYLOADS)
def test_model_text_is_not_python(payload, sandbox, capsys):
    texts = [
        f"model m\nconst N = {payload}\nvar x[i in 0..3] : bool\n",
        f"model m\nvar x[i in 0..3] : bool\nparam b = {payload}\nfactor f[i in 0..3] : b * x[i]\n",
        f"model m\nvar x[i in 0..3] : bool\nfactor f[i in 0..3] : {payload} * x[i]\n",
        f"model m\nvar x[i in 0..3] : {payload}\n",
        "model m\nset E = load(" + json.dumps(payload) + ")\nvar x[i in 0..3] : spin\n"
        "factor e[(u, v) in E] : x[u] * x[v]\n",
        f"model m\nvar x[i in 0..3] : bool\nsampler x : gibbs(scale={payload})\n",
    ]
    for k, text in enumerate(texts):
        path = sandbox / f"m{k}.ebm"
        path.write_text(text)
        _user_error(["check", str(path)], capsys)
        with pytest.raises(ebmlang.UserError):
            ebmlang.compile(text)


# Library code that builds functions from source text of declarations (never from user input):
# collections.namedtuple (eval), dataclasses (exec: methods of ebmlang's own dataclasses),
# networkx's argmap decorator (exec: wrappers built from function signatures).
LIBRARY_BUILDERS = ("collections", "dataclasses", "networkx.utils.decorators")


def _allowed(frame) -> bool:
    """True when an eval/exec called from `frame` is library machinery, not ebmlang's doing:
    a LIBRARY_BUILDERS caller, or, looking up the stack only as far as the nearest ebmlang
    frame, a library module being imported (its module-level code, e.g. numpy.random's first
    import)."""
    if frame.f_globals.get("__name__", "") in LIBRARY_BUILDERS:
        return True
    f = frame
    while f is not None:
        name = f.f_globals.get("__name__", "") or ""
        if name.startswith("ebmlang") or name == __name__:
            return False
        if f.f_code.co_name == "<module>" and _being_imported(f):
            return True
        f = f.f_back
    return False


def _being_imported(frame) -> bool:
    """A module's top-level frame run by the import system (not a script or `python -m`)."""
    f = frame.f_back
    for _ in range(3):
        if f is None:
            return False
        if f.f_globals.get("__name__", "") in ("importlib._bootstrap", "_frozen_importlib"):
            return True
        f = f.f_back
    return False


def _guard(monkeypatch) -> list[str]:
    """Ban eval, limit exec to ebmlang's generated code, make sympify refuse strings.

    Violations are recorded as well as raised: ebmlang swallows some exceptions (around
    sympy.lambdify in ebmlang.middle.symbolic), so a raise alone could go unnoticed. Besides ebmlang's
    own `<ebmlang-generated-...>` code (from ebmlang.backends.codegen), exec is allowed for code compiled
    from a .py file on disk (the import system loading a module) and where `_allowed` says so.
    """
    import sympy
    import sympy.core.sympify  # the module, shadowed by the function of its name
    sympify_mod = sys.modules["sympy.core.sympify"]

    violations: list[str] = []
    real_eval, real_exec, real_sympify = builtins.eval, builtins.exec, sympify_mod.sympify

    def checked_eval(source, *args, **kwargs):
        frame = sys._getframe(1)
        if _allowed(frame):
            if not args and not kwargs:  # eval's defaults are the caller's namespaces
                return real_eval(source, frame.f_globals, frame.f_locals)
            return real_eval(source, *args, **kwargs)
        caller = frame.f_globals.get("__name__", "")
        violations.append(f"eval({source!r:.80}) from {caller}")
        raise AssertionError(f"eval called from {caller}")

    def checked_exec(code, *args, **kwargs):
        frame = sys._getframe(1)
        name = getattr(code, "co_filename", None)
        caller = frame.f_globals.get("__name__", "")
        if isinstance(code, types.CodeType) and isinstance(name, str):
            if name.startswith("<ebmlang-generated-") and caller == "ebmlang.backends.codegen":
                return real_exec(code, *args, **kwargs)
            if name.endswith(".py") and os.path.isfile(name):
                return real_exec(code, *args, **kwargs)  # importing a module from disk
        if _allowed(frame):
            if not args and not kwargs:
                return real_exec(code, frame.f_globals, frame.f_locals)
            return real_exec(code, *args, **kwargs)
        shown = name if isinstance(name, str) else repr(code)[:80]
        violations.append(f"exec of {shown} from {caller}")
        raise AssertionError(f"exec of {shown} from {caller}")

    def checked_sympify(a, *args, **kwargs):
        if isinstance(a, str):
            violations.append(f"sympify({a!r:.80})")
            raise AssertionError("sympify called with a string")
        return real_sympify(a, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", checked_eval)
    monkeypatch.setattr(builtins, "exec", checked_exec)
    monkeypatch.setattr(sympy, "sympify", checked_sympify)
    monkeypatch.setattr(sympify_mod, "sympify", checked_sympify)
    return violations


def _pipeline():
    model = ebmlang.load(ISING, L=4)
    conds = model.conditionals()
    assert "s" in conds
    draws = model.sample(draws=20, chains=2, seed=0)
    assert draws is not None


def test_full_pipeline_never_evaluates_strings(monkeypatch):
    """load + conditionals + sample: no eval, no exec but ebmlang's own generated code, no
    sympify of a string."""
    violations = _guard(monkeypatch)
    _pipeline()
    assert not violations, violations
