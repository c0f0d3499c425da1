"""What a large model keeps in memory: dense index spaces computed, not stored; kept draws in
the narrowest exact dtype. Byte counts, not timings: they do not depend on the machine."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ebmlang
from ebmlang.frontend import ast as A
from ebmlang.frontend.space import build_space
from ebmlang.frontend.exprs import StaticEnv


def _space(bounds, where=None):
    """A space over ranges `bounds` [(lo, hi), ...], optionally filtered by `where`."""
    names = [f"i{k}" for k in range(len(bounds))]
    bindings = tuple(A.RangeBinding(n, A.Num(float(lo), True), A.Num(float(hi), True))
                     for n, (lo, hi) in zip(names, bounds))
    env = StaticEnv({}, {}, "in an index")
    return build_space(A.Index(bindings, where), env, {}, {}, "test")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 4)), min_size=1, max_size=3))
def test_box_space_equals_enumeration(spec):
    """A box of ranges is not enumerated; its columns, tuples, rows, lookups and store equal
    those of the enumerated space (forced by an always-true `where`)."""
    bounds = [(lo, lo + w) for lo, w in spec]
    box = _space(bounds)
    listed = _space(bounds, A.BinOp("==", A.Num(1.0, True), A.Num(1.0, True)))
    assert box._tuples is None
    grid = np.stack(np.meshgrid(*[np.arange(lo, hi + 1) for lo, hi in bounds], indexing="ij"),
                    axis=-1).reshape(-1, len(bounds))
    for s in (box, listed):
        assert s.dense and s.size == len(grid)
        np.testing.assert_array_equal(s.tuples, grid)
        np.testing.assert_array_equal(s.store, np.arange(len(grid)))
        np.testing.assert_array_equal(s.lo, grid.min(axis=0))
        np.testing.assert_array_equal(s.hi, grid.max(axis=0))
        rows = np.arange(len(grid))[::3]
        for k, col in enumerate(s.columns(rows)):
            np.testing.assert_array_equal(col, grid[rows, k])
        assert s.row(len(grid) - 1) == tuple(int(v) for v in grid[-1])
        np.testing.assert_array_equal(s.lookup(list(grid.T)), np.arange(len(grid)))
        np.testing.assert_array_equal(s.lookup([c + 100 for c in grid.T]), -1)


def _owned_bytes(obj, seen=None) -> int:
    """Bytes of numpy arrays that own their data, reachable from obj's attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes if obj.base is None else 0
    if isinstance(obj, dict):
        return sum(_owned_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_owned_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("ebmlang"):
        return sum(_owned_bytes(v, seen) for v in vars(obj).values())
    return 0


def test_lattice_model_holds_only_its_read_tables():
    """The compiled Ising model at L = 128 keeps, per spin, its 6 read id tables (4 factor
    reads, 1 field, 1 stat: int32), the family numbers (2 bytes) and its block ids (4): the
    index tuples, stores, owner rows, scalar param positions and ground edges are not kept."""
    model = ebmlang.load("examples/ising.ebm", L=128)
    per_spin = _owned_bytes(model) / 128**2
    reads = sum(len(t.reads) for t in model.terms + model.stat_terms)
    assert per_spin <= 4 * reads + 2 + 4 + 1, per_spin
    assert len(model.graph.edges) == 2 * 128**2  # still there when asked for


DOMAINS = [("spin", np.int8), ("bool", np.int8), ("cat(5)", np.int8), ("-200..300", np.int16),
           ("{0, 40000}", np.float64), ("{0.5, 2}", np.float64), ("real", np.float64)]


@pytest.mark.parametrize("domain,dtype", DOMAINS)
def test_draws_kept_in_the_narrowest_exact_dtype(domain, dtype):
    """int8 for spins, bits and small categories, int16 for wider integer ranges, float64
    otherwise; `states` and `samples[family]` read them as float64, equal to the state."""
    energy = "energy e[i in 0..3] : 0.5 * x[i] ^ 2" if domain == "real" else \
        "factor e[i in 0..2] : 0.001 * x[i] * x[i + 1]"
    model = ebmlang.compile(f"var x[i in 0..3] : {domain}\n{energy}\n")
    s = model.sample(draws=30, chains=2, seed=1)
    assert s.full.dtype == dtype
    assert s.states.dtype == np.float64 and s["x"].dtype == np.float64
    np.testing.assert_array_equal(s.states, s.full.astype(np.float64))
    if domain != "real":
        values = np.unique(s.states)
        assert set(values) <= set(model.vars["x"].domain.values)
    assert s.trace().mean("x") == pytest.approx(float(s["x"].mean()), abs=1e-12)


def test_narrow_draws_give_the_same_csv_and_summaries(tmp_path):
    """The kept int8 draws write the same samples CSV and give the same energies as their
    float64 values."""
    model = ebmlang.load("examples/ising.ebm", L=6)
    s = model.sample(draws=40, chains=2, seed=5)
    assert s.full.dtype == np.int8
    x = s.full.reshape(-1, s.full.shape[-1]).astype(float)
    np.testing.assert_allclose(s.log_potential().ravel(), model.log_potential(x), rtol=1e-12)
    s.to_csv(tmp_path / "s.csv")
    text = (tmp_path / "s.csv").read_text().splitlines()
    assert text[0].split('"')[1] == "s[0,0]" and len(text) == 1 + 2 * 40
    rows = np.array([[float(v) for v in line.split(",")] for line in text[1:]])
    np.testing.assert_array_equal(rows[:, 2:], s.states.reshape(80, -1))


SPLIT = """
var a[i in 0..2] : spin
input y[i in 0..2] : spin
var b[i in 0..1] : cat(3)
param J = 0.4
factor f[i in 0..2] : J * a[i] * y[i]
factor g[i in 0..1] : 0.3 * (b[i] == 1) * a[i] + 0.2 * a[i] * a[i + 1]
stat m[i in 0..2] = a[i] * y[i]
stat n = sum(i in 0..1) b[i]
"""


def test_streamed_draws_give_what_kept_draws_give(tmp_path):
    """With keep=False the watchers see every draw, in order, in blocks; the trace built on
    the fly equals the one of the kept draws (Welford moments against numpy's), and the
    streamed CSV equals the kept draws' CSV byte for byte (var columns split by an input)."""
    model = ebmlang.compile(SPLIT)
    kw = dict(draws=53, chains=3, seed=4, inputs=np.array([[1, -1, 1]]))
    kept = model.sample(**kw)
    from ebmlang.infer.sample import csv_writer, sample as run
    from ebmlang.infer.trace import Trace
    import ebmlang.infer.sample as S
    old = S.CHUNK_CELLS
    S.CHUNK_CELLS = 5 * 3 * model.checked.n_state     # blocks of 5 draws: 53 = 10 * 5 + 3
    try:
        seen = []
        trace = Trace(model, 3, 53, model.state_ids())
        with csv_writer(model, tmp_path / "streamed.csv", 3) as out:
            streamed = run(model, keep=False, watch=[out.add, trace.add,
                                                     lambda k, xs: seen.append((k, xs.copy()))],
                           **kw)
    finally:
        S.CHUNK_CELLS = old
    trace.finish(streamed.acceptance)
    assert [k for k, _ in seen] == list(range(0, 53, 5))
    np.testing.assert_array_equal(np.concatenate([xs for _, xs in seen], axis=1), kept.full)
    with pytest.raises(ebmlang.UserError, match="not kept"):
        streamed.states
    ref = kept.trace()
    np.testing.assert_allclose(trace.energy, -kept.log_potential(), rtol=1e-12)
    stats = kept.stats()
    for name in ("m", "n"):
        flat = stats[name].reshape(3 * 53, -1)
        np.testing.assert_allclose(trace.series[name], stats[name].reshape(3, 53, -1).mean(2))
        assert trace.stat_mean(name) == pytest.approx(flat.mean(), abs=1e-12)
        assert trace.stat_sd(name) == pytest.approx(flat.std(axis=0).mean(), abs=1e-12)
        assert ref.stat_sd(name) == pytest.approx(trace.stat_sd(name), abs=1e-12)
    for f in ("a", "b"):
        assert trace.mean(f) == pytest.approx(float(kept[f].mean()), abs=1e-12)
    np.testing.assert_array_equal(trace.last, kept.full[:, -1])
    kept.to_csv(tmp_path / "kept.csv")
    assert (tmp_path / "kept.csv").read_bytes() == (tmp_path / "streamed.csv").read_bytes()


@pytest.mark.parametrize("chains, groups", [(2, 1), (8, 2)])
def test_streamed_memory_does_not_grow_with_draws(chains, groups):
    """keep=False: the traced allocation peak of 300 draws and of 3000 is the same (both are
    more than one buffered block of 122 draws) for a 64 x 64 lattice, in one chain group and
    in two (run in one sweep loop, each with its own stream)."""
    import tracemalloc
    from ebmlang.infer.groups import chain_groups
    model = ebmlang.load("examples/ising.ebm", L=64)
    assert len(chain_groups(model, chains)) == groups
    model.sample(draws=2, chains=chains, seed=0)       # compile and cache first
    peaks = []
    for draws in (300, 3000):
        tracemalloc.start()
        model.sample(draws=draws, chains=chains, burn_in=0, seed=0, keep=False,
                     watch=[lambda k, xs: None])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    kept_bytes = 3000 * chains * 64 * 64                # what keeping 3000 int8 draws takes
    assert peaks[1] - peaks[0] < 0.01 * kept_bytes, peaks


def test_interrupted_streamed_csv_leaves_the_old_file(tmp_path):
    """A run that fails midway leaves the previous samples CSV whole and no temporary file."""
    model = ebmlang.load("examples/ising.ebm", L=4)
    path = tmp_path / "s.csv"
    path.write_text("old\n")
    from ebmlang.infer.sample import csv_writer

    def boom(k, xs):
        if k >= 10:
            raise KeyboardInterrupt

    import ebmlang.infer.sample as S
    old = S.CHUNK_CELLS
    S.CHUNK_CELLS = 2 * 16
    try:
        with pytest.raises(KeyboardInterrupt):
            with csv_writer(model, path, 2) as out:
                model.sample(draws=50, chains=2, seed=0, keep=False, watch=[out.add, boom])
    finally:
        S.CHUNK_CELLS = old
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_unwatched_streamed_run_passes_many_blocks(monkeypatch):
    """keep=False without watchers over 13 blocks of 4 draws (issue 11, item 13): the run
    ends, its counts are those asked for, and its MH acceptance is the kept run's exactly (the
    same seed makes the same sweeps)."""
    model = ebmlang.compile("var x[i in 0..2] : real\nvar s[i in 0..2] : spin\n"
                            "energy e[i in 0..2] : x[i] ^ 4 - x[i] * s[i]\n"
                            "sampler x : mh\n")   # HMC is x's default: ask for MH
    import ebmlang.infer.sample as S
    kw = dict(draws=50, chains=2, burn_in=20, seed=3)
    kept = model.sample(**kw)
    monkeypatch.setattr(S, "CHUNK_CELLS", 4 * 2 * model.checked.n_state)
    streamed = model.sample(keep=False, **kw)
    assert (streamed.chains, streamed.draws, streamed.full) == (2, 50, None)
    assert set(kept.acceptance) == {"x"} and 0 < kept.acceptance["x"] < 1
    assert streamed.acceptance == kept.acceptance
