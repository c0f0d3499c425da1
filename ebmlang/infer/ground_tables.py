"""The ground factor tables of a finite model: every ground instance's log-potential as a table
over the distinct sampled variables it reads (inputs fixed at their given values), the input of
variable elimination, the clique tree, loopy BP and the stat means (`elimination`,
`cliquetree`, `bp`, `stat_means`)."""

from __future__ import annotations

import math

import numpy as np

from ebmlang.backends.numeric import ensure_shape
from ebmlang.errors import UserError

MAX_TABLE = 1 << 26       # entries of the largest table elimination produces (8 bytes each)
CHUNK = 1 << 22           # table entries evaluated per kernel call


def count_text(n: int) -> str:
    """A count for a message: exact below 10^15, else its order of magnitude (str() of a
    huge int is refused by Python)."""
    return f"{n:,}" if n < 10 ** 15 else f"about 10^{math.floor(math.log10(n))}"


def ground_factors(model, x0: np.ndarray) -> tuple[dict[tuple, np.ndarray], float]:
    """({sorted variable ids: log-potential table, axes in that order}, the constant part):
    every ground instance's log-potential over the distinct sampled variables it reads, with
    the inputs (and every other variable of no consequence) taken from the state x0 (1, n)."""
    tables: dict[tuple, np.ndarray] = {}
    const = 0.0
    for kernel in model.kernels:
        if not kernel.term.size:
            continue
        for _, key, table in term_tables(model, kernel, x0):
            if not key:
                const += float(table)
            else:
                tables[key] = tables[key] + table if key in tables else table
    return tables, float(const)


def _slots(ids: np.ndarray) -> np.ndarray:
    """For each sampled read and instance, the first read of the same ground variable."""
    m = ids.shape[0]
    slots = np.repeat(np.arange(m)[:, None], ids.shape[1], axis=1)
    for a in range(m):
        for b in range(a):
            same = (ids[a] == ids[b]) & (slots[a] == a)
            slots[a, same] = b
    return slots


def term_tables(model, kernel, x0: np.ndarray):
    """(instance row, sorted variable ids, table) of every instance of one kernel's term, as
    `ground_factors` builds them (scope () and a 0-d table when it reads no sampled variable)."""
    t = kernel.term
    sampled = [k for k, r in enumerate(t.reads) if model.vars[r.family].sampled]
    if not sampled:
        vals = _finite(kernel.values(x0, model.params.theta), t)[0]
        yield from ((r, (), np.asarray(v)) for r, v in enumerate(vals))
        return
    ids = np.stack([t.reads[k].ids for k in sampled]).astype(np.int64)
    pats, which = np.unique(_slots(ids).T, axis=0, return_inverse=True)
    for p, pattern in enumerate(pats):
        rows = np.flatnonzero(which.ravel() == p)
        yield from _pattern_tables(model, kernel, x0, sampled, ids, pattern, rows)


def _pattern_tables(model, kernel, x0, sampled, ids, pattern, rows):
    """Tables for the instances `rows` of a term whose reads coincide as `pattern` says."""
    t = kernel.term
    firsts = sorted({int(s) for s in pattern})
    domains = [model.vars[t.reads[sampled[s]].family].domain.values for s in firsts]
    shape = tuple(len(d) for d in domains)
    combos = int(np.prod(shape, dtype=object))
    if combos > MAX_TABLE:
        raise UserError(f"variable elimination: an instance of {t.owner} reads {len(firsts)} "
                        f"variables, a table of {count_text(combos)} entries (at most "
                        f"{count_text(MAX_TABLE)}): use --method ais")
    grid = np.stack([g.ravel() for g in np.meshgrid(*domains, indexing="ij")], axis=1)
    column = {s: c for c, s in enumerate(firsts)}
    step = max(1, CHUNK // combos)
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        vals = _evaluate(model, kernel, x0, sampled, pattern, column, grid, chunk)
        scope_ids = ids[firsts][:, chunk]                      # (distinct vars, instances)
        for j in range(len(chunk)):
            table = vals[:, j].reshape(shape)
            perm = np.argsort(scope_ids[:, j])
            key = tuple(int(v) for v in scope_ids[perm, j])
            yield int(chunk[j]), key, np.transpose(table, perm)


def _evaluate(model, kernel, x0, sampled, pattern, column, grid, chunk) -> np.ndarray:
    """The term's signed value for every combination (rows of grid) and instance in chunk."""
    theta = model.params.theta
    V, P, I = kernel.args(x0, theta, chunk)
    combos, n = grid.shape[0], len(chunk)
    V = [np.repeat(v, combos, axis=0) for v in V]
    for i, k in enumerate(sampled):
        V[k] = np.repeat(grid[:, column[int(pattern[i])]][:, None], n, axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = kernel.fn(V, P, I, theta)
    return _finite(kernel.term.sign * ensure_shape(out, combos, n), kernel.term)


def _finite(vals: np.ndarray, term) -> np.ndarray:
    """Values allowed in a log-potential table: finite or -inf (an impossible combination)."""
    bad = np.isnan(vals) | (vals == np.inf)
    if np.any(bad):
        raise UserError(f"variable elimination: {term.owner} is NaN or +inf for some values of "
                        "the variables it reads, so log Z is not finite")
    return vals
