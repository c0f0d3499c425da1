"""UAI networks: parsing, evidence, conversion both ways, and the peer suite of the UAI 2014
networks in $EBMLANG_UAI_DIR (default ../shared/uai, relative to the repository root)."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.cli.app import main
from ebmlang.infer.exact import log_partition, probabilities
from ebmlang.io.uai import read_uai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from uai_suite import reference_map_score, uai_dir  # noqa: E402

SHARED = uai_dir()
NAMES = sorted(p.name[:-4] for p in SHARED.glob("*.uai")) if SHARED.is_dir() else []
MISSING = pytest.param(None, marks=pytest.mark.skip(
    reason=f"no UAI networks (*.uai) in {SHARED}: set EBMLANG_UAI_DIR to their folder"))
PROBLEMS = NAMES or [MISSING]


def test_the_networks_folder_comes_from_the_environment(monkeypatch, tmp_path):
    """Issue 11 item 7: $EBMLANG_UAI_DIR, else ../shared/uai relative to the repository root
    (the bench script reads the same function)."""
    monkeypatch.setenv("EBMLANG_UAI_DIR", str(tmp_path))
    assert uai_dir() == tmp_path
    monkeypatch.delenv("EBMLANG_UAI_DIR")
    assert uai_dir() == ROOT.parent / "shared" / "uai"
    assert f"in {SHARED}: set EBMLANG_UAI_DIR" in MISSING.marks[0].kwargs["reason"]


def _write_network(path, cards, scopes, tables, kind="MARKOV"):
    lines = [kind, str(len(cards)), " ".join(map(str, cards)), str(len(scopes))]
    lines += [f"{len(s)} " + " ".join(map(str, s)) for s in scopes]
    for t in tables:
        lines += [str(t.size), " ".join(repr(float(v)) for v in t.ravel())]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(0)
    cards = [2, 3, 2, 2]
    scopes = [(0,), (0, 1), (1, 2), (2, 3, 0), (3,), (1, 3)]
    tables = [rng.random(tuple(cards[v] for v in s)) + 0.1 for s in scopes]
    path = tmp_path / "t.uai"
    _write_network(path, cards, scopes, tables)
    return path, cards, scopes, tables


def _brute(cards, scopes, tables, evidence=None):
    states = np.array(list(itertools.product(*[range(k) for k in cards])))
    if evidence:
        for v, val in evidence.items():
            states = states[states[:, v] == val]
    w = np.array([np.prod([t[tuple(s[v] for v in sc)] for sc, t in zip(scopes, tables)])
                  for s in states])
    return states, w


def _marginal(model, x, p, v):
    name = model.uai_names[v]
    index = dict(zip(model.ground_names(), model.state_ids()))
    fam = model.vars[name.split("[")[0]]
    return np.array([p[x[:, index[name]] == val].sum() for val in fam.domain.values])


def test_tables_and_evidence_against_brute_force(small, tmp_path):
    path, cards, scopes, tables = small
    for evidence in ({}, {1: 2, 3: 0}):
        ev = tmp_path / "e.evid"
        ev.write_text(f"{len(evidence)} " + " ".join(f"{v} {k}" for v, k in evidence.items()))
        model = ebmlang.load(path, evidence=ev)
        states, w = _brute(cards, scopes, tables, evidence)
        assert log_partition(model) == pytest.approx(np.log(w.sum()), abs=1e-10)
        x, p = probabilities(model)
        for v in range(4):
            if v in evidence:
                assert model.uai_names[v] is None
                continue
            want = np.array([w[states[:, v] == k].sum() for k in range(cards[v])]) / w.sum()
            assert np.allclose(_marginal(model, x, p, v), want)


def test_bayes_files_load_as_the_product_of_their_tables(small, tmp_path):
    path, cards, scopes, tables = small
    bayes = tmp_path / "b.uai"
    _write_network(bayes, cards, scopes, tables, kind="BAYES")
    assert log_partition(ebmlang.load(bayes)) == pytest.approx(log_partition(ebmlang.load(path)))


def test_round_trips_keep_log_z_and_marginals(small, tmp_path, capsys):
    path = small[0]
    # uai -> ebm (+ set files and a params file) -> same model
    assert main(["convert", str(path), "-o", str(tmp_path / "t.ebm")]) == 0
    back = ebmlang.load(tmp_path / "t.ebm")
    from ebmlang.cli.app import load_params
    load_params(back, str(tmp_path / "t.params.json"))
    original = ebmlang.load(path)
    assert log_partition(back) == pytest.approx(log_partition(original), abs=1e-10)
    # ebm -> uai -> same distribution
    potts = ebmlang.load(ROOT / "examples" / "potts.ebm", L=3)
    out = tmp_path / "p.uai"
    assert main(["convert", str(ROOT / "examples" / "potts.ebm"), "--set", "L=3", "-o", str(out)]) == 0
    again = ebmlang.load(out)
    assert log_partition(again) == pytest.approx(log_partition(potts), abs=1e-9)
    x1, p1 = probabilities(potts)
    x2, p2 = probabilities(again)
    for v in range(9):
        name = again.uai_names[v]
        index = dict(zip(again.ground_names(), again.state_ids()))
        got = np.array([p2[x2[:, index[name]] == k].sum() for k in range(3)])
        want = np.array([p1[x1[:, v] == k].sum() for k in range(3)])
        assert np.allclose(got, want)


def test_two_networks_converted_into_one_folder_both_keep_their_log_z(tmp_path, capsys):
    rng = np.random.default_rng(1)
    nets = {}
    for name, cards, scopes in (("a", [2, 2, 3], [(0, 1), (1, 2)]),
                                ("b", [3, 2, 2], [(0, 1), (1, 2), (2,)])):
        tables = [rng.random(tuple(cards[v] for v in s)) + 0.1 for s in scopes]
        path = tmp_path / f"{name}.uai"
        _write_network(path, cards, scopes, tables)
        nets[name] = log_partition(ebmlang.load(path))
    out = tmp_path / "dir"
    out.mkdir()
    for name in nets:
        assert main(["convert", str(tmp_path / f"{name}.uai"), "-o", str(out / f"{name}.ebm")]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "a.S0.csv", "a.S1.csv", "a.ebm", "a.params.json",
        "b.S0.csv", "b.S1.csv", "b.S2.csv", "b.ebm", "b.params.json"]
    assert 'set S0 = load("b.S0.csv")' in (out / "b.ebm").read_text()
    from ebmlang.cli.app import load_params
    for name, want in nets.items():
        back = ebmlang.load(out / f"{name}.ebm")
        load_params(back, str(out / f"{name}.params.json"))
        assert log_partition(back) == pytest.approx(want, abs=1e-10)
    # a re-run replaces its own files; a hand-written model of that name is kept
    assert main(["convert", str(tmp_path / "a.uai"), "-o", str(out / "a.ebm")]) == 0
    (out / "mine.ebm").write_text("model mine\nvar x : bool\n")
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "a.uai"), "-o", str(out / "mine.ebm")]) == 1
    assert "not a model ebmlang converted from UAI" in capsys.readouterr().err
    assert (out / "mine.ebm").read_text() == "model mine\nvar x : bool\n"
    assert not (out / "mine.S0.csv").exists()


@pytest.mark.parametrize("text, message", [
    ("MARKOV\n2\n2 2\n1\n2 0 1\n3\n1 2 3\n", "line 6:1: error: factor 0's table has 3 entries"),
    ("MARKOV\n2\n2 2\n1\n2 0 1\n4\n1 -2 3 4\n", "line 7:1: error: entry 1 of factor 0's table must be"),
    ("NETWORK\n2\n", "unknown header 'NETWORK'"),
    ("MARKOV\n2\n2 2\n1\n2 0 5\n", "names variable 5, but there are 2"),
    ("MARKOV\n2\n2 2\n2\n1 0\n", "the file ends early"),
    ("MARKOV\n2\n2 x\n", "got 'x'"),
])
def test_malformed_files_name_the_line(tmp_path, capsys, text, message):
    path = tmp_path / "bad.uai"
    path.write_text(text)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert message.replace("line ", f"{path}:") in err or message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_problem_loads_and_checks(name, capsys):
    """check, conditionals and a short sample work on every network of the peer suite."""
    path = SHARED / f"{name}.uai"
    assert main(["check", str(path)]) == 0
    model = ebmlang.load(path)
    net = read_uai(str(path))
    assert len(model.uai_names) == len(net.cards)
    assert len(model.terms) <= 12  # grouped into families, not one term per table
    model.sample(draws=5, chains=2, seed=0, backend="numpy")


# ---------------------------------------------------------------- the peer suite's answers

# > ~10 s each (measured under load 10, 2026-12-02: ObjectDetection_13 180 s, CSP_11 66 s,
# DBN_16 56 s, DBN_13 49 s, ObjectDetection_14 24 s; Pedigree_11, 5.8-10 s, runs by default)
SLOW_LOGZ = {"CSP_11", "DBN_13", "DBN_16", "Grids_15", "Grids_16", "Grids_17", "Grids_18",
             "ObjectDetection_13", "ObjectDetection_14"}
SLOW_MAP = {"CSP_11", "Grids_15"}
SLOW_GIBBS = {"Alchemy_11", "CSP_11", "CSP_12", "CSP_13", "ObjectDetection_11",
              "ObjectDetection_12", "ObjectDetection_13", "ObjectDetection_14"}


def _cases(names, slow):
    return [pytest.param(n, marks=[pytest.mark.slow] if n in slow else []) for n in names] \
        or [MISSING]


def _printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit of a .PR value (e.g. 169.408 -> 0.0005)."""
    mantissa = text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = 10 ** int(text.lower().split("e")[1]) if "e" in text.lower() else 1
    return 0.5 * 10 ** -decimals * scale


@pytest.mark.parametrize("name", _cases(NAMES, SLOW_LOGZ))
def test_logz_matches_the_published_value(name):
    """Exact (elimination) where the width allows: equal to the printed precision; annealed
    importance sampling elsewhere: within 3 of its stated standard errors."""
    import math
    from ebmlang.infer.logz import logz
    path = SHARED / f"{name}.uai"
    text = (SHARED / f"{name}.uai.PR").read_text().split()[1]
    z = logz(ebmlang.load(path), method="auto", seed=0)
    got = z.value / math.log(10)
    if z.se is None:
        assert abs(got - float(text)) <= _printed_tolerance(text) * 1.001 + 1e-9, (got, text)
    else:
        assert abs(got - float(text)) <= 3 * z.se / math.log(10), (got, text, z.se)


MAP_PROBLEMS = [n for n in NAMES if (SHARED / f"{n}.uai.MAP").exists()]


@pytest.mark.parametrize("name", _cases(MAP_PROBLEMS, SLOW_MAP))
def test_map_reaches_the_published_score(name):
    from ebmlang.infer.map import map_estimate
    model = ebmlang.load(SHARED / f"{name}.uai")
    ref = reference_map_score(model, SHARED / f"{name}.uai.MAP")
    res = map_estimate(model, seed=0)
    assert float(res.log_potential[0]) >= ref - 1e-9, (res.method, res.reason)


@pytest.mark.parametrize("name", _cases(NAMES, SLOW_GIBBS))
def test_gibbs_marginals_or_the_diagnostic_says_why_not(name):
    """Where the chains mix (every variable's R-hat <= 1.01), each Gibbs marginal is within 5
    Monte Carlo standard errors (batch means over 4 chains x 1000 draws) of the published one;
    where they do not, R-hat says so. (A fixed 0.03 was too tight for the slowly mixing CSP
    networks: CSP_13 mixes, R-hat 1.006, and its worst marginal is off by 0.032 = 2.6 SE.)"""
    import math
    from ebmlang.infer.diagnostics import split_rhat
    from ebmlang.io.uai import read_marginals
    from test_sampler_exact import batch_se
    path = SHARED / f"{name}.uai"
    model = ebmlang.load(path)
    samples = model.sample(draws=1000, chains=4, seed=0, backend="numpy")
    ref = iter(read_marginals(str(path) + ".MAR"))
    index = dict(zip(model.ground_names(), model.state_ids()))
    worst_z, worst_rhat = 0.0, 1.0
    for uai_name, r in zip(model.uai_names, ref):
        if uai_name is None:
            continue
        col = samples.full[:, :, index[uai_name]].astype(float)
        if not np.all(col == col[0, 0]):
            rh = split_rhat(col)
            worst_rhat = max(worst_rhat, math.inf if math.isnan(rh) else rh)
        for v, p in zip(model.vars[uai_name.split("[")[0]].domain.values, r):
            ind = (col == v).astype(float)
            se = max(batch_se(ind), math.sqrt(p * (1 - p) / ind.size), 1e-4)
            worst_z = max(worst_z, abs(ind.mean() - p) / se)
    assert worst_z < 5 or worst_rhat > 1.01, (worst_z, worst_rhat)
