"""MAP: graph cuts, ICM and annealing against the exact argmax by enumeration; the method
`auto` picks and why; the MAP CSV; the denoising example; imputation; PNG files.

Graph cuts are exact, so they must reach the enumerated maximum of log p (up to the 1e-12
quantization of the capacities) on every small model. Annealing is a heuristic: on models of
8-10 variables, 4 chains of 500 sweeps find the maximum for the fixed seeds used here (and
would for most others). ICM promises only a local optimum: no single-variable change improves.
"""

import csv

import numpy as np
import pytest

import ebmlang
from ebmlang.cli import app as cli
from ebmlang.io.data import load_evidence
from ebmlang.infer.exact import enumerate_states
from ebmlang.io.images import encode_png, read_png, write_png
from ebmlang.infer.map import clamp_rows, impute, map_estimate

DENOISE = "examples/denoise.ebm"
NOISY, CLEAN = "examples/data/noisy.csv", "examples/data/clean.csv"

COUPLED = """
const N = 8
var x[i in 0..N-1] : {dom}
param W[i in 0..N-1, j in 0..N-1] = 0
param b[i in 0..N-1] = 0
factor pair[i in 0..N-1, j in 0..N-1 where i < j] : W[i, j] * x[i] * x[j]
factor bias[i in 0..N-1] : b[i] * x[i]
"""

TABLE = """
var x[i in 0..7] : bool
param T[a in 0..1, b in 0..1] = 0
param u[i in 0..7] = 0
factor chain[i in 0..6] : T[x[i], x[i + 1]]
energy field[i in 0..7] : u[i] * x[i]
"""

SMALL_DENOISE = """
const H = 3
const W = 3
input y[i in 0..H-1, j in 0..W-1] : spin
var x[i in 0..H-1, j in 0..W-1] : spin
param eta = 0.8
param fidelity = 0.6
factor keep[i in 0..H-1, j in 0..W-1] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..H-1, j in 0..W-2] : eta * x[i, j] * x[i, j + 1]
energy down[i in 0..H-2, j in 0..W-1]  : -eta * x[i, j] * x[i + 1, j]
"""

POTTS = """
var z[i in 0..2, j in 0..2] : cat(3)
param J = 0.8
factor right[i in 0..2, j in 0..1] : J * (z[i, j] == z[i, j + 1])
factor down[i in 0..1, j in 0..2]  : J * (z[i, j] == z[i + 1, j])
factor pref[i in 0..2, j in 0..2]  : 0.3 * (z[i, j] == (i + j) % 3)
"""


def coupled(dom: str, seed: int, sign: float = 1.0):
    """Random sparse couplings of one sign and random fields."""
    m = ebmlang.compile(COUPLED.format(dom=dom))
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 1.5, (8, 8)) * (rng.random((8, 8)) < 0.5)
    m.params["W"] = sign * np.triu(w, 1)
    m.params["b"] = rng.normal(0, 1, 8)
    return m


def exact_best(model, clamp_row=None, inputs=None):
    """The enumerated maximum of log p, over the states that agree with the clamped cells."""
    x = enumerate_states(model, inputs)
    if clamp_row is not None:
        given = ~np.isnan(clamp_row)
        x = x[np.all(x[:, given] == clamp_row[given], axis=1)]
    lp = model.log_potential(x)
    return lp.max(), x[lp.argmax()]


def assert_local_optimum(model, state):
    """No single free variable's change raises log p."""
    base = model.log_potential(state[None])[0]
    for f in model.vars.values():
        if not f.sampled:
            continue
        for i in range(f.offset, f.offset + f.space.size):
            trial = np.repeat(state[None], f.domain.size, axis=0)
            trial[:, i] = f.domain.values
            assert model.log_potential(trial).max() <= base + 1e-9


# ---------------------------------------------------------------- graph cuts: exact

@pytest.mark.parametrize("dom", ["spin", "bool"])
@pytest.mark.parametrize("seed", range(5))
def test_graphcut_is_the_exact_argmax(dom, seed):
    m = coupled(dom, seed)
    res = map_estimate(m, method="graphcut")
    best, _ = exact_best(m)
    assert res.method == "graphcut" and res.reason == "binary, pairwise, submodular"
    assert res.log_potential[0] == pytest.approx(best, abs=1e-9)
    assert m.log_potential(res.states)[0] == pytest.approx(res.log_potential[0])
    assert any("pair: symbolically" in e for e in res.evidence)


@pytest.mark.parametrize("seed", range(4))
def test_graphcut_tabular_potential_checked_numerically(seed):
    """T[x[i], x[i+1]] reads a param through variables: no symbolic sign, the 2x2 tables decide."""
    m = ebmlang.compile(TABLE)
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 1, (2, 2))
    t[1, 1] = t[0, 1] + t[1, 0] - t[0, 0] + rng.uniform(0, 1)   # supermodular log-potential
    m.params["T"], m.params["u"] = t, rng.normal(0, 1, 8)
    res = map_estimate(m, method="graphcut")
    assert res.log_potential[0] == pytest.approx(exact_best(m)[0], abs=1e-9)
    assert res.evidence == ["chain: numerically, 7 instances' 2x2 tables"]


@pytest.mark.parametrize("seed", range(4))
def test_graphcut_with_inputs_and_an_energy(seed):
    m = ebmlang.compile(SMALL_DENOISE)
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], (1, 9))
    m.params["fidelity"] = rng.uniform(0.2, 1.5)
    res = map_estimate(m, inputs=y, method="auto")
    assert res.method == "graphcut"
    assert res.log_potential[0] == pytest.approx(exact_best(m, inputs=y)[0], abs=1e-9)
    assert "down: symbolically, interaction 4*eta = 3.2 >= 0" in res.evidence


def test_graphcut_with_clamped_cells():
    """Given cells are constants: the argmax is over the states that agree with them."""
    m = coupled("spin", 7, sign=1.0)
    row = np.full((1, 8), np.nan)
    row[0, [1, 4]] = [-1, 1]
    res = map_estimate(m, data=row)
    best, _ = exact_best(m, row[0])
    assert res.method == "graphcut" and res.log_potential[0] == pytest.approx(best)
    assert res.states[0, 1] == -1 and res.states[0, 4] == 1


def test_clamping_makes_a_nonsubmodular_pair_unary():
    """With one end of every negative coupling given, what is left is submodular."""
    m = ebmlang.compile("var x[i in 0..3] : spin\nparam J = -1\n"
                        "factor f[i in 0..2] : J * x[i] * x[i + 1]\nfactor g : 0.1 * x[0]")
    assert map_estimate(m, seed=0).method == "ve"  # small: exact max-product elimination
    res = map_estimate(m, data=np.array([[np.nan, 1, np.nan, 1]]))
    assert res.method == "graphcut" and res.states[0].tolist() == [-1, 1, -1, 1]


# ---------------------------------------------------------------- ICM and annealing

@pytest.mark.parametrize("seed", range(3))
def test_anneal_finds_the_argmax_of_a_frustrated_model(seed):
    m = coupled("spin", seed, sign=-1.0)         # antiferromagnetic: not submodular
    res = map_estimate(m, method="anneal", seed=seed)
    assert res.method == "anneal"
    assert res.log_potential[0] == pytest.approx(exact_best(m)[0], abs=1e-9)
    auto = map_estimate(m, method="auto", seed=seed)
    assert auto.method == "ve" and auto.reason.startswith("not graphcut: not submodular")
    assert auto.log_potential[0] == pytest.approx(exact_best(m)[0], abs=1e-9)


def test_anneal_finds_the_argmax_of_potts():
    m = ebmlang.compile(POTTS)
    res = map_estimate(m, method="anneal", seed=0)
    assert res.method == "anneal"
    assert res.log_potential[0] == pytest.approx(exact_best(m)[0], abs=1e-9)
    auto = map_estimate(m, seed=0)
    assert auto.method == "ve" and auto.reason.startswith("not graphcut: not binary: z is cat(3)")
    assert auto.log_potential[0] == pytest.approx(exact_best(m)[0], abs=1e-9)


def test_auto_anneals_when_elimination_is_too_wide():
    """A dense frustrated Boltzmann machine: width 39, too wide for elimination."""
    m = ebmlang.compile("const N = 40\nvar x[i in 0..N-1] : spin\n"
                        "param W[i in 0..N-1, j in 0..N-1] = normal(0, 1)\n"
                        "factor p[i in 0..N-1, j in 0..N-1 where i < j] : W[i, j] * x[i] * x[j]\n")
    res = map_estimate(m, seed=0, sweeps=50)
    assert res.method == "anneal" and "not ve:" in res.reason


@pytest.mark.parametrize("seed", range(3))
def test_icm_reaches_a_local_optimum(seed):
    for m in (coupled("spin", seed, sign=-1.0), ebmlang.compile(POTTS)):
        res = map_estimate(m, method="icm", seed=seed, chains=1)
        assert res.method == "icm"
        assert_local_optimum(m, res.states[0])


def test_icm_keeps_clamped_cells():
    m = ebmlang.compile(POTTS)
    row = np.full((1, 9), np.nan)
    row[0, 4] = 2
    res = map_estimate(m, data=row, method="icm", seed=1)
    assert res.states[0, 4] == 2


def test_real_valued_modes():
    """A Gaussian chain's mode solves Q mu = h (ICM: coordinate ascent); the double well's
    modes are +-1 (annealed MH, then greedy MH steps)."""
    m = ebmlang.compile("var x[i in 0..4] : real\nparam h[i in 0..4] = 0\n"
                        "energy self[i in 0..4] : 0.5 * x[i] ^ 2 - h[i] * x[i]\n"
                        "energy chain[i in 0..3] : -0.45 * x[i] * x[i + 1]")
    m.params["h"] = [1.0, -0.5, 0.3, 0.0, 2.0]
    q = np.eye(5) - 0.45 * (np.eye(5, k=1) + np.eye(5, k=-1))
    mode = np.linalg.solve(q, m.params["h"])
    for method in ("icm", "anneal"):
        res = map_estimate(m, method=method, seed=0)
        np.testing.assert_allclose(res.states[0], mode, atol=1e-6)
    well = ebmlang.load("examples/doublewell.ebm")
    res = map_estimate(well, seed=0)
    assert res.method == "anneal" and abs(abs(res.states[0, 0]) - 1) < 1e-3
    with pytest.raises(ebmlang.UserError, match="Metropolis-Hastings: use --method anneal"):
        map_estimate(well, method="icm")


# ---------------------------------------------------------------- the denoising example

def test_denoise_example():
    """The noisy picture has 9.1% of its pixels flipped. Graph cuts return the exact MAP, a
    deterministic answer: 2.5% of the pixels differ from the clean picture (26 pixels, at the
    corners of the disc and the bar, which the smoothness prior rounds off). At most 3% allows
    nothing but that: a missed optimum or a wrong energy shows as more."""
    m = ebmlang.load(DENOISE)
    rows = load_evidence(m, NOISY).x
    clean = np.loadtxt(CLEAN, delimiter=",", skiprows=1)
    noisy = rows[0, m.state_ids(("input",))]
    res = map_estimate(m, data=rows)
    assert res.method == "graphcut"
    before, after = np.mean(noisy != clean), np.mean(res.values[0] != clean)
    assert before > 0.08 and after <= 0.03
    for method in ("icm", "anneal"):            # neither beats the exact optimum
        other = map_estimate(m, data=rows, method=method, seed=0)
        assert other.log_potential[0] <= res.log_potential[0] + 1e-9


# ---------------------------------------------------------------- command line

def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], float)


def test_cli_map_csv_rows_and_log_potential(capsys, tmp_path):
    model = tmp_path / "d.ebm"
    model.write_text(SMALL_DENOISE)
    inputs = tmp_path / "y.csv"
    names = [f"y[{i},{j}]" for i in range(3) for j in range(3)]
    inputs.write_text('"' + '","'.join(names) + '"\n' + "1,1,1,1,-1,1,1,1,1\n"
                      "-1,-1,-1,1,-1,-1,-1,-1,-1\n")
    out = tmp_path / "map.csv"
    code, stdout, _ = run(capsys, "map", model, "--input", inputs, "-o", out)
    assert code == 0 and "MAP by graphcut (binary, pairwise, submodular)" in stdout
    header, rows = read_csv(out)
    m = ebmlang.compile(SMALL_DENOISE)
    assert header == m.ground_names() + ["log_potential"]
    assert rows.shape == (2, 10)
    assert rows[0, :9].tolist() == [1] * 9 and rows[1, :9].tolist() == [-1] * 9
    y = np.loadtxt(inputs, delimiter=",", skiprows=1)
    for r in range(2):
        assert rows[r, -1] == pytest.approx(exact_best(m, inputs=y[r:r + 1])[0])


def test_cli_prints_small_results_as_csv(capsys, tmp_path):
    model = tmp_path / "p.ebm"
    model.write_text(POTTS)
    code, out, err = run(capsys, "map", model, "--seed", "0")
    assert code == 0 and "MAP by ve (not graphcut: not binary: z is cat(3); max-product" in err
    lines = out.strip().splitlines()
    assert lines[0].startswith('"z[0,0]","z[0,1]"') and lines[0].endswith(",log_potential")
    assert len(lines) == 2


def test_cli_denoise_summary_and_png(capsys, tmp_path):
    code, out, _ = run(capsys, "map", DENOISE, "--input", NOISY)
    assert code == 0
    assert "MAP by graphcut (binary, pairwise, submodular)" in out
    assert "right: symbolically, interaction 4*eta = 8 >= 0" in out
    assert "row 1: log potential 4789" in out and "#########" in out
    # the same picture through PNG files: noisy.png in, clean.png out
    m = ebmlang.load(DENOISE)
    y = load_evidence(m, NOISY).x[0, m.state_ids(("input",))].reshape(32, 32)
    write_png(tmp_path / "noisy.png", np.where(y > 0, 255, 0))
    code, out, _ = run(capsys, "map", DENOISE, "--input-png", tmp_path / "noisy.png",
                       "-o", tmp_path / "clean.png")
    assert code == 0 and "wrote" in out
    grey, alpha = read_png(tmp_path / "clean.png")
    expected = map_estimate(m, data=load_evidence(m, NOISY).x)["x"][0]
    assert alpha is None and np.array_equal(np.where(grey >= 128, 1, -1), expected)


def test_cli_imputation_columns(capsys, tmp_path):
    """Var columns in --input: given cells are kept, empty ones are the constrained argmax."""
    model = tmp_path / "c.ebm"
    model.write_text(COUPLED.format(dom="spin").replace("param W[i in 0..N-1, j in 0..N-1] = 0",
                                                       "param W[i in 0..N-1, j in 0..N-1] = 0.5"))
    data = tmp_path / "x.csv"
    data.write_text(",".join(f"x[{i}]" for i in range(8)) + "\n,-1,,,1,,,\n1,,,,,,,-1\n")
    out = tmp_path / "m.csv"
    assert run(capsys, "map", model, "--input", data, "-o", out)[0] == 0
    _, rows = read_csv(out)
    m = ebmlang.load(model)
    given = load_evidence(m, data).x
    for r in range(2):
        best, _ = exact_best(m, given[r])
        assert rows[r, -1] == pytest.approx(best)
        keep = ~np.isnan(given[r])
        assert np.array_equal(rows[r, :8][keep], given[r][keep])


@pytest.mark.parametrize("argv, words", [
    (["--method", "graphcut"], ["graph cuts cannot solve this model", "not submodular",
                                "4*eta = -4 < 0", "use --method ve, anneal"]),
])
def test_cli_graphcut_refuses_nonsubmodular(capsys, tmp_path, argv, words):
    params = tmp_path / "p.json"
    params.write_text('{"params": {"eta": -1.0, "fidelity": 1.5}}')
    code, _, err = run(capsys, "map", DENOISE, "--input", NOISY, "--params", params, *argv)
    assert code == 1 and "Traceback" not in err
    for w in words:
        assert w in err


def test_cli_errors(capsys, tmp_path):
    model = tmp_path / "p.ebm"
    model.write_text(POTTS)
    code, _, err = run(capsys, "map", model, "--method", "graphcut")
    assert code == 1 and "not binary: z is cat(3)" in err
    code, _, err = run(capsys, "map", DENOISE)
    assert code == 1 and "--input" in err
    code, _, err = run(capsys, "map", model, "-o", tmp_path / "z.png")
    assert code == 1 and "2-D binary family" in err
    png = tmp_path / "small.png"
    write_png(png, np.zeros((4, 5)))
    code, _, err = run(capsys, "map", DENOISE, "--input-png", png)
    assert code == 1 and "5 x 4 pixels" in err


# ---------------------------------------------------------------- imputation by sampling

def test_impute_matches_exact_conditionals():
    """Posterior means of the missing cells within 5 standard errors of the exact conditional
    means (8 chains x 1,000 draws; the chain mixes in a few sweeps, so the error is about
    sqrt(1 / 8,000) = 0.011 per cell); modes agree where the exact answer is clear."""
    m = coupled("bool", 3)
    row = np.full((1, 8), np.nan)
    row[0, [0, 5]] = [1, 0]
    imp = impute(m, row, draws=1000, chains=8, seed=0)
    x = enumerate_states(m)
    x = x[(x[:, 0] == 1) & (x[:, 5] == 0)]
    p = np.exp(m.log_potential(x) - m.log_potential(x).max())
    exact = p @ x / p.sum()
    free = np.isnan(row[0])
    np.testing.assert_allclose(imp.mean[0, free], exact[free], atol=0.06)
    clear = free & (np.abs(exact - 0.5) > 0.15)
    assert np.array_equal(imp.filled[0, clear], (exact[clear] > 0.5).astype(float))
    assert imp.filled[0, 0] == 1 and imp.filled[0, 5] == 0
    assert imp.missing[0].tolist() == free.tolist()


# ---------------------------------------------------------------- PNG files

def test_png_round_trip_and_alpha(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (7, 11))
    write_png(tmp_path / "a.png", grey)
    back, alpha = read_png(tmp_path / "a.png")
    assert alpha is None and np.array_equal(back, grey)
    pil = pytest.importorskip("PIL.Image")
    for mode in ("RGB", "RGBA", "P", "1", "LA"):    # Pillow's filters, palettes and bit depths
        pil.fromarray(grey.astype(np.uint8)).convert(mode).save(tmp_path / "b.png", optimize=True)
        got, _ = read_png(tmp_path / "b.png")
        ref = np.asarray(pil.open(tmp_path / "b.png").convert("L"), float)
        assert np.abs(got - ref).max() <= 1.0
    assert encode_png(np.zeros((1, 1))).startswith(b"\x89PNG")


def test_clamp_rows_needs_inputs():
    m = ebmlang.compile(SMALL_DENOISE)
    with pytest.raises(ebmlang.UserError, match="give them with --input"):
        clamp_rows(m)
