"""The update by table over runs (numba_tables.runs): lattices against exact enumeration, and
the layout picked where the runs are long and not elsewhere.

A run is a sequence of variables of one pattern at evenly spaced ids; the kernel reads the
pattern's neighbour offsets once per run. A wrong offset or a run that overshoots would move
the nearest-neighbour correlations, so each model is checked on its marginals and on every
pairwise moment E[x_a x_b], each within 5 batch-means standard errors of the exact value, as
in test_sampler_exact.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.backends.numba_backend import CompiledPart, _fused_at, compiled_parts
from ebmlang.backends.numba_tables import runs
from exact import exact_marginals, exact_moments
from test_sampler_exact import MODELS, batch_se, marginal_errors

DRAWS, CHAINS, BURN = 1500, 4, 200
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

LATTICES = {
    # non-square torus, wrap-around on both axes, a field: runs of 3 at step 2 per row
    "torus_2x8": ("""
var s[i in 0..1, j in 0..7] : spin
param J = 0.35
param h = 0.2
factor right[i in 0..1, j in 0..7] : J * s[i, j] * s[i, (j + 1) % 8]
factor down[i in 0..1, j in 0..7]  : J * s[i, j] * s[(i + 1) % 2, j]
factor field[i in 0..1, j in 0..7] : h * s[i, j]
""", None, 3),
    # Potts cat(3) on an open chain: the ends are patterns of their own, runs of 4 inside
    "potts_chain": ("""
var z[i in 0..9] : cat(3)
param J = 0.7
factor next[i in 0..8] : J * (z[i] == z[i + 1])
factor pref[i in 0..9] : 0.4 * (z[i] == 2)
""", None, 4),
    # open 3 x 3 Potts, the odd torus, and a denoising model whose neighbours include inputs
    # (from test_sampler_exact): runs of one variable each
    "potts": MODELS["potts"] + (1,),
    "ising_torus": MODELS["ising_torus"] + (1,),
    "denoise": MODELS["denoise"] + (1,),
}


def _kinds(parts) -> set[str]:
    return {p.kernel for block in parts for p in block if isinstance(p, CompiledPart)}


def _moment_errors(model, draws, inputs):
    """(standardized error, pair) of E[x_a x_b] for every pair of sampled variables."""
    _, second = exact_moments(model, inputs)
    ids = model.state_ids()
    xs = draws.full[:, :, ids]
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            prod = xs[:, :, a] * xs[:, :, b]
            se = max(batch_se(prod), 1e-3)
            yield abs(prod.mean() - second[a, b]) / se, (ids[a], ids[b])


@pytest.mark.parametrize("name", sorted(LATTICES))
def test_runs_match_enumeration(name):
    src, inputs, longest = LATTICES[name]
    model = ebmlang.compile(src)
    model._numba_parts = compiled_parts(model, tabulate=True, layout="runs")
    kinds = _kinds(model._numba_parts)
    assert kinds and all(k.startswith("tabled, runs") for k in kinds), kinds
    assert max(p.table.runs[:, 2].max() for b in model._numba_parts for p in b) == longest
    fused = [p.fused is not None for b in model._numba_parts for p in b]  # one call a sweep...
    assert all(fused) if len(kinds) == 1 else not any(fused)             # ...of one kernel
    draws = model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=6, inputs=inputs,
                         backend="numba")
    for z, where in marginal_errors(model, draws, exact_marginals(model, inputs)):
        assert z < 5, (name, where)
    for z, where in _moment_errors(model, draws, inputs):
        assert z < 5, (name, where)


CUBE = """
var s[i in 0..3, j in 0..3, k in 0..7] : spin
factor x[i in 0..2, j in 0..3, k in 0..7] : 0.25 * s[i, j, k] * s[i + 1, j, k]
factor y[i in 0..3, j in 0..3, k in 0..7] : 0.25 * s[i, j, k] * s[i, (j + 1) % 4, k]
factor z[i in 0..3, j in 0..3, k in 0..7] : 0.25 * s[i, j, k] * s[i, j, (k + 1) % 8]
factor f[i in 0..3, j in 0..3, k in 0..7] : 0.1 * s[i, j, k]
"""


def test_runs_on_a_3d_lattice_agree_with_numpy():
    """4 x 4 x 8, open along i, periodic along j and k, a field (too large to enumerate): each
    site's magnetization and each bond's E[s_a s_b] by runs against the numpy backend (the
    reference), within 5 combined batch-means standard errors."""
    model = ebmlang.compile(CUBE)
    model._numba_parts = compiled_parts(model, tabulate=True, layout="runs")
    assert max(p.table.runs[:, 2].max() for b in model._numba_parts for p in b) == 3
    a, b = (model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=s, backend=backend)
            for s, backend in ((1, "numpy"), (2, "numba")))
    stats = [(i, i) for i in range(128)] + [(int(u), int(v)) for t in model.terms[:3]
                                            for u, v in zip(t.reads[0].ids, t.reads[1].ids)]
    for u, v in stats:
        fa, fb = ((d.full[:, :, u] if u == v else d.full[:, :, u] * d.full[:, :, v])
                  for d in (a, b))
        se = np.hypot(max(batch_se(fa), 1e-3), max(batch_se(fb), 1e-3))
        assert abs(fa.mean() - fb.mean()) < 5 * se, (u, v)


def _lattice(shape: tuple[int, ...]) -> str:
    """A periodic spin lattice of any dimension, one coupling factor per axis."""
    idx = ", ".join(f"i{d} in 0..{n - 1}" for d, n in enumerate(shape))
    own = ", ".join(f"i{d}" for d in range(len(shape)))
    lines = [f"var s[{idx}] : spin"]
    for d, n in enumerate(shape):
        nb = ", ".join(f"(i{e} + 1) % {n}" if e == d else f"i{e}" for e in range(len(shape)))
        lines.append(f"factor f{d}[{idx}] : 0.3 * s[{own}] * s[{nb}]")
    return "\n".join(lines)


SAME_DRAWS = {"cube": CUBE, "potts_chain": LATTICES["potts_chain"][0],
              "torus_12x10": _lattice((12, 10)) + "\nfactor h[i0 in 0..11, i1 in 0..9] : "
                                                  "0.2 * s[i0, i1]"}


@pytest.mark.parametrize("name", sorted(SAME_DRAWS))
def test_runs_draw_as_the_stream_in_their_order(name):
    """The kernel by runs is the kernel by stream with the variables taken in order of
    (pattern, id): the same seed gives the same draws, bit for bit."""
    model = ebmlang.compile(SAME_DRAWS[name])
    by_runs = compiled_parts(model, tabulate=True, layout="runs")
    reordered = []
    for block in compiled_parts(model, tabulate=True, layout="stream"):
        row = []
        for p in block:
            o = np.lexsort((p.ids, p.table.pat))
            table = dataclasses.replace(p.table, pat=p.table.pat[o], theta=None)
            row.append(CompiledPart(p.family, p.ids[o], p.values, p.inc, p.module, table))
        reordered.append(row)
    assert _kinds(by_runs) != _kinds(reordered)
    x0 = np.asarray(model.sample(draws=1, chains=3, seed=0).full[:, 0], np.float64)
    out = []
    for parts in (by_runs, reordered):
        x, rng = x0.copy(), np.random.default_rng(9)
        for _ in range(25):
            for block in parts:            # part by part: not fused
                block[0].update(x, model.params.theta, rng)
        out.append(x)
    assert np.array_equal(out[0], out[1]) and not np.array_equal(out[0], x0)


def test_fused_blocks_chains_and_clamps():
    """The blocks of a lattice are swept in one call: spreading its chains over threads changes
    no draw; a swapped part breaks the fusion; clamped variables hold (the sweep then goes
    block by block) and the others agree with the numpy backend."""
    src = LATTICES["torus_2x8"][0]
    model = ebmlang.compile(src)
    parts = compiled_parts(model, tabulate=True, layout="runs")
    fused = parts[0][0].fused
    assert fused is not None and fused.members == [b[0] for b in parts]
    x0 = np.where(np.random.default_rng(0).random((4, 16)) < 0.5, -1.0, 1.0)
    out = []
    for parallel in (False, True):
        x, rng = x0.copy(), np.random.default_rng(5)
        for _ in range(20):
            fused.update(x, model.params.theta, rng, parallel=parallel)
        out.append(x)
    assert np.array_equal(out[0], out[1])
    assert _fused_at(parts, 0) is fused and _fused_at([parts[0], list(parts[1])], 0) is fused
    assert _fused_at([parts[0], model.parts()[1]], 0) is None
    model._numba_parts = parts
    clamp = np.full(16, np.nan)
    clamp[[0, 5, 11]] = [1, -1, 1]
    a, b = (model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=s, clamp=clamp,
                         backend=backend) for s, backend in ((1, "numpy"), (2, "numba")))
    assert np.all(b.full[:, :, [0, 5, 11]] == [1, -1, 1])
    for i in set(range(16)) - {0, 5, 11}:
        ia, ib = ((d.full[:, :, i] == 1).astype(float) for d in (a, b))
        se = np.hypot(max(batch_se(ia), 1e-3), max(batch_se(ib), 1e-3))
        assert abs(ia.mean() - ib.mean()) < 5 * se, i


def test_auto_layout_runs_on_lattices_only(tmp_path):
    """Long runs on lattices (2-D and 3-D, any side); an id and a pattern per variable on a
    random graph (every variable its own neighbour offsets) and on lattices too small for runs;
    no table at all where a param differs by instance."""
    assert _kinds(ebmlang.compile(_lattice((16, 16))).parts("numba")) == \
        {"tabled, runs, 4 neighbours x 2 values"}
    assert _kinds(ebmlang.compile(_lattice((4, 6, 16))).parts("numba")) == \
        {"tabled, runs, 6 neighbours x 2 values"}
    assert _kinds(ebmlang.compile(MODELS["ising_torus"][0]).parts("numba")) == \
        {"tabled, 4 neighbours x 2 values"}
    rng = np.random.default_rng(0)
    pairs = {tuple(sorted(rng.choice(300, 2, replace=False))) for _ in range(600)}
    (tmp_path / "edges.csv").write_text("u,v\n" + "".join(f"{u},{v}\n" for u, v in pairs))
    graph = ebmlang.compile("""
set E = load("edges.csv")
var x[i in 0..299] : spin
factor edge[(u, v) in E] : 0.2 * x[u] * x[v]
""", base=tmp_path)
    kinds = _kinds(graph.parts("numba"))
    assert kinds and not any("runs" in k for k in kinds), kinds
    rbm = ebmlang.compile(MODELS["rbm"][0])
    assert _kinds(rbm.parts("numba")) == {"gibbs_v", "gibbs_h"}


def test_code_shows_the_table_kernels_that_run(capsys):
    """`ebmlang code` prints the source of every table kernel the parts run (they depend on the
    ground blankets, not only on the model's text), and nothing of the kind where no part is
    tabulated."""
    from ebmlang.cli import app as cli
    from ebmlang.backends.numba_backend import table_kernel, table_kernels_text
    model = ebmlang.compile(_lattice((16, 16)))
    text = table_kernels_text(model)
    for block in model.parts("numba"):
        name, source = table_kernel(block[0].table, len(block[0].values))
        assert name == block[0].kernel and f"{name} (s colour" in text and source in text
    assert table_kernels_text(ebmlang.compile(MODELS["rbm"][0])) == ""
    assert cli.main(["code", str(EXAMPLES / "ising.ebm"), "--backend", "numba"]) == 0
    out = capsys.readouterr().out
    assert "table kernels" in out and "def _chain(c, x, seeds, runs, values, rel, coef, cdf):" \
        in out


def test_runs_cover_each_variable_once():
    """Random ids and patterns: the runs give back every (id, pattern) exactly once, and
    `most` bounds their number."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        m = int(rng.integers(1, 60))
        ids = np.sort(rng.choice(400, m, replace=False))
        ids[: m // 2] = np.arange(m // 2) * int(rng.integers(1, 4))   # some arithmetic stretches
        ids = np.unique(ids)
        pat = rng.integers(0, 3, len(ids)) * (rng.random() < 0.5)
        start, step, length, rpat = runs(ids, pat, len(ids)).T
        got = sorted((int(s + n * d), int(q)) for s, d, k, q in zip(start, step, length, rpat)
                     for n in range(k))
        assert got == sorted(zip(ids.tolist(), pat.tolist()))
        if len(start) > 1:
            assert runs(ids, pat, len(start) - 1) is None


@pytest.mark.parametrize("tabulate", [True, False], ids=["table", "direct"])
def test_int32_ground_ids_are_accepted(tabulate):
    """The model may hold its ground ids as int32 (read ids, param positions, block parts):
    the compiled parts are built from them as from int64 ones, and sample exactly."""
    src, inputs, _ = LATTICES["torus_2x8"]
    model = ebmlang.compile(src)
    for t in model.terms:
        for r in t.reads:
            r.ids = r.ids.astype(np.int32)
        for p in t.preads:
            p.pos = p.pos.astype(np.int32)
    for block in model.graph.blocks:
        for part in block.parts:
            part.ids = part.ids.astype(np.int32)
    model._numba_parts = compiled_parts(model, tabulate=tabulate)
    draws = model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=8, backend="numba")
    for z, where in marginal_errors(model, draws, exact_marginals(model)):
        assert z < 5, where
