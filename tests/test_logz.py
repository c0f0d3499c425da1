"""log Z: enumeration, variable elimination and AIS against independent references: exact
enumeration on small models, Kaufman's closed form for the periodic Ising model, the Gaussian
integral, and quadrature."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.cli import app as cli
from ebmlang.errors import UserError
from ebmlang.backends.numeric import logsumexp
from ebmlang.infer.exact import enumerate_states
from ebmlang.infer.logz import choose, logz, weight_summary

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

POTTS = """model potts
const L = 3
const K = 3
var z[i in 0..L-1, j in 0..L-1] : cat(K)
param J = 0.8
param g[k in 0..K-1] = normal(0, 0.5)
factor right[i in 0..L-1, j in 0..L-2] : J * (z[i, j] == z[i, j + 1])
factor down[i in 0..L-2, j in 0..L-1]  : J * (z[i, j] == z[i + 1, j])
factor colour[i in 0..L-1, j in 0..L-1] : g[z[i, j]]
"""

# Tables indexed by variables, three-variable factors, two reads of one ground variable, a
# constant factor, an energy, and a variable that no factor reads.
TABULAR = """model tab
const N = 6
var x[i in 0..N-1] : cat(3)
var z : bool
var lone : cat(4)
param T[a in 0..2, b in 0..2] = normal(0, 1)
param U[a in 0..2, c in 0..1] = normal(0, 1)
factor pair[i in 0..N-2] : T[x[i], x[i + 1]]
factor hub[i in 0..N-1 where i % 2 == 0] : U[x[i], z]
factor twice[i in 0..N-1] : 0.1 * x[i] * x[(i + N) % N]
factor triple[i in 0..N-3] : 0.2 * x[i] * x[i + 1] * x[i + 2]
factor ring : 0.3 * (x[0] == x[N - 1])
factor c : 1.5
energy e : 0.25 * log(1 + x[1])
"""

# 2^24 joint states: exact.log_partition sums the hidden layer out and enumerates the 16 v.
RBM = """model rbm
const N = 4
const M = 20
var v[i in 0..N-1] : bool
latent h[j in 0..M-1] : bool
param W[i in 0..N-1, j in 0..M-1] = normal(0, 0.5)
param b[i in 0..N-1] = normal(0, 0.5)
param c[j in 0..M-1] = normal(0, 0.5)
factor pair[i in 0..N-1, j in 0..M-1] : W[i, j] * v[i] * h[j]
factor vis[i in 0..N-1] : b[i] * v[i]
factor hid[j in 0..M-1] : c[j] * h[j]
"""

DENOISE = """model denoise
const H = 3
const W = 4
input y[i in 0..H-1, j in 0..W-1] : spin
var x[i in 0..H-1, j in 0..W-1] : spin
param eta = 0.7
param fidelity = 0.9
factor keep[i in 0..H-1, j in 0..W-1] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..H-1, j in 0..W-2] : eta * x[i, j] * x[i, j + 1]
factor down[i in 0..H-2, j in 0..W-1]  : eta * x[i, j] * x[i + 1, j]
"""

# Tables indexed by an input and by variables: log Z depends on the input row.
TABLE_INPUT = """model c
const N = 5
input y[i in 0..N-1] : cat(3)
var x[i in 0..N-1] : cat(3)
param T[a in 0..2, b in 0..2] = normal(0, 1)
param S[a in 0..2, b in 0..2] = normal(0, 1)
factor obs[i in 0..N-1] : T[y[i], x[i]]
factor chain[i in 0..N-2] : S[x[i], x[i + 1]] + 0.3 * y[i] * x[i + 1]
"""

NOISY = np.array([1, -1, 1, 1, -1, -1, 1, 1, 1, -1, 1, -1], float)


def ising(L: int, beta: float = 0.44, h: float = 0.0):
    model = ebmlang.load(EXAMPLES / "ising.ebm", L=L, beta=beta)
    model.params["h"] = h
    return model


def by_enumeration(model, inputs=None) -> float:
    """log Z summed over every state here, independently of ebmlang.infer.exact.log_partition."""
    return float(logsumexp(model.log_potential(enumerate_states(model, inputs))))


def kaufman_log_z(L: int, K: float) -> float:
    """log Z of the L x L Ising model with periodic boundaries, coupling K = beta J, no field
    (Kaufman 1949): Z = 1/2 (2 sinh 2K)^(L^2/2) (Z1 + Z2 + Z3 + Z4), where Z1..Z4 are the
    products over r < L of 2 cosh and 2 sinh of L gamma_k / 2 at odd k = 2r+1 and even k = 2r,
    cosh gamma_k = cosh 2K coth 2K - cos(pi k / L), and gamma_0 = 2K + log tanh K keeps its
    sign (negative above the critical temperature, which makes Z4 negative)."""
    c = math.cosh(2 * K) / math.tanh(2 * K)

    def gamma(k):
        return 2 * K + math.log(math.tanh(K)) if k == 0 else math.acosh(c - math.cos(math.pi * k / L))

    odd = [gamma(2 * r + 1) for r in range(L)]
    even = [gamma(2 * r) for r in range(L)]
    logs, signs = [], []
    for gs, fn in ((odd, math.cosh), (odd, math.sinh), (even, math.cosh), (even, math.sinh)):
        vals = [2 * fn(L * g / 2) for g in gs]
        logs.append(sum(math.log(abs(v)) for v in vals))
        signs.append(math.prod(math.copysign(1.0, v) for v in vals))
    top = max(logs)
    total = sum(s * math.exp(lg - top) for lg, s in zip(logs, signs))
    return -math.log(2) + 0.5 * L * L * math.log(2 * math.sinh(2 * K)) + top + math.log(total)


def small_models():
    return {
        "ising3": (ising(3, 0.44, 0.2), None),
        "potts": (ebmlang.compile(POTTS), None),
        "tabular": (ebmlang.compile(TABULAR), None),
        "rbm": (ebmlang.compile(RBM), None),
        "denoise": (ebmlang.compile(DENOISE), NOISY),
        "table-input": (ebmlang.compile(TABLE_INPUT), np.array([0, 2, 1, 1, 0])),
    }


CASES = ["ising3", "potts", "tabular", "rbm", "denoise", "table-input"]


def reference(name, model, inputs) -> float:
    if name == "rbm":   # 2^24 states: enumerate v, and sum each h[j] by hand
        v = np.array(np.meshgrid(*[[0, 1]] * 4, indexing="ij")).reshape(4, -1).T
        W, b, c = (model.params[k] for k in "Wbc")
        free = v @ b + np.logaddexp(0, v @ W + c).sum(axis=1)
        return float(logsumexp(free))
    return by_enumeration(model, inputs)


# ---------------------------------------------------------------- exact and ve

@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("method", ["exact", "ve"])
def test_exact_methods_match_enumeration(name, method):
    model, inputs = small_models()[name]
    res = logz(model, method, inputs=inputs)
    assert res.method == method and res.se is None
    assert abs(res.value - reference(name, model, inputs)) < 1e-9


def test_ve_reports_its_width():
    res = logz(ising(4), "ve")
    assert 4 <= res.width <= 8     # the 4 x 4 torus has treewidth 4 (a heuristic may exceed it)
    assert f"elimination width {res.width}" in res.detail


def test_kaufman_formula_matches_enumeration():
    for L in (3, 4):
        for beta in (0.2, 0.44, 0.7):
            assert abs(kaufman_log_z(L, beta) - by_enumeration(ising(L, beta))) < 1e-9


def test_ve_matches_kaufman_on_8x8_torus():
    res = logz(ising(8), "auto")
    assert res.method == "ve" and res.width <= 20
    assert abs(res.value - kaufman_log_z(8, 0.44)) < 1e-9


def test_ve_refuses_a_wide_model_naming_the_width():
    with pytest.raises(UserError, match=r"elimination width \d+.*use --method ais"):
        logz(ising(16), "ve")


def test_exact_refuses_above_the_limit():
    with pytest.raises(UserError, match="enumerates every state"):
        logz(ising(16), "exact")


def test_finite_only_methods_refuse_real_variables():
    model = ebmlang.load(EXAMPLES / "gmrf.ebm", N=4)
    for method in ("exact", "ve"):
        with pytest.raises(UserError, match="finite domains"):
            logz(model, method)


def test_a_conditional_model_needs_one_input_row():
    model = ebmlang.compile(DENOISE)
    with pytest.raises(UserError, match="depends on them"):
        logz(model)
    with pytest.raises(UserError, match="one input row"):
        logz(model, inputs=np.stack([NOISY, NOISY]))


def test_log_z_depends_on_the_inputs():
    model = ebmlang.compile(DENOISE)
    a, b = logz(model, "ve", inputs=NOISY).value, logz(model, "ve", inputs=-NOISY).value
    assert abs(a - b) < 1e-9      # the model is symmetric under flipping x and y together
    c = logz(model, "ve", inputs=np.ones(12)).value
    assert abs(c - by_enumeration(model, np.ones(12))) < 1e-9 and abs(c - a) > 0.1


sys.path.insert(0, str(ROOT / "bench"))
from uai_suite import uai_dir  # noqa: E402

UAI = uai_dir()
UAI_PROBLEMS = ["Promedus_24", "Grids_12", "Segmentation_11", "CSP_12", "Pedigree_12"]


@pytest.mark.skipif(not UAI.is_dir(), reason=f"the UAI 2014 problems are not in {UAI} "
                    "(set EBMLANG_UAI_DIR to their folder)")
@pytest.mark.parametrize("name", UAI_PROBLEMS)
def test_ve_matches_uai_2014_partition_functions(name):
    """Against the competition's reference log10 Z, within the rounding of its last digit."""
    path = UAI / f"{name}.uai"
    evidence = path.with_suffix(".uai.evid")
    model = ebmlang.load(path, evidence=evidence if evidence.exists() else None)
    text = (UAI / f"{name}.uai.PR").read_text().split()[-1]
    decimals = len(text.split(".")[1]) if "." in text else 0
    res = logz(model)
    assert res.method == "ve"
    assert abs(res.value / math.log(10) - float(text)) <= 0.5 * 10 ** -decimals + 1e-9


# ---------------------------------------------------------------- auto

def test_auto_says_which_method_and_why():
    assert choose(ising(3))[0] == "exact"
    assert choose(ebmlang.compile(RBM))[0] == "exact"     # a layer summed out
    method, why, plan = choose(ising(8))
    assert method == "ve" and plan.width <= 20 and "too many to enumerate" in why
    method, why, _ = choose(ising(16))
    assert method == "ais" and "too wide for variable elimination" in why
    method, why, _ = choose(ising(12))      # screened in, then planned: width 26 by min-fill
    assert method == "ais" and re.search(r"elimination width \d+", why)
    assert choose(ebmlang.load(EXAMPLES / "gmrf.ebm"))[0] == "ais"


# ---------------------------------------------------------------- ais

@pytest.mark.parametrize("name", CASES)
def test_ais_within_four_standard_errors_of_enumeration(name):
    model, inputs = small_models()[name]
    res = logz(model, "ais", inputs=inputs, seed=1, chains=100, steps=500)
    assert res.method == "ais" and 0 < res.se < 0.5 and res.ess > 10
    assert abs(res.value - reference(name, model, inputs)) < 4 * res.se


def test_ais_standard_error_is_calibrated():
    """Over independent short runs, the spread of the estimates matches the reported SE."""
    model = ising(3, 0.6)
    exact = by_enumeration(model)
    runs = [logz(model, "ais", seed=s, chains=50, steps=10) for s in range(40)]
    values = np.array([r.value for r in runs])
    se = np.array([r.se for r in runs])
    assert 0.5 < values.std(ddof=1) / se.mean() < 2.0
    assert abs(values.mean() - exact) < 4 * values.std(ddof=1) / math.sqrt(len(runs)) + 0.02


def test_weight_summary():
    value, se, ess = weight_summary(np.log([1.0, 1.0, 1.0, 1.0]))
    assert value == pytest.approx(0.0) and se == pytest.approx(0.0) and ess == pytest.approx(4)
    value, se, ess = weight_summary(np.log([3.0, 1.0]) + 1000.0)
    assert value == pytest.approx(1000 + math.log(2)) and ess == pytest.approx(16 / 10)
    assert se == pytest.approx(np.std([1.5, 0.5], ddof=1) / math.sqrt(2))


def test_ais_on_a_gaussian_mrf_matches_the_gaussian_integral():
    model = ebmlang.load(EXAMPLES / "gmrf.ebm", N=8)
    a, c = float(model.params["a"]), float(model.params["c"])
    A = a * np.eye(8) - c * (np.eye(8, k=1) + np.eye(8, k=-1))
    exact = 4 * math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(A)[1]
    res = logz(model, seed=2, chains=100, steps=500)
    assert res.method == "ais" and 0 < res.se < 0.5
    assert abs(res.value - exact) < 4 * res.se


def test_ais_on_the_double_well_matches_quadrature():
    model = ebmlang.load(EXAMPLES / "doublewell.ebm")
    t = np.linspace(-4, 4, 200_001)
    exact = math.log(np.trapezoid(np.exp(-(t ** 4 - 2 * t ** 2)), t))
    res = logz(model, seed=3, chains=200, steps=500)
    assert 0 < res.se < 0.5 and abs(res.value - exact) < 4 * res.se


def test_ais_is_reproducible_with_a_seed():
    a = logz(ising(3), "ais", seed=5, steps=20)
    b = logz(ising(3), "ais", seed=5, steps=20)
    assert a.value == b.value and a.se == b.se


def test_ais_matches_kaufman_on_16x16_torus_near_critical():
    """beta = 0.44, just above the critical temperature (beta_c = 0.4407): the hard case."""
    res = logz(ising(16), seed=0, chains=100, steps=3000)
    assert res.method == "ais" and 0 < res.se < 0.5
    assert abs(res.value - kaufman_log_z(16, 0.44)) < 4 * res.se


# ---------------------------------------------------------------- command line

def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exact_prints_log_z_and_method(capsys):
    code, out, _ = run(["logz", str(EXAMPLES / "ising.ebm"), "--set", "L=3"], capsys)
    lines = out.splitlines()
    assert code == 0 and re.fullmatch(r"log Z = -?\d+\.\d+", lines[0])
    assert float(lines[0].split("=")[1]) == pytest.approx(by_enumeration(ising(3)), abs=1e-9)
    assert lines[1].startswith("method: exact") and "+-" not in out


def test_cli_ve_says_the_width(capsys):
    code, out, _ = run(["logz", str(EXAMPLES / "ising.ebm"), "--set", "L=6"], capsys)
    assert code == 0 and "method: ve" in out and re.search(r"elimination width \d+", out)


def test_cli_ais_prints_a_standard_error(capsys):
    code, out, _ = run(["logz", str(EXAMPLES / "ising.ebm"), "--set", "L=4", "--method", "ais",
                        "--seed", "0", "--chains", "20", "--steps", "50"], capsys)
    assert code == 0 and re.fullmatch(r"log Z = -?\d+\.\d+ \+- \S+", out.splitlines()[0])
    assert "method: ais" in out and "effective sample size" in out


def test_cli_exact_too_large_exits_1(capsys):
    code, _out, err = run(["logz", str(EXAMPLES / "ising.ebm"), "--method", "exact"], capsys)
    assert code == 1 and "enumerates every state" in err and "Traceback" not in err


def test_cli_conditional_model_input(tmp_path, capsys):
    model = tmp_path / "denoise.ebm"
    model.write_text(DENOISE)
    names = ebmlang.compile(DENOISE).ground_names(("input",))
    one = tmp_path / "y.csv"
    one.write_text(",".join(f'"{n}"' for n in names) + "\n" + ",".join(
        str(int(v)) for v in NOISY) + "\n")
    code, _, err = run(["logz", str(model)], capsys)
    assert code == 1 and "--input" in err
    code, out, _ = run(["logz", str(model), "--input", str(one)], capsys)
    expect = by_enumeration(ebmlang.compile(DENOISE), NOISY)
    assert code == 0 and float(out.splitlines()[0].split("=")[1]) == pytest.approx(expect)
    two = tmp_path / "yy.csv"
    two.write_text(one.read_text() + one.read_text().splitlines()[1] + "\n")
    code, _, err = run(["logz", str(model), "--input", str(two)], capsys)
    assert code == 1 and "exactly one row" in err
