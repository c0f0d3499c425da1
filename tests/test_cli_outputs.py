"""What the command line writes and prints: outputs never clobber another file (--force),
sample's summary with -o, progress lines off a terminal, plurals, help text, non-text models."""

from __future__ import annotations

import json

import pytest

from ebmlang.cli import app as cli
from ebmlang.infer import progress

ONE = "model one\nvar x : bool\nparam a = 0.5\nfactor f : a * x\n"
SPINS = "model spins\nvar s[i in 0..3] : spin\nparam J = 0.2\n" \
        "factor pair[i in 0..2] : J * s[i] * s[i + 1]\nstat m = sum(i in 0..3) s[i]\n"


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def spins(tmp_path):
    path = tmp_path / "spins.ebm"
    path.write_text(SPINS)
    return path


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("s[0],s[1],s[2],s[3]\n1,1,1,1\n-1,-1,-1,-1\n1,1,-1,-1\n")
    return path


# ---------------------------------------------------------------- no clobbering

def test_fit_reruns_onto_its_own_output_but_keeps_other_files(capsys, spins, data, tmp_path):
    out = tmp_path / "p.json"
    fit = ("fit", spins, data, "--epochs", 1, "--quiet", "-o", out)
    assert run(capsys, *fit)[0] == 0
    assert run(capsys, *fit)[0] == 0            # a re-run replaces its own params file
    code, _, err = run(capsys, "fit", spins, data, "--epochs", 1, "-o", data)
    assert code == 1 and data.read_text().startswith("s[0],s[1]")   # the data is kept
    assert f"{data}: error: the file exists and is not a params file: it is kept" in err
    assert "--force" in err
    assert run(capsys, "fit", spins, data, "--epochs", 1, "--quiet", "-o", data, "--force")[0] == 0
    assert "params" in json.loads(data.read_text())


def test_every_writing_command_refuses_a_foreign_file(capsys, spins, data, tmp_path):
    mine = {ext: tmp_path / f"mine.{ext}" for ext in ("csv", "png", "dot", "uai")}
    for argv in (("sample", spins, "-n", 10, "-o", mine["csv"]),
                 ("sample", spins, "-n", 10, "--plot", mine["png"]),
                 ("score", spins, data, "-o", mine["csv"]),
                 ("map", spins, "-o", mine["csv"]),
                 ("graph", spins, "-o", mine["dot"]),
                 ("convert", spins, "-o", mine["uai"])):
        target = argv[-1]
        target.write_text("mine\n")
        code, out, err = run(capsys, *argv)
        assert code == 1 and "exists and is not" in err and "--force" in err, argv
        assert out == "" and target.read_text() == "mine\n", argv   # refused before any work
        assert run(capsys, *argv, "--force")[0] == 0, argv
        assert target.read_bytes() != b"mine\n", argv
    for argv in (("sample", spins, "-n", 10, "-o", tmp_path / "s.csv"),
                 ("score", spins, data, "-o", tmp_path / "sc.csv"),
                 ("map", spins, "-o", tmp_path / "m.csv"),
                 ("graph", spins, "-o", tmp_path / "g.dot")):
        assert run(capsys, *argv)[0] == 0 and run(capsys, *argv)[0] == 0, argv  # re-runs


def test_two_outputs_of_one_run_may_not_be_the_same_file(capsys, spins, tmp_path):
    same = tmp_path / "x.png"
    code, _, err = run(capsys, "sample", spins, "-n", 10, "-o", same, "--plot", same)
    assert code == 1 and "two outputs of this command are the same file" in err
    assert not same.exists()


# ---------------------------------------------------------------- what sample prints

def test_sample_prints_its_summary_with_o_and_quiet_silences_it(capsys, spins, tmp_path):
    out = tmp_path / "s.csv"
    code, stdout, _ = run(capsys, "sample", spins, "-n", 40, "--seed", 0, "-o", out)
    assert code == 0
    assert "spins: 4 chains x 40 draws (burn-in 20, thin 1), 4 variables" in stdout
    assert "R-hat" in stdout and "bulk ESS" in stdout and "stat  m" in stdout
    assert stdout.splitlines()[-1] == f"wrote {out} (4 chains x 40 draws, 4 variables)"
    code, stdout, _ = run(capsys, "sample", spins, "-n", 40, "--seed", 0, "-o", out, "--quiet")
    assert code == 0 and stdout == f"wrote {out} (4 chains x 40 draws, 4 variables)\n"


def test_plurals(capsys, tmp_path):
    one = tmp_path / "one.ebm"
    one.write_text(ONE)
    out = tmp_path / "s.csv"
    code, stdout, _ = run(capsys, "sample", one, "-n", 1, "--chains", 1, "-o", out)
    assert code == 0
    assert "one: 1 chain x 1 draw (burn-in 0, thin 1), 1 variable\n" in stdout
    assert stdout.endswith(f"wrote {out} (1 chain x 1 draw, 1 variable)\n")


# ---------------------------------------------------------------- progress off a terminal

def test_progress_lines_off_a_terminal(capsys, spins, monkeypatch):
    clock = iter(range(0, 10_000, 4))               # every reading of the clock: 4 s later
    monkeypatch.setattr(progress, "_clock", lambda: next(clock))
    code, _, err = run(capsys, "sample", spins, "-n", 8, "--burn-in", 4, "--seed", 0)
    assert code == 0                                # 12 sweeps, a line every third (12 s)
    want = [f"spins: sampling {k}/12 sweeps ({100 * k // 12}%), {4 * k} s elapsed"
            + (f", about {4 * (12 - k)} s left" if k < 12 else "") for k in (3, 6, 9, 12)]
    assert err.splitlines() == want + ["spins: sampling 12/12 sweeps (100%), 52 s elapsed"]
    assert run(capsys, "sample", spins, "-n", 8, "--no-progress")[2] == ""


# ---------------------------------------------------------------- help and messages

def test_every_fit_flag_has_help_and_convert_names_uai(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("fit", "sample", "score", "convert", "map", "logz"):
        missing = [a.dest for a in sub.choices[name]._actions if not a.help]
        assert missing == [], (name, missing)
    code, out, _ = run(capsys, "convert", "--help")
    assert code == 0 and "OUT.uai" in out and "MODEL.uai" in out and "OUT.S0.csv" in out


def test_a_model_that_is_not_text_is_not_echoed(capsys, tmp_path):
    csv_model = tmp_path / "data.csv"
    csv_model.write_text(",".join(f"v[{i}]" for i in range(2000)) + "\n" + "0," * 1999 + "0\n")
    code, _, err = run(capsys, "fit", csv_model, tmp_path / "model.ebm")
    assert code == 1 and len(err) < 600 and "Traceback" not in err
    assert err.startswith(f"{csv_model}:1:1: error: unexpected")
    assert "is a CSV file; the model file (.ebm) comes first" in err
    binary = tmp_path / "b.ebm"
    binary.write_bytes(b"model b\n" + bytes(range(256)) * 20)
    assert run(capsys, "check", binary)[2] == f"{binary}: error: model file is not UTF-8 text\n"
    binary.write_bytes(b"model b\n" + b"\x00\x01" * 2000)
    assert run(capsys, "check", binary)[2] == \
        f"{binary}: error: model file is not text (it has NUL bytes)\n"
