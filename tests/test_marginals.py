"""Marginals (issue 15): the clique tree against enumeration on small models of every finite
domain, with evidence and inputs; against the published UAI 2014 .MAR files; Gibbs within its
Monte Carlo standard errors; the MAR and CSV writers; the command's errors."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.cli.app import main
from ebmlang.errors import UserError
from ebmlang.io.marginals_out import mar_rows, write_mar
from ebmlang.io.uai import read_marginals

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from uai_suite import uai_dir  # noqa: E402

UAI = uai_dir()

# Loops (a cycle through every domain), mixed domains, a table potential, a stat.
MIXED = """model mixed
var b[i in 0..2] : bool
var s[i in 0..2] : spin
var c[i in 0..1] : cat(3)
var n : 0..3
param T[a in 0..2, k in 0..2] = normal(0, 1)
param w[i in 0..4] = normal(0, 0.7)
factor bs[i in 0..2] : w[i] * b[i] * s[i]
factor ring[i in 0..1] : w[3] * s[i] * s[i + 1]
factor cs[i in 0..1] : T[c[i], 2 * b[i]] * s[i]
factor cc : T[c[0], c[1]]
factor nb : w[4] * n * (b[0] - b[2]) - 0.3 * n * n
factor ns : 0.4 * n * s[2]
stat total = b[0] + b[1] + b[2] + n
"""

DENOISE = """model denoise
const H = 3
const W = 3
input y[i in 0..H-1, j in 0..W-1] : spin
var x[i in 0..H-1, j in 0..W-1] : spin
param eta = 0.7
factor keep[i in 0..H-1, j in 0..W-1] : 0.9 * x[i, j] * y[i, j]
factor right[i in 0..H-1, j in 0..W-2] : eta * x[i, j] * x[i, j + 1]
factor down[i in 0..H-2, j in 0..W-1]  : eta * x[i, j] * x[i + 1, j]
"""


def brute(model, inputs=None, evidence=None):
    """Every marginal by summing exp(log potential) over all states, written out here."""
    fams = [f for f in model.vars.values() if f.sampled]
    ids = model.state_ids()
    domains = [f.domain.values for f in fams for _ in range(f.space.size)]
    grid = np.array(list(itertools.product(*domains)), float)
    x = np.zeros((len(grid), model.checked.n_state))
    x[:, ids] = grid
    if inputs is not None:
        x[:, model.state_ids(("input",))] = inputs
    names = model.ground_names()
    for name, v in (evidence or {}).items():
        x = x[x[:, ids[names.index(name)]] == v]
    lp = model.log_potential(x)
    p = np.exp(lp - lp.max())
    p /= p.sum()
    return {n: np.array([p[x[:, i] == v].sum() for v in vals])
            for n, i, vals in zip(names, ids, domains)}, x, p


def _agree(res, want, tol=1e-10):
    assert set(res.names) == set(want)
    for n in res.names:
        assert np.abs(res[n] - want[n]).max() < tol, n


@pytest.mark.parametrize("method", ["exact", "ve"])
@pytest.mark.parametrize("evidence", [None, {"s[1]": -1, "c[0]": 2}, {"n": 3, "b[0]": 1}])
def test_exact_marginals_match_enumeration_on_every_domain(method, evidence):
    model = ebmlang.compile(MIXED)
    want, x, p = brute(model, evidence=evidence)
    res = model.marginals(method=method, evidence=evidence)
    assert res.method == method and res.why == "requested"
    _agree(res, want)
    # stat means, by enumeration or from the calibrated clique tree: exact
    assert res.stats["total"] == pytest.approx(p @ model.stat_values(x)["total"], abs=1e-10)
    assert not res.stats_note


# stats of every kind: scalar and indexed, over one variable, over variables no factor reads
# together (b[0] and c[1]: a zero table puts them in one cluster), with sums inside, on every
# domain; the stat x * x of `s` is a constant 1
STATS = MIXED + """stat pair = b[0] * (c[1] == 2) - n * s[2]
stat per[i in 0..2] = s[i] * b[i] + 0.5 * (i == 1) * n
stat sq = sum(i in 0..2) s[i] * s[i]
stat far[k in 0..1] = c[k] * b[2 * k] + n * n
"""


@pytest.mark.parametrize("evidence", [None, {"s[1]": -1, "c[0]": 2}, {"b[2]": 0, "n": 1}])
def test_clique_tree_stat_means_match_enumeration(evidence):
    """Every stat mean from the clique tree against E[stat] summed over every state (the
    same numbers up to rounding: tol 1e-10)."""
    model = ebmlang.compile(STATS)
    _, x, p = brute(model, evidence=evidence)
    want = {k: np.tensordot(p, v, axes=1) for k, v in model.stat_values(x).items()}
    res = model.marginals(method="ve", evidence=evidence)
    assert set(res.stats) == set(want) and not res.stats_note
    for k, v in want.items():
        assert np.shape(res.stats[k]) == np.shape(v), k
        assert np.abs(res.stats[k] - v).max() < 1e-10, k
    assert res.stats["sq"] == pytest.approx(3.0, abs=1e-12)


def test_bp_says_its_stat_means_are_omitted():
    res = ebmlang.compile(STATS).marginals(method="bp")
    assert not res.stats and "approximate: omitted" in res.stats_note


def test_inputs_condition_the_clique_tree():
    model = ebmlang.compile(DENOISE)
    y = np.array([1, -1, 1, 1, 1, -1, -1, 1, 1], float)
    for ev in (None, {"x[1,1]": -1}):
        want, _, _ = brute(model, inputs=y, evidence=ev)
        _agree(model.marginals(method="ve", inputs=y, evidence=ev), want)
        _agree(model.marginals(method="exact", inputs=y, evidence=ev), want)
    with pytest.raises(UserError, match="depends on them"):
        model.marginals(method="ve")


def test_chunked_buckets_give_the_same_marginals(monkeypatch):
    """Buckets summed out one value at a time (BUCKET_CHUNK = 1) against enumeration."""
    import ebmlang.infer.cliquetree as ct
    import ebmlang.infer.elimination as el
    monkeypatch.setattr(el, "BUCKET_CHUNK", 1)
    monkeypatch.setattr(ct, "BUCKET_CHUNK", 1)
    model = ebmlang.compile(MIXED)
    want, _, _ = brute(model, evidence={"s[0]": 1})
    res = model.marginals(method="ve", evidence={"s[0]": 1})
    _agree(res, want)
    from ebmlang.infer.logz import logz
    assert logz(model, "ve").value == pytest.approx(logz(model, "exact").value, abs=1e-10)


def test_auto_says_why_and_gibbs_agrees_within_its_standard_errors():
    model = ebmlang.compile(MIXED)
    res = model.marginals()
    assert res.method == "exact" and "enumerate" in res.why
    ising = ebmlang.load(ROOT / "examples" / "ising.ebm", L=8)
    auto = ising.marginals()
    assert auto.method == "ve" and "too many to enumerate" in auto.why
    g = model.marginals(method="gibbs", seed=1, sweeps=2000, chains=4, evidence={"n": 2})
    want, _, _ = brute(model, evidence={"n": 2})
    # 8,000 draws; each se is the ESS-based MCSE (ArviZ), floored at the binomial se for
    # 1,000 independent draws; 5 se bounds a 35-cell family-wise error at about 2e-5.
    for k, n in enumerate(g.names):
        se = np.maximum(g.se[k], np.sqrt(want[n] * (1 - want[n]) / 1000) + 1e-3)
        assert np.all(np.abs(g.probs[k] - want[n]) <= 5 * se), n
    assert not g.warnings


def test_real_variables_go_to_gibbs_in_auto_and_are_refused_by_exact_methods():
    from ebmlang.infer.marginals import choose
    model = ebmlang.load(ROOT / "examples" / "gmrf.ebm", N=4)
    assert choose(model, {})[0] == "gibbs"
    for method in ("exact", "ve", "bp"):
        with pytest.raises(UserError, match="finite domains"):
            model.marginals(method=method)


def test_bp_route_is_exact_on_a_tree_with_evidence():
    # an open chain with a field is a tree, so BP's fixed point is the exact marginals
    model = ebmlang.compile("""
model chain
const N = 7
var s[i in 0..N-1] : spin
param J = 0.9
param h = 0.3
factor pair[i in 0..N-2] : J * s[i] * s[i + 1]
factor field[i in 0..N-1] : h * (i + 1) * s[i] / N
""")
    evidence = {"s[3]": -1}
    want, _, _ = brute(model, evidence=evidence)
    for schedule in ("residual", "parallel"):   # parallel: the binary pairwise kernel
        res = model.marginals(method="bp", evidence=evidence, tol=1e-12, schedule=schedule)
        assert res.method == "bp" and res.iterations >= 1 and res.converged
        assert f"{schedule} schedule" in res.detail
        _agree(res, want, tol=1e-9)


def test_mar_writer_round_trips(tmp_path):
    rows = [np.array([0.25, 0.75]), np.array([0.1, 0.2, 0.7]), np.array([1.0])]
    write_mar(tmp_path / "a.MAR", rows)
    back = read_marginals(str(tmp_path / "a.MAR"))
    assert all(np.allclose(a, b, atol=1e-9) for a, b in zip(rows, back)) and len(back) == 3


# ---------------------------------------------------------------- UAI networks

FAST = {"Promedus_24", "Pedigree_12", "Grids_12", "CSP_12"}   # a second or two each
NETWORKS = sorted(p.name[:-4] for p in UAI.glob("*.uai")) if UAI.is_dir() else list(FAST)


@pytest.mark.skipif(not UAI.is_dir(), reason=f"no UAI networks in {UAI}")
@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in FAST else [pytest.mark.slow])
                                  for n in NETWORKS])
def test_marginals_match_the_published_mar(name, tmp_path):
    """The published .MAR prints 6 significant digits: 1e-4 is the issue's bar."""
    path = UAI / f"{name}.uai"
    model = ebmlang.load(path)
    res = model.marginals()
    assert res.method == "ve"
    got, ref = mar_rows(model, res), read_marginals(str(path) + ".MAR")
    assert len(got) == len(ref)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, ref)) < 1e-4


# ---------------------------------------------------------------- the command

def test_the_command_writes_csv_and_mar_and_keeps_other_files(tmp_path, capsys):
    model = ROOT / "examples" / "potts.ebm"
    out = tmp_path / "m.csv"
    assert main(["marginals", str(model), "--set", "L=3", "--method", "ve", "-o", str(out)]) == 0
    import csv
    lines = list(csv.reader(out.read_text().splitlines()))
    assert lines[0] == ["variable", "p(0)", "p(1)", "p(2)"] and len(lines) == 10
    assert lines[1][0] == "z[0,0]" and abs(sum(map(float, lines[1][1:])) - 1) < 1e-12
    assert main(["marginals", str(model), "--set", "L=3", "-o", str(out)]) == 0  # its own file
    mar = tmp_path / "m.MAR"
    assert main(["marginals", str(model), "--set", "L=3", "-o", str(mar)]) == 0
    assert len(read_marginals(str(mar))) == 9
    keep = tmp_path / "data.csv"
    keep.write_text("a,b\n1,2\n")
    capsys.readouterr()
    assert main(["marginals", str(model), "--set", "L=3", "-o", str(keep)]) == 1
    assert "not a marginals CSV" in capsys.readouterr().err and keep.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("argv, message", [
    (["--method", "nope"], "invalid choice"),
    (["--evidence", "/nonexistent/e.evid"], "evidence files are for UAI"),
    (["--method", "exact", "--set", "L=8"], "enumerates every state"),
])
def test_command_errors_are_one_clean_line(argv, message, capsys):
    assert main(["marginals", str(ROOT / "examples" / "potts.ebm"), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_uai_evidence_file_is_a_clean_error(tmp_path, capsys):
    net = tmp_path / "t.uai"
    net.write_text("MARKOV\n2\n2 2\n1\n2 0 1\n4\n1 2 3 4\n")
    assert main(["marginals", str(net), "--evidence", str(tmp_path / "no.evid")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "Traceback" not in err
    ev = tmp_path / "e.evid"
    ev.write_text("1 0 1\n")
    assert main(["marginals", str(net), "--evidence", str(ev), "-o", str(tmp_path / "o.MAR")]) == 0
    got = read_marginals(str(tmp_path / "o.MAR"))
    assert np.allclose(got[0], [0, 1]) and np.allclose(got[1], [3 / 7, 4 / 7], atol=1e-9)


def test_stat_means_omitted_when_their_terms_would_widen_the_tree(monkeypatch):
    """Stat terms over variables no factor joins cost zero tables; when those would make the
    clique tree too costly, the marginals are still given and the stat means omitted."""
    import ebmlang.infer.stat_means as sm
    seen = []
    monkeypatch.setattr(sm, "cost", lambda model, order, extra: seen.append(extra) or
                        (1 << 40, 1 << 41))
    model = ebmlang.compile(STATS)
    want, _, _ = brute(model)
    res = model.marginals(method="ve")
    assert seen and seen[0]                       # (b[0], c[1]) and (b[2], c[1]) were added
    _agree(res, want)
    assert not res.stats and "stat means omitted" in res.stats_note


def test_auto_falls_back_to_bp_when_the_messages_would_not_fit(monkeypatch):
    """auto weighs the clique tree's messages (all the tables it keeps), not only its largest
    table: above MAX_MESSAGES it takes BP and its reason gives the numbers."""
    import ebmlang.infer.elimination as el
    from ebmlang.infer.marginals import choose
    ising = ebmlang.load(ROOT / "examples" / "ising.ebm", L=8)
    method, why = choose(ising, {})
    the_plan = el.plan(ising)
    assert method == "ve" and el.memory_text(the_plan.messages) in why
    monkeypatch.setattr(el, "MAX_MESSAGES", the_plan.messages - 1)
    method, why = choose(ising, {})
    assert method == "bp" and el.count_text(the_plan.messages) in why and "messages" in why


# two integers tied together: single-site Gibbs moves them a step or two a sweep, a random
# walk over 0..40 (the sampler's cluster moves are for spins and bools)
STICKY = """
var a : 0..40
var b : 0..40
factor tie : -2.0 * (a - b) * (a - b)
"""


def test_gibbs_warns_on_few_effective_draws():
    """2 chains x 100 draws of the slow random walk: a bulk ESS of a few (measured 3 for
    seeds 1-3), far below 100, so the low-ESS warning names the variables (R-hat warns
    too); the well-mixed MIXED run above gives no warning."""
    res = ebmlang.compile(STICKY).marginals(method="gibbs", seed=3, sweeps=100, chains=2)
    assert any("few effective draws for 2 variables" in w and "bulk ESS" in w
               for w in res.warnings)
