"""The compiled backend: the generated numba module (see `numba_codegen`), cached on disk by
content, and the ground arrays its kernels loop over.

For a block part of a compiled family, `CompiledPart` holds, built once with numpy from the
terms' read ids (`numba_ground`): per term, CSR incidence arrays (for each variable of the part,
the instances that read it and a bit mask of which reads hit it), and the ids of each variable's
neighbours (the other reads of those instances, in the same order). When every neighbour has a
finite domain and no param differs between instances, the conditional depends only on the
neighbours' values: the variables are grouped by blanket signature (the sequence of terms and
hit masks) and the conditional is tabulated per signature and rebuilt only when the params
change; such a part keeps only its patterns (or runs) and its representatives' incidence.

Kernels update the state in place: the variables of one block share no term instance, so this
is the same as the numpy backend's update of the whole block from one state. Each chain draws
from its own xoroshiro128+ generator seeded, on every call, from the caller's numpy Generator:
the same seed gives the same draws, with or without parallel chains.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Parallel chains on a busy machine: OpenMP's default busy-waiting makes a parallel region wait
# for a descheduled thread (on 2 shared cores, 10x slower than serial); passive waiting does not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ebmlang.cachedir import cache_dir
from ebmlang.backends.numba_codegen import generate_numba, plans
from ebmlang.backends.numba_ground import Incidence, incidence, scratch
from ebmlang.backends.lanes import per_group_values, seed_words
from ebmlang.backends.numba_tables import MAX_UNROLL, MIN_RUN, Table, runs, tabled_source, tabulation
from ebmlang.backends.runtime import UPDATES, write_block


# ---------------------------------------------------------------- cache


def cache_key(source: str) -> str:
    """sha256 of the generated text, the helpers it imports, and the versions that compile it."""
    import numba

    from ebmlang import __version__
    from ebmlang.backends import numba_kernels
    helpers = Path(numba_kernels.__file__).read_bytes()
    h = hashlib.sha256(source.encode())
    for part in (helpers, numba.__version__.encode(), np.__version__.encode(),
                 __version__.encode()):
        h.update(b"\0" + part)
    return h.hexdigest()[:20]


def load_generated(source: str):
    """Import the generated module from a file in the cache (written once, atomically), so
    numba's `cache=True` keeps its compiled code next to it between runs."""
    name = f"ebmlang_numba_{cache_key(source)}"
    if name in sys.modules:
        return sys.modules[name]
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- parts and the sweep

PARALLEL_WORK = 1 << 16    # chains x variables of a call worth waking the threads for


@dataclass(eq=False)
class CompiledPart:
    """A block part updated by the generated kernels, in place (compared by identity)."""

    family: str
    ids: np.ndarray
    values: np.ndarray
    inc: Incidence
    module: object
    table: Table | None = None
    method: str = "gibbs"
    accepted: int = 0
    proposed: int = 0
    kernel: str = field(init=False)           # the kernel's name, for check and tests
    fused: "FusedBlocks | None" = None        # the sweep of consecutive blocks it belongs to

    def __post_init__(self):
        from ebmlang.backends import numba_kernels
        mod, inc, t = self.module, self.inc, self.table
        if t is None:
            self.kernel = f"gibbs_{self.family}"
            fns = getattr(mod, self.kernel), getattr(mod, f"pgibbs_{self.family}")
            self._args = (self.ids, self.values, inc.nb_ptr, inc.nb_ids) + inc.flat
        else:
            self.kernel, source = table_kernel(t, len(self.values))
            if source is not None:
                kernels = load_generated(source)
                where = (t.runs,) if t.runs is not None else (self.ids, t.pat)
                self._args = where + (self.values, np.hstack([t.rel, t.pbase[:, None]]),
                                      np.hstack([t.coef, t.cst[:, None]]), t.cdf)
            else:
                kernels = numba_kernels
                self._args = (self.ids, self.values, t.pat, t.rel, t.coef, t.wid, t.cst,
                              t.pbase, t.cdf)
            fns = kernels.tabled, kernels.ptabled
            self._build = getattr(mod, f"table_{self.family}")
        self._fns = {False: fns[0], True: fns[1]}

    def update(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
               parallel: bool | None = None) -> None:
        """One heat-bath update of every variable of the part, in place; each chain's generator
        is seeded from two words of `rng`."""
        chains = x.shape[0]
        if self.table is not None:
            self.table.refresh(self._build, theta, self.values, self.inc)
        if parallel is None:
            parallel = chains > 1 and chains * len(self.ids) >= PARALLEL_WORK
        self._fns[parallel](x, theta, seed_words(rng, chains), *self._args)


def compiled_parts(model, tabulate: bool | None = None, layout: str = "auto") -> list[list]:
    """Every block's parts: a CompiledPart where the family compiles, else the numpy
    PartKernel of `model.parts()` (shared, so MH scales and counts are the same objects).
    `tabulate`: None decides by table size, True whenever possible, False never. `layout`, for
    a tabulated part: "runs" (variables as runs of one pattern), "stream" (an id and a pattern
    per variable), or "auto": runs when they hold MIN_RUN variables on average."""
    ps = plans(model)
    module = numpy_parts = where = None
    cache: dict = {}
    out = []
    for b, block in enumerate(model.graph.blocks):
        row = []
        for q, p in enumerate(block.parts):
            plan = ps[p.family]
            if plan.reason is not None:
                numpy_parts = numpy_parts or model.parts()
                row.append(numpy_parts[b][q])
                continue
            module = module or load_generated(generate_numba(model))
            where = scratch(model) if where is None else where
            values, inc, table = _part_arrays(model, p, plan.terms, tabulate, layout, where,
                                              cache)
            row.append(CompiledPart(p.family, p.ids, values, inc, module, table))
        out.append(row)
    _fuse_runs(out)
    return out


def _part_arrays(model, p, terms, tabulate, layout, where, cache):
    """(values, incidence, table or None) of block part p: the table and its representatives'
    incidence when the conditional tabulates, else the incidence of every variable."""
    values = np.ascontiguousarray(model.vars[p.family].domain.values, np.float64)
    found = tabulation(model, p.ids, terms, values, tabulate, where)
    if found is None:
        return values, incidence(model, p.ids, terms, where, "all", cache), None
    table, inc = found
    _lay_out(table, p.ids, len(values), layout)
    return values, inc, table


def table_kernel(table: Table, k: int) -> tuple[str, str | None]:
    """The name of the kernel a tabulated part runs and its generated source (None: the
    hand-written `numba_kernels.tabled`, for blankets wider than MAX_UNROLL)."""
    width = table.rel.shape[1]
    if width > MAX_UNROLL or k > MAX_UNROLL:
        return "tabled", None
    how = "tabled, runs" if table.runs is not None else "tabled"
    return f"{how}, {width} neighbours x {k} values", tabled_source(width, k,
                                                                  table.runs is not None)


def table_kernels_text(model) -> str:
    """The table kernels the model's tabulated parts run, for `ebmlang code`: they depend on the
    ground blankets (width, domain size, runs), so the parts' tables are built (numpy only:
    nothing is compiled or loaded)."""
    ps, where, used = plans(model), None, {}
    for block in model.graph.blocks:
        for p in block.parts:
            if ps[p.family].reason is not None:
                continue
            where = scratch(model) if where is None else where
            values, _, table = _part_arrays(model, p, ps[p.family].terms, None, "auto", where, {})
            if table is not None:
                name, source = table_kernel(table, len(values))
                label = block.label if len(block.parts) == 1 else f"{block.label}: {p.family}"
                used.setdefault((name, source), []).append(label)
    out = []
    for (name, source), labels in used.items():
        out.append(f"\n\n# {'-' * 30} {name} ({', '.join(labels)})\n")
        out.append(source or "# ebmlang.backends.numba_kernels.tabled (hand-written, not generated)\n")
    if out:
        out.insert(0, f"\n\n# {'-' * 70} table kernels\n# the tabulated parts' updates; "
                      "consecutive blocks that run one kernel by runs are swept in one call")
    return "".join(out)


def _lay_out(table: Table, ids: np.ndarray, k: int, layout: str) -> None:
    """Runs for the kernel when the layout asks for them and they are long enough."""
    if layout not in ("auto", "runs", "stream"):
        raise ValueError(f"layout {layout!r}: auto, runs or stream")
    if table.rel.shape[1] > MAX_UNROLL or k > MAX_UNROLL or layout == "stream":
        return
    most = len(ids) if layout == "runs" else len(ids) // MIN_RUN
    table.runs = runs(ids, table.pat, most)
    if table.runs is not None:
        table.pat = None


# ---------------------------------------------------------------- blocks in one kernel call

@dataclass
class FusedBlocks:
    """Consecutive blocks of one part each, all updated by the same kernel by runs, swept in
    one call (one dispatch and one seeding instead of one per block: a sixth of a 64 x 64
    Ising sweep). Their runs, patterns and tables are stacked; each member's cdf is a view of
    the stacked one, so refreshing a member's table refreshes the sweep's."""

    members: list
    args: tuple
    size: int
    blocks: list = field(init=False)          # [[member], ...], as the sweep's parts hold them

    def __post_init__(self):
        self.blocks = [[p] for p in self.members]

    def update(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
               parallel: bool | None = None) -> None:
        """The members' updates in order, in place: the same chain as updating each in turn."""
        for p in self.members:
            p.table.refresh(p._build, theta, p.values, p.inc)
        chains = x.shape[0]
        if parallel is None:
            parallel = chains > 1 and chains * self.size >= PARALLEL_WORK
        fn = self.members[0]._fns[parallel]
        fn(x, theta, seed_words(rng, chains), *self.args)


def _stack(members: list) -> FusedBlocks:
    runs, rel, coef, cdf = [], [], [], []
    patterns = entries = 0
    for p in members:
        r, _values, prel, pcoef, pcdf = p._args
        runs.append(r + np.array([0, 0, 0, patterns]))
        rel.append(prel + np.eye(1, prel.shape[1], prel.shape[1] - 1, np.int64) * entries)
        coef.append(pcoef)
        cdf.append(pcdf)
        patterns, entries = patterns + len(prel), entries + len(pcdf)
    stacked = np.concatenate(cdf)
    for p, start in zip(members, np.cumsum([0] + [len(c) for c in cdf])):
        p.table.cdf = stacked[start:start + len(p.table.cdf)]
        p._args = p._args[:-1] + (p.table.cdf,)
    args = (np.vstack(runs), members[0].values, np.vstack(rel), np.vstack(coef), stacked)
    return FusedBlocks(members, args, sum(len(p.ids) for p in members))


def _fuse_runs(blocks: list[list]) -> None:
    """Fuse every maximal sequence of two or more blocks whose single part runs the same
    kernel by runs on the same values."""
    def key(block):
        p = block[0] if len(block) == 1 else None
        if isinstance(p, CompiledPart) and p.table is not None and p.table.runs is not None:
            return p.kernel, p.values.tobytes()
        return None
    b = 0
    while b < len(blocks):
        e = b + 1
        while key(blocks[b]) is not None and e < len(blocks) and key(blocks[e]) == key(blocks[b]):
            e += 1
        if e - b > 1:
            fused = _stack([block[0] for block in blocks[b:e]])
            for p in fused.members:
                p.fused = fused
        b = e


def _fused_at(parts: list[list], b: int) -> FusedBlocks | None:
    """The fused sweep that starts at block b, when blocks b, b + 1, ... are its members (a
    caller may have swapped parts, e.g. fit's einsum parts)."""
    fused = getattr(parts[b][0], "fused", None) if parts[b] else None
    if fused is None or parts[b:b + len(fused.blocks)] != fused.blocks:   # by identity
        return None
    return fused


def gibbs_step(parts: list[list], x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
               clamp: np.ndarray | None = None) -> np.ndarray:
    """`runtime.gibbs_step` over a mix of compiled and numpy parts: compiled parts update x in
    place (no part of a block reads another's variables), numpy parts from the same state;
    fused blocks in one call, unless some variables are clamped."""
    b = 0
    while b < len(parts):
        fused = _fused_at(parts, b) if clamp is None else None
        if fused is not None:
            fused.update(x, theta, rng)
            b += len(fused.members)
            continue
        block = parts[b]
        b += 1
        new = []
        for part in block:
            if isinstance(part, CompiledPart):
                part.update(x, theta, rng)
            else:
                new.append((part.ids, per_group_values(UPDATES[part.method], part, x, theta, rng)))
        write_block(x, new, block, clamp)
    return x
