"""The command line, run in-process (and twice as a subprocess): outputs, files and exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ebmlang.cli import app as cli

ROOT = Path(__file__).resolve().parents[1]
ISING = str(ROOT / "examples" / "ising.ebm")

RBM = """model rbm
const N = 6
const M = 4
var v[i in 0..N-1] : bool
latent h[j in 0..M-1] : bool
param W[i in 0..N-1, j in 0..M-1] = normal(0, 0.01)
param b[i in 0..N-1] = 0
param c[j in 0..M-1] = 0
factor pair[i in 0..N-1, j in 0..M-1] : W[i, j] * v[i] * h[j]
factor vis[i in 0..N-1] : b[i] * v[i]
factor hid[j in 0..M-1] : c[j] * h[j]
"""

DENOISE = """model denoise
const H = 3
const W = 4
input y[i in 0..H-1, j in 0..W-1] : spin
var x[i in 0..H-1, j in 0..W-1] : spin
param eta = 0.5
param fidelity = 5.0
stat mag = sum(i in 0..H-1, j in 0..W-1) x[i, j]
stat row[i in 0..H-1] = sum(j in 0..W-1) x[i, j]
factor keep[i in 0..H-1, j in 0..W-1] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..H-1, j in 0..W-2] : eta * x[i, j] * x[i, j + 1]
factor down[i in 0..H-2, j in 0..W-1]  : eta * x[i, j] * x[i + 1, j]
"""


@pytest.fixture
def rbm(tmp_path):
    path = tmp_path / "rbm.ebm"
    path.write_text(RBM)
    return str(path)


@pytest.fixture
def denoise(tmp_path):
    path = tmp_path / "denoise.ebm"
    path.write_text(DENOISE)
    return str(path)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 1, (out, err)
    assert "Traceback" not in err and "error" in err
    return err


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# ---------------------------------------------------------------- check, graph, code

def test_check_ising_checkerboard(capsys):
    code, out, err = run(capsys, "check", ISING, "--set", "L=4")
    assert code == 0, err
    assert "2 colours, (i + j) % 2" in out
    assert "L = 4" in out and "Gibbs, exact, and one Swendsen-Wang sweep" in out
    assert "s[i, (j + 1) % L]" in out


def test_check_rbm_blocks(capsys, rbm):
    code, out, err = run(capsys, "check", rbm)
    assert code == 0, err
    assert "{v}" in out and "{h}" in out and "latent" in out
    assert "2 per sweep" in out


def test_check_thousands_separator(capsys, rbm):
    code, out, _ = run(capsys, "check", rbm, "--set", "N=100", "--set", "M=20")
    assert code == 0 and "2,000" in out


def test_graph_dot(capsys, denoise):
    code, out, err = run(capsys, "graph", denoise)
    assert code == 0, err
    assert out.startswith('graph "denoise"')
    for node in ('"var:x"', '"var:y"', '"factor:keep:0"', '"factor:right:0"'):
        assert node in out
    assert 'label="x[i, j + 1]"' in out and "fillcolor" in out


def test_graph_files(capsys, denoise, tmp_path, monkeypatch):
    dot = tmp_path / "g.dot"
    assert run(capsys, "graph", denoise, "-o", dot)[0] == 0
    assert dot.read_text().startswith("graph")
    assert "-o FILE.dot" in user_error(capsys, "graph", denoise, "-o", tmp_path / "g.txt")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "Graphviz" in user_error(capsys, "graph", denoise, "-o", tmp_path / "g.svg")


@pytest.mark.skipif(os.name != "posix", reason="a fake `dot` shell script")
def test_graph_svg_via_dot(capsys, denoise, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dot"
    fake.write_text("#!/bin/sh\necho \"<svg $1>\"\ncat\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "g.svg"
    assert run(capsys, "graph", denoise, "-o", out)[0] == 0
    assert out.read_text().startswith("<svg -Tsvg>\ngraph")


def test_code(capsys, rbm):
    code, out, _ = run(capsys, "code", rbm)
    assert code == 0 and "def term_" in out


def test_conditionals(capsys, rbm):
    pytest.importorskip("ebmlang.middle.symbolic")
    code, out, err = run(capsys, "conditionals", rbm)
    assert code == 0, err
    assert out.strip()


# ---------------------------------------------------------------- sample

def test_sample_csv(capsys, tmp_path):
    out = tmp_path / "s.csv"
    code, stdout, err = run(capsys, "sample", ISING, "--set", "L=4", "-n", 30, "--chains", 3,
                            "--seed", 1, "-o", out, "--no-progress")
    assert code == 0, err
    assert "wrote" in stdout and "3 chains x 30 draws, 16 variables" in stdout
    rows = read_csv(out)
    assert rows[0][:4] == ["chain", "draw", "s[0,0]", "s[0,1]"] and len(rows[0]) == 18
    assert len(rows) - 1 == 3 * 30


def test_sample_same_seed_same_file(capsys, tmp_path):
    files = [tmp_path / f"{k}.csv" for k in range(3)]
    for f, seed in zip(files, (7, 7, 8)):
        assert run(capsys, "sample", ISING, "--set", "L=4", "-n", 20, "--seed", seed, "-o", f,
                   "--thin", 2, "--burn-in", 5)[0] == 0
    assert files[0].read_bytes() == files[1].read_bytes() != files[2].read_bytes()


def test_sample_summary(capsys, denoise, tmp_path):
    inp = tmp_path / "in.csv"
    names = [f"y[{i},{j}]" for i in range(3) for j in range(4)]
    with open(inp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names[::-1])  # any column order
        w.writerow([1] * 12)
    code, out, err = run(capsys, "sample", denoise, "--input", inp, "-n", 50, "--chains", 2,
                         "--seed", 0)
    assert code == 0, err
    assert "mag" in out and "row" in out and "shape 3" in out and "log potential" in out
    assert "x colour 0" in out
    mean_x = float(next(l for l in out.splitlines() if l.split()[:2] == ["mean", "x"]).split()[2])
    assert mean_x > 0.8  # a strong fidelity to an all-(+1) input


def test_sample_input_errors(capsys, denoise, tmp_path):
    assert "--input" in user_error(capsys, "sample", denoise, "-n", 5)
    inp = tmp_path / "in.csv"
    inp.write_text('"y[0,0]"\n1\n')
    assert "missing columns" in user_error(capsys, "sample", denoise, "--input", inp, "-n", 5)
    assert "unknown column 'y[0,0]'" in user_error(capsys, "sample", ISING, "--set", "L=4",
                                                   "--input", inp)


def test_sample_params(capsys, rbm, tmp_path):
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"params": {"b": [9.0] * 6}, "method": "pcd"}))
    code, out, err = run(capsys, "sample", rbm, "--params", good, "-n", 40, "--seed", 0)
    assert code == 0, err
    mean_v = float(next(l for l in out.splitlines() if l.split()[:2] == ["mean", "v"]).split()[2])
    assert mean_v > 0.95
    bad = tmp_path / "bad.json"
    bad.write_text('{"params": {\n  "bb": [0, 0, 0, 0, 0, 0]\n}}\n')
    err = user_error(capsys, "sample", rbm, "--params", bad)
    assert f"{bad}:2:3: error: unknown param 'bb'" in err and "did you mean 'b'" in err
    bad.write_text('{"params": {"b": [1, 2]}}')
    assert "shape" in user_error(capsys, "sample", rbm, "--params", bad)


# ---------------------------------------------------------------- errors

def test_bad_syntax(capsys, tmp_path):
    bad = tmp_path / "bad.ebm"
    bad.write_text("model bad\nvar x : bool\nfactor f : x +\n")
    err = user_error(capsys, "check", bad)
    assert err.startswith(f"{bad}:3:")
    assert ": error: " in err and "^" in err


def test_sample_error_points_into_model(capsys, tmp_path):
    model = tmp_path / "real.ebm"
    model.write_text("model g\nvar x : real\nfactor f : x ^ 2\n")
    err = user_error(capsys, "sample", model, "-n", 5)
    assert err.startswith(f"{model}:3:1: error:") and "cannot be normalized" in err


@pytest.mark.parametrize("argv, words", [
    (["check", ISING, "--set", "Q=3"], "no const named 'Q'"),
    (["check", ISING, "--set", "L=abc"], "not a number"),
    (["check", ISING, "--set", "L"], "NAME=VALUE"),
    (["sample", ISING, "-n", "-5"], ">= 1"),
    (["sample", ISING, "--chains", "0"], ">= 1"),
    (["sample", ISING, "-n", "1.5"], "integer"),
    (["frobnicate", ISING], "invalid choice"),
    ([], "required"),
    (["check", "no/such/model.ebm"], "cannot read model file"),
])
def test_user_errors(capsys, argv, words):
    assert words in user_error(capsys, *argv)


def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, "sample", "--help")
    assert code == 0 and "--burn-in" in out


def test_internal_error_and_interrupt(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("kaboom")

    def stop(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "code", boom)
    code, _, err = run(capsys, "code", ISING)
    assert code == 2 and "internal error" in err and "kaboom" in err and "report" in err
    monkeypatch.setitem(cli.COMMANDS, "code", stop)
    code, _, err = run(capsys, "code", ISING)
    assert code == 130 and "interrupted" in err


# ---------------------------------------------------------------- as a program

def _module(*argv):
    return subprocess.run([sys.executable, "-m", "ebmlang", *map(str, argv)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_subprocess_ok():
    done = _module("check", "examples/rbm.ebm")
    assert done.returncode == 0, done.stderr
    assert "{v}" in done.stdout


def test_subprocess_user_error(tmp_path):
    bad = tmp_path / "bad.ebm"
    bad.write_text("model bad\nvar x : bool\nfactor f : y\n")
    done = _module("check", bad)
    assert done.returncode == 1
    assert f"{bad}:3:" in done.stderr and "error:" in done.stderr
    assert "Traceback" not in done.stderr
