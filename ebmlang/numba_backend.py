"""The compiled backend: the generated numba module (see `numba_codegen`), cached on disk by
content, and the ground arrays its kernels loop over.

For a block part of a compiled family, `CompiledPart` holds, built once with numpy from the
terms' read ids: per term, CSR incidence arrays (for each variable of the part, the instances
that read it and a bit mask of which reads hit it), and the ids of each variable's neighbours (the
other reads of those instances, in the same order). When every neighbour has a finite domain and
no param differs between instances, the conditional depends only on the neighbours' values: the
variables are grouped by blanket signature (the sequence of terms and hit masks) and the
conditional is tabulated per signature and rebuilt only when the params change.

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

from .numba_codegen import generate_numba, plans, term_sig
from .runtime import UPDATES

MAX_TABLE = 1 << 16       # table entries (configurations x values) per part
MIN_TABLE = 1024          # always tabulate below this many configurations


# ---------------------------------------------------------------- cache

def cache_dir() -> Path:
    """Where generated modules and numba's compiled code live: $EBMLANG_CACHE or
    ~/.cache/ebmlang."""
    env = os.environ.get("EBMLANG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ebmlang"


def cache_key(source: str) -> str:
    """sha256 of the generated text, the helpers it imports, and the versions that compile it."""
    import numba

    from . import __version__, numba_kernels
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


# ---------------------------------------------------------------- ground arrays

@dataclass
class Incidence:
    """For one part: per term (ptr, inst, hit, pos, idx), and each variable's neighbours."""

    terms: tuple
    nb_ptr: np.ndarray            # (m + 1,) offsets into nb_ids
    nb_ids: np.ndarray            # state ids of the other reads, term by term, instance by instance
    hits: list                    # per term: (ptr, hit), for blanket signatures


def _term_incidence(t, where: np.ndarray, m: int):
    """CSR of the term's instances by the variable of the part they read, and, flattened in the
    same order, the ids of their other reads and which variable each belongs to."""
    ids = np.stack([r.ids for r in t.reads])                   # (R, n)
    pos = where[ids]
    hitm = pos >= 0
    rows = np.flatnonzero(hitm.any(axis=0))
    target = pos[:, rows].max(axis=0)
    order = np.argsort(target, kind="stable")
    inst, target = rows[order], target[order]
    hitm = hitm[:, inst]
    hit = (hitm.astype(np.int64) << np.arange(len(t.reads), dtype=np.int64)[:, None]).sum(axis=0)
    ptr = np.zeros(m + 1, np.int64)
    np.cumsum(np.bincount(target, minlength=m), out=ptr[1:])
    other = ~hitm.T                                            # (nnz, R), entry-major
    nb = ids[:, inst].T[other]
    owner = np.repeat(target, other.sum(axis=1))
    return ptr, inst, hit, nb, owner


def _term_arrays(model, t, cache: dict):
    """(pos, idx): theta positions of the param reads and, if the body uses them, the bound
    indices, per instance; shared by every part."""
    key = (t.owner, t.number)
    if key not in cache:
        _, sig = term_sig(t, model.checked.consts)
        pos = np.stack([p.pos for p in t.preads]).astype(np.int64) if t.preads \
            else np.zeros((0, 0), np.int64)
        idx = t.space.tuples[:, :sig.n_index].T.astype(np.float64) if sig.n_index \
            else np.zeros((0, 0))
        cache[key] = (np.ascontiguousarray(pos), np.ascontiguousarray(idx))
    return cache[key]


def incidence(model, ids: np.ndarray, terms: tuple, cache: dict) -> Incidence:
    m = len(ids)
    where = np.full(model.checked.n_state, -1, np.int64)
    where[ids] = np.arange(m)
    tuples, hits, nbs, owners = [], [], [], []
    for k in terms:
        t = model.terms[k]
        ptr, inst, hit, nb, owner = _term_incidence(t, where, m)
        tuples.append((ptr, inst, hit) + _term_arrays(model, t, cache))
        hits.append((ptr, hit))
        nbs.append(nb)
        owners.append(owner)
    counts = [np.bincount(o, minlength=m) for o in owners]
    nb_ptr = np.zeros(m + 1, np.int64)
    np.cumsum(sum(counts), out=nb_ptr[1:])
    nb_ids = np.empty(nb_ptr[-1], np.int64)
    before = nb_ptr[:-1].copy()                                # where each term's block starts
    for nb, owner, c in zip(nbs, owners, counts):
        start = np.cumsum(c) - c                               # the owner's first entry in nb
        nb_ids[before[owner] + np.arange(len(nb)) - start[owner]] = nb
        before += c
    return Incidence(tuple(tuples), nb_ptr, nb_ids, hits)


# ---------------------------------------------------------------- tables

@dataclass
class Table:
    """The conditional per blanket signature g and neighbour configuration (a mixed-radix code
    of the neighbours' value positions): cumulative probabilities cdf[base[g] + code * K + k]."""

    nb_dom: np.ndarray            # per neighbour entry: its domain (row of dom_vals)
    dom_vals: np.ndarray          # (domains, most values) padded
    dom_k: np.ndarray             # values per domain
    sig: np.ndarray               # (m,) signature of each variable
    reps: np.ndarray              # a variable of each signature
    base: np.ndarray              # (signatures + 1,) offsets into cdf
    cdf: np.ndarray
    theta: np.ndarray | None = None   # the params cdf holds the conditional for

    def refresh(self, build, theta, values, inc: Incidence) -> None:
        if self.theta is None or not np.array_equal(self.theta, theta):
            build(theta, values, inc.nb_ptr, self.nb_dom, self.dom_vals, self.dom_k, self.reps,
                  self.base, self.cdf, inc.terms)
            self.theta = theta.copy()


def _signatures(hits: list, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each variable's blanket signature (its terms' hit masks, instance by instance) as a
    group number, and one variable of each group."""
    cols = []
    for ptr, hit in hits:
        c = np.diff(ptr)
        owner = np.repeat(np.arange(m), c)
        grid = np.zeros((m, int(c.max()) if m else 0), np.int64)
        grid[owner, np.arange(len(hit)) - ptr[owner]] = hit + 1
        cols.append(grid)
    grid = np.concatenate(cols, axis=1)
    bits = int(grid.max()).bit_length() if grid.size else 0
    if bits * grid.shape[1] <= 63:
        key = (grid << (bits * np.arange(grid.shape[1], dtype=np.int64))).sum(axis=1)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(grid, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), first.astype(np.int64)


def _static_params(inc: Incidence) -> bool:
    """No term uses its bound indices and every param read is the same for all instances."""
    for ptr, inst, hit, pos, idx in inc.terms:
        if idx.size or (pos.size and len(inst) and np.any(pos[:, inst] != pos[:, inst[:1]])):
            return False
    return True


def tabulation(model, inc: Incidence, values, tabulate) -> Table | None:
    """The table layout for a part, or None when the conditional is not a function of finite
    neighbour values alone, or (tabulate None: automatic) the table would be too large."""
    m, K = len(inc.nb_ptr) - 1, len(values)
    if tabulate is False or m == 0 or not _static_params(inc):
        return None
    fams = list(model.vars.values())
    used, nb_dom = np.unique(model.graph.family_of[inc.nb_ids], return_inverse=True)
    doms = [fams[f].domain.values for f in used]
    if any(d is None for d in doms):
        return None
    dom_k = np.array([len(d) for d in doms], np.int64)
    dom_vals = np.zeros((len(doms), int(dom_k.max()) if len(doms) else 1))
    for d, vals in enumerate(doms):
        dom_vals[d, :len(vals)] = vals
    sig, reps = _signatures(inc.hits, m)
    codes = []
    for a in reps:
        n = 1
        for d in nb_dom[inc.nb_ptr[a]:inc.nb_ptr[a + 1]]:
            n *= int(dom_k[d])
            if n * K > MAX_TABLE:
                return None
        codes.append(n)
    if sum(codes) * K > MAX_TABLE or (tabulate is None and sum(codes) > max(m, MIN_TABLE)):
        return None
    base = np.concatenate([[0], np.cumsum(np.array(codes, np.int64) * K)]).astype(np.int64)
    return Table(nb_dom.reshape(-1).astype(np.int64), dom_vals, dom_k, sig, reps, base,
                 np.zeros(int(base[-1])))


# ---------------------------------------------------------------- parts and the sweep

PARALLEL_WORK = 1 << 14    # chains x variables of a call worth spreading over threads


@dataclass
class CompiledPart:
    """A block part updated by the generated kernels, in place."""

    family: str
    ids: np.ndarray
    values: np.ndarray
    inc: Incidence
    module: object
    table: Table | None = None
    method: str = "gibbs"
    accepted: int = 0
    proposed: int = 0
    kernel: str = field(init=False)

    def __post_init__(self):
        self.kernel = "tabled" if self.table is not None else f"gibbs_{self.family}"

    def update(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
               parallel: bool | None = None) -> None:
        chains = x.shape[0]
        seeds = rng.integers(0, 2**64, size=(chains, 2), dtype=np.uint64, endpoint=False)
        if parallel is None:
            parallel = chains > 1 and chains * len(self.ids) >= PARALLEL_WORK
        mod, inc = self.module, self.inc
        if self.table is not None:
            t = self.table
            t.refresh(getattr(mod, f"table_{self.family}"), theta, self.values, inc)
            from . import numba_kernels as nk
            fn = nk.ptabled if parallel else nk.tabled
            fn(x, self.ids, self.values, inc.nb_ptr, inc.nb_ids, t.nb_dom, t.dom_vals, t.dom_k,
               t.sig, t.base, t.cdf, seeds)
        else:
            fn = getattr(mod, ("pgibbs_" if parallel else "gibbs_") + self.family)
            fn(x, theta, self.ids, self.values, inc.nb_ptr, inc.nb_ids, seeds, inc.terms)


def compiled_parts(model, tabulate: bool | None = None) -> list[list]:
    """Every block's parts: a CompiledPart where the family compiles, else the numpy
    PartKernel of `model.parts()` (shared, so MH scales and counts are the same objects).
    `tabulate`: None decides by table size, True whenever possible, False never."""
    ps = plans(model)
    module = numpy_parts = None
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
            values = np.ascontiguousarray(model.vars[p.family].domain.values, np.float64)
            inc = incidence(model, p.ids, plan.terms, cache)
            table = tabulation(model, inc, values, tabulate)
            row.append(CompiledPart(p.family, p.ids.astype(np.int64), values, inc, module, table))
        out.append(row)
    return out


def gibbs_step(parts: list[list], x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
               clamp: np.ndarray | None = None) -> np.ndarray:
    """`runtime.gibbs_step` over a mix of compiled and numpy parts: compiled parts update x in
    place (no part of a block reads another's variables), numpy parts from the same state."""
    for block in parts:
        new = []
        for part in block:
            if isinstance(part, CompiledPart):
                part.update(x, theta, rng)
            else:
                new.append((part.ids, UPDATES[part.method](part, x, theta, rng)))
        for ids, vals in new:
            x[:, ids] = vals
        if clamp is not None:
            for part in block:
                fixed = clamp[:, part.ids]
                x[:, part.ids] = np.where(np.isnan(fixed), x[:, part.ids], fixed)
    return x
