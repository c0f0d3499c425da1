"""Index spaces: the ground index tuples of a family, built from its `[INDEX]` bindings.

A space holds every valid index tuple as a row of an int array, in the order the bindings
enumerate them (the first binding varies slowest). Each binding is one axis of the user-facing
array shape: a range axis spans its values, a set axis has one entry per row of the set. A space
also answers lookups: which row, if any, an index tuple names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmlang.frontend import ast as A
from ebmlang.errors import UserError, did_you_mean
from ebmlang.frontend.exprs import StaticEnv, as_int_array, eval_static, free_names

MAX_GROUND = 50_000_000  # ground elements of one family; more is refused at once


@dataclass(frozen=True)
class RangeDecl:
    name: str
    lo: int
    hi: int


class Space:
    """The ground index tuples of one family or term.

    A dense space (plain ranges, no `where`: exactly the box lo..hi in C order) stores no
    tuples: its columns are computed from the row numbers when asked for, so a million-site
    lattice costs nothing until a column is needed. Other spaces store their tuples (n, d).
    """

    def __init__(self, names, tuples, shape, store, dense, text="", lo=None, size=None):
        self.names: tuple[str, ...] = names
        self.shape: tuple[int, ...] = shape     # user-facing array shape, one axis per binding
        self.dense: bool = dense                # rows are exactly the box lo..hi in C order
        self.text: str = text                   # the bindings as written, for messages
        d = len(names)
        if tuples is not None:
            size = len(tuples)
            if d and size:
                lo, hi = tuples.min(axis=0), tuples.max(axis=0)
            else:
                lo, hi = np.zeros(d, np.int64), np.full(d, -1, np.int64)
        else:
            lo = np.asarray(lo, np.int64)
            hi = lo + np.asarray(shape, np.int64) - 1
        self.lo, self.hi = lo, hi
        self._size = int(size)
        self._tuples = None if dense and d else tuples
        self._store = None if dense else store
        self._keys = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def ndim(self) -> int:
        return len(self.names)

    @property
    def tuples(self) -> np.ndarray:
        """(n, d) int64 index tuples (computed afresh for a dense space)."""
        if self._tuples is not None:
            return self._tuples
        return np.stack(self.columns(), axis=1) if self.ndim else np.zeros((self.size, 0), np.int64)

    @property
    def store(self) -> np.ndarray:
        """(n,) flat position of each row in the user-facing array."""
        return np.arange(self.size, dtype=np.int64) if self._store is None else self._store

    def columns(self, rows=None) -> list[np.ndarray]:
        """Index column k of rows `rows` (all if None), for each k."""
        if self._tuples is not None:
            sel = slice(None) if rows is None else rows
            return [self._tuples[sel, k] for k in range(self.ndim)]
        r = np.arange(self.size, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        out, stride = [], 1
        for w, l in zip(self.shape[::-1], self.lo[::-1]):
            out.append((r // stride) % w + l)
            stride *= w
        return out[::-1]

    def row(self, r: int) -> tuple[int, ...]:
        """The index tuple of row r."""
        return tuple(int(c[0]) for c in self.columns(np.array([r])))

    def _box(self):
        return tuple(int(h - l + 1) for l, h in zip(self.lo, self.hi))

    def _linear(self, cols) -> tuple[np.ndarray, np.ndarray]:
        """Linear keys of index columns within the box, and a mask of those inside it."""
        n = np.broadcast(*cols).shape if cols else ()
        inside = np.ones(n, bool)
        key = np.zeros(n, np.int64)
        for c, l, h, w in zip(cols, self.lo, self.hi, self._box()):
            c = np.broadcast_to(np.asarray(c, np.int64), n)
            inside &= (c >= l) & (c <= h)
            key = key * w + np.clip(c - l, 0, w - 1)
        return key, inside

    def lookup(self, cols: list[np.ndarray]) -> np.ndarray:
        """Row of each index tuple given as columns, -1 where the tuple is not in the space."""
        if self.ndim == 0:
            return np.zeros(np.broadcast(*cols).shape if cols else (), np.int64)
        key, inside = self._linear(cols)
        if self.dense:
            return np.where(inside, key, -1)
        if self._keys is None:
            k, _ = self._linear(self.columns())
            order = np.argsort(k, kind="stable")
            self._keys = (k[order], order)
        keys, order = self._keys
        pos = np.clip(np.searchsorted(keys, key), 0, len(keys) - 1)
        found = inside & (keys[pos] == key)
        return np.where(found, order[pos], -1)

    def label(self, row: int) -> str:
        return ", ".join(str(v) for v in self.row(row))

    def describe(self) -> str:
        return self.text or ", ".join(f"{n} in {l}..{h}" for n, l, h in zip(self.names, self.lo, self.hi))


SCALAR = Space((), np.zeros((1, 0), np.int64), (), np.zeros(1, np.int64), True)


def _check_size(total: int, node: A.Node, what: str) -> None:
    if total > MAX_GROUND:
        raise UserError(f"{what} would have {total:,} ground elements; ebmlang grounds at most "
                        f"{MAX_GROUND:,} per family (lower the sizes with --set)", node.span)


def _expand_range(cols, axes, lo, hi, node, what):
    n = len(axes)
    lo = np.broadcast_to(np.asarray(lo, np.int64), (n,))
    hi = np.broadcast_to(np.asarray(hi, np.int64), (n,))
    _check_size(int(np.maximum(hi.astype(float) - lo + 1, 0).sum()), node, what)  # no wrap
    counts = np.maximum(hi - lo + 1, 0)
    total = int(counts.sum())
    rep = np.repeat(np.arange(n), counts)
    starts = np.cumsum(counts) - counts
    new = lo[rep] + (np.arange(total) - starts[rep])
    base = int(lo.min()) if n else 0
    length = int(hi.max() - base + 1) if n and total else 0
    return [c[rep] for c in cols] + [new], np.column_stack([axes[rep], new - base]), length


def _expand_set(cols, axes, rows: np.ndarray, node, what):
    n, m = len(axes), len(rows)
    _check_size(n * m, node, what)
    rep = np.repeat(np.arange(n), m)
    tile = np.tile(np.arange(m), n)
    new_cols = [c[rep] for c in cols] + [rows[tile, k] for k in range(rows.shape[1])]
    return new_cols, np.column_stack([axes[rep], tile]), m


def _box_space(index: A.Index, env: StaticEnv, ranges: dict[str, RangeDecl], what: str,
               text: str) -> Space | None:
    """The space of plain ranges with constant bounds and no `where`, without enumerating it;
    None for any other index (it is enumerated by `build_space`)."""
    if index.where is not None:
        return None
    names, lo, shape = [], [], []
    for b in index.bindings:
        if isinstance(b, A.RangeBinding) and not free_names(b.lo) & set(names) \
                and not free_names(b.hi) & set(names) and b.name not in names \
                and b.name not in env.consts:
            a = as_int_array(eval_static(b.lo, env), b.lo, "a range bound")
            z = as_int_array(eval_static(b.hi, env), b.hi, "a range bound")
            if np.ndim(a) or np.ndim(z):
                return None
            a, z = int(a), int(z)
        elif isinstance(b, A.NamedBinding) and b.target in ranges and b.name not in names \
                and b.name not in env.consts:
            a, z = ranges[b.target].lo, ranges[b.target].hi
        else:
            return None
        if z < a:
            return None
        names.append(b.name)
        lo.append(a)
        shape.append(z - a + 1)
        _check_size(int(np.prod([float(w) for w in shape])), b, what)
    return Space(tuple(names), None, tuple(shape), None, True, text, lo=lo,
                 size=int(np.prod(shape)))


def build_space(index: A.Index | None, env: StaticEnv, ranges: dict[str, RangeDecl],
                sets: dict[str, np.ndarray], what: str, text: str = "") -> Space:
    """Enumerate the index tuples of `index` (None: a scalar)."""
    if index is None:
        return SCALAR
    box = _box_space(index, env, ranges, what, text)
    if box is not None:
        return box
    names: list[str] = []
    cols: list[np.ndarray] = []
    axes = np.zeros((1, 0), np.int64)
    shape: list[int] = []
    for b in index.bindings:
        for nm in (b.names if isinstance(b, A.TupleBinding) else (b.name,)):
            if nm in names:
                raise UserError(f"index '{nm}' is bound twice", b.span)
            if nm in env.consts:
                raise UserError(f"index '{nm}' has the name of a const", b.span)
        local = env.bind(**dict(zip(names, cols)))
        if isinstance(b, A.RangeBinding):
            lo = as_int_array(eval_static(b.lo, local), b.lo, "a range bound")
            hi = as_int_array(eval_static(b.hi, local), b.hi, "a range bound")
            cols, axes, length = _expand_range(cols, axes, lo, hi, b, what)
            names.append(b.name)
        elif isinstance(b, A.NamedBinding) and b.target in ranges:
            r = ranges[b.target]
            cols, axes, length = _expand_range(cols, axes, r.lo, r.hi, b, what)
            names.append(b.name)
        else:
            target = b.target
            if target not in sets:
                known = list(ranges) + list(sets)
                raise UserError(f"unknown range or set '{target}'{did_you_mean(target, known)}",
                                b.span)
            rows = sets[target]
            k = len(b.names) if isinstance(b, A.TupleBinding) else 1
            if rows.shape[1] != k:
                raise UserError(f"set '{target}' has {rows.shape[1]} column"
                                f"{'s' * (rows.shape[1] != 1)}, but {k} name"
                                f"{'s are' if k != 1 else ' is'} bound to it", b.span)
            cols, axes, length = _expand_set(cols, axes, rows, b, what)
            names.extend(b.names if isinstance(b, A.TupleBinding) else (b.name,))
        shape.append(length)
    tuples = np.column_stack(cols) if cols else np.zeros((1, 0), np.int64)
    all_ranges = all(not isinstance(b, A.TupleBinding) and
                     not (isinstance(b, A.NamedBinding) and b.target in sets)
                     for b in index.bindings)
    if index.where is not None:
        cond = eval_static(index.where, env.bind(**dict(zip(names, cols))))
        keep = np.broadcast_to(np.asarray(cond) != 0, (len(tuples),))
        tuples, axes = tuples[keep], axes[keep]
    store = np.ravel_multi_index(tuple(axes.T), tuple(shape)) if len(axes) else np.zeros(0, np.int64)
    dense = bool(all_ranges and len(tuples) == int(np.prod(shape)) and
                 len(tuples) > 0 and np.array_equal(store, np.arange(len(tuples))))
    return Space(tuple(names), tuples.astype(np.int64), tuple(shape), store.astype(np.int64),
                 dense, text)
