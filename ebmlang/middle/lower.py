"""Phase 3: factors and stats -> terms with ground read tables.

A factor whose expression is a sum over indices is split into one term per summand (with the
sum's bindings added to the term's index; see `split`), so `J * sum(i) x[i] * x[i+1]` has the
same Markov blankets as a factor indexed by i. Stats used inside factors are inlined first. Each
term then has an index space of instances and, for each distinct read of a variable or a param,
the ground position it reads per instance; every read is range-checked here, at compile time,
and so is every part of the expression that reads no variable or param (it must be finite).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ebmlang.frontend import ast as A
from ebmlang.frontend.check import CheckedModel, VarFamily, explain_overrides
from ebmlang.errors import UserError, count, did_you_mean
from ebmlang.frontend.exprs import FUNCTIONS, as_int_array, eval_static, fold
from ebmlang.frontend.space import Space, build_space
from ebmlang.middle.split import (
    added,
    binding_names,
    children,
    expand_sums,
    has_sum,
    inline_stats,
    map_children,
    merge_pieces,
    split,
    substitute,
)


@dataclass
class VarRead:
    family: str
    node: A.Indexed | A.Name
    ids: np.ndarray            # (n,) global state position per instance (int32 when it fits)


@dataclass
class ParamRead:
    family: str
    node: A.Indexed | A.Name
    pos: np.ndarray            # (n,) theta position per instance (the static part)
    dynamic: tuple = ()        # ((arg expr, stride, lo), ...) for indices read from variables


@dataclass
class Term:
    owner: str                 # the factor or stat this term belongs to
    number: int                # term number within its owner
    sign: float                # +1 for factor and stat, -1 for energy
    names: tuple[str, ...]     # bound indices: the owner's, then the split sums'
    n_outer: int               # how many of `names` are the owner's own
    space: Space               # one row per instance
    body: A.Expr
    reads: list[VarRead] = field(default_factory=list)
    preads: list[ParamRead] = field(default_factory=list)
    outer_rows: np.ndarray | None = None   # row of each instance in the owner's space; None: the same
    index: A.Index | None = None           # the bindings that enumerate the instances
    folded: A.Expr | None = None           # the body with its nonlinear sums not written out

    @property
    def size(self) -> int:
        return self.space.size

    def label(self, row: int) -> str:
        vals = self.space.row(row)
        outer = ", ".join(str(int(v)) for v in vals[: self.n_outer])
        text = self.owner + (f"[{outer}]" if self.n_outer else "")
        inner = [f"{n} = {int(v)}" for n, v in zip(self.names[self.n_outer:], vals[self.n_outer:])]
        return text + (f" (term with {', '.join(inner)})" if inner else "")


# ---------------------------------------------------------------- grounding the reads

MAX_DYNAMIC = 100_000  # value combinations checked for a param index read from variables


class _Reads:
    """Collects the distinct reads of one term and grounds them per instance."""

    def __init__(self, model: CheckedModel, term: Term, cols: dict[str, np.ndarray]):
        self.model, self.term, self.cols = model, term, cols
        self.env = model.env("in an index").bind(**cols)
        self.vars: dict[A.Expr, int] = {}
        self.params: dict[A.Expr, int] = {}

    def visit(self, e: A.Expr) -> None:
        m = self.model
        if isinstance(e, A.Name):
            n = e.name
            if n in self.cols or n in m.consts:
                return
            if n in m.vars:
                self._var(e, m.vars[n], ())
            elif n in m.params:
                self._param(e, ())
            else:
                self._bad_name(e)
        elif isinstance(e, A.Indexed):
            if e.name in m.vars:
                self._var(e, m.vars[e.name], e.args)
            elif e.name in m.params:
                for a in e.args:
                    self.visit(a)
                self._param(e, e.args)
            else:
                self._bad_name(e)
        elif isinstance(e, A.Call):
            if e.func not in FUNCTIONS:
                hint = " (normal and uniform are for param initial values)" \
                    if e.func in ("normal", "uniform") else did_you_mean(e.func, FUNCTIONS)
                raise UserError(f"unknown function '{e.func}'{hint}", e.span)
            arity = FUNCTIONS[e.func][1]
            if len(e.args) != arity:
                raise UserError(f"{e.func} takes {arity} argument{'s' * (arity > 1)}, got "
                                f"{len(e.args)}", e.span)
            for a in e.args:
                self.visit(a)
        else:
            for c in children(e):
                self.visit(c)

    def _bad_name(self, e):
        kind = self.model.kinds.get(e.name)
        if kind is not None:
            raise UserError(f"a {kind} ('{e.name}') cannot be used in an expression", e.span)
        known = list(self.cols) + list(self.model.consts) + list(self.model.vars) + \
            list(self.model.params)
        raise UserError(f"unknown name '{e.name}'{did_you_mean(e.name, known)}", e.span)

    def _index_cols(self, e, family_space: Space, args, what) -> list[np.ndarray]:
        if len(args) != family_space.ndim:
            want = family_space.ndim
            if want == 0:
                raise UserError(f"'{e.name}' is a scalar and takes no index", e.span)
            raise UserError(f"'{e.name}' has {count(want, 'index', 'indices')}"
                            f" ({family_space.describe()}), but {len(args)} "
                            f"{'are' if len(args) != 1 else 'is'} given", e.span)
        n = self.term.size
        return [np.broadcast_to(as_int_array(eval_static(a, self.env), a, "an index",
                                             self.instance), (n,)) for a in args]

    def _out_of_range(self, e, fam_name, space, cols, rows, what):
        bad = int(np.argmax(rows < 0))
        idx = ", ".join(str(int(c[bad])) for c in cols)
        raise UserError(f"{self.instance(bad)} reads {fam_name}[{idx}], "
                        f"outside the {what} {fam_name}[{space.describe()}]", e.span)

    def term_kind(self) -> str:
        return "stat" if self.term.owner in self.model.stats else "factor"

    def instance(self, row: int) -> str:
        """`factor f[2]`: one instance of the term, for messages."""
        return f"{self.term_kind()} {self.term.label(row)}"

    def _var(self, e, fam: VarFamily, args) -> None:
        if e in self.vars:
            return
        for a in args:
            used = {n for n in _names_in(a) if n in self.model.vars}
            if used:
                raise UserError(f"a variable cannot index another variable ('{sorted(used)[0]}' "
                                f"inside {fam.name}[...]); only params may be indexed by variables",
                                a.span)
        if not args and fam.space.ndim:
            raise UserError(f"'{fam.name}' is an array ({fam.space.describe()}); index it: "
                            f"{fam.name}[...]", e.span)
        cols = self._index_cols(e, fam.space, args, "variable")
        rows = fam.space.lookup(cols) if args else np.zeros(self.term.size, np.int64)
        if np.any(rows < 0):
            self._out_of_range(e, fam.name, fam.space, cols, rows, "variable")
        self.vars[e] = len(self.term.reads)
        self.term.reads.append(VarRead(fam.name, e, _uniform((fam.offset + rows).astype(
            id_dtype(self.model.n_state)))))

    def _param(self, e, args) -> None:
        if e in self.params:
            return
        p = self.model.params[e.name]
        if not args and p.space.ndim:
            raise UserError(f"param '{p.name}' is an array ({p.space.describe()}); index it: "
                            f"{p.name}[...]", e.span)
        if len(args) != p.space.ndim:
            self._index_cols(e, p.space, args, "param")
        dyn_axes = [k for k, a in enumerate(args)
                    if any(n in self.model.vars for n in _names_in(a))]
        static = [a if k not in dyn_axes else A.Num(float(p.space.lo[k]), True)
                  for k, a in enumerate(args)]
        cols = self._index_cols(e, p.space, static, "param") if args else []
        rows = p.space.lookup(cols) if args else np.zeros(self.term.size, np.int64)
        if np.any(rows < 0):
            self._out_of_range(e, p.name, p.space, cols, rows, "param")
        pos = p.offset + p.space.store[rows]
        dynamic = ()
        if dyn_axes:
            if not p.space.dense:
                raise UserError(f"param '{p.name}' is indexed by a variable, so its index must be "
                                "plain ranges (no sets or where)", e.span)
            strides = np.cumprod((1,) + p.space.shape[::-1])[::-1][1:]
            dynamic = tuple((args[k], int(strides[k]), int(p.space.lo[k])) for k in dyn_axes)
            for k in dyn_axes:
                self._check_dynamic(e, args[k], p, k)
        self.params[e] = len(self.term.preads)
        self.term.preads.append(ParamRead(p.name, e, _uniform(pos.astype(np.int64)), dynamic))

    def _check_dynamic(self, e, arg, p, k) -> None:
        reads = sorted({x for x in _reads_in(arg) if x.name in self.model.vars}, key=str)
        if _names_outside_reads(arg, self.model.vars) & set(self.cols):
            raise UserError("an index read from a variable may not also use bound indices",
                            arg.span)
        doms = [self.model.vars[r.name].domain for r in reads]
        if any(not d.finite for d in doms):
            raise UserError("a param may be indexed only by variables with finite domains",
                            arg.span)
        if int(np.prod([d.size for d in doms])) > MAX_DYNAMIC:
            raise UserError("too many value combinations to check this param index", arg.span)
        grids = np.meshgrid(*[d.values for d in doms], indexing="ij")
        mapping = {r: A.Name(f"__v{i}") for i, r in enumerate(reads)}
        env = self.model.env("in an index").bind(**{f"__v{i}": g.ravel() for i, g in enumerate(grids)})
        vals = np.broadcast_to(np.asarray(eval_static(_replace(arg, mapping), env)), grids[0].ravel().shape)
        vals = as_int_array(vals, arg, "an index read from a variable")
        lo, hi = int(p.space.lo[k]), int(p.space.hi[k])
        if vals.min() < lo or vals.max() > hi:
            v = int(vals[(vals < lo) | (vals > hi)][0])
            why = ", ".join(dict.fromkeys(f"{r.name} is {d.text}" for r, d in zip(reads, doms)))
            raise UserError(f"{self.term_kind()} {self.term.owner} can read {p.name} at index {v}"
                            f" (position {k + 1}), outside {p.name}[{p.space.describe()}], since "
                            f"{why}", arg.span)


def _names_in(e) -> set[str]:
    out = set()
    if isinstance(e, (A.Name, A.Indexed)):
        out.add(e.name)
    for c in children(e):
        out |= _names_in(c)
    return out


def _names_outside_reads(e, variables) -> set[str]:
    if isinstance(e, (A.Name, A.Indexed)) and e.name in variables:
        return set()
    out = {e.name} if isinstance(e, A.Name) else set()
    for c in children(e):
        out |= _names_outside_reads(c, variables)
    return out


def _reads_in(e) -> list:
    out = [e] if isinstance(e, (A.Indexed, A.Name)) else []
    for c in children(e):
        out += _reads_in(c)
    return out


def _replace(e, mapping):
    if e in mapping:
        return mapping[e]
    return map_children(e, lambda c: _replace(c, mapping))


def _and(conds: list[A.Expr]) -> A.Expr | None:
    out = None
    for c in conds:
        out = c if out is None else A.BinOp("and", out, c, span=c.span)
    return out


def lower(model: CheckedModel, owner: str, kind: str, index: A.Index | None, expr: A.Expr,
          outer: Space) -> list[Term]:
    """The terms of one factor, energy or stat, with every read grounded and checked."""
    try:
        path = (owner,) if kind == "stat" else ()
        inlined = inline_stats(expr, model, path)
        pieces = merge_pieces(split(inlined, _Expander(model)))
        # the same split with sums in nonlinear position kept: the index form the conditionals
        # and the learning statistics print (the pieces come in the same order)
        folded = merge_pieces(split(inlined, lambda node: node)) if has_sum(inlined) else pieces
        terms = [_term(model, owner, kind, index, outer, number, piece)
                 for number, piece in enumerate(pieces)]
        for t, piece in zip(terms, folded):
            t.folded = piece.body if has_sum(piece.body) else None
        return [t for t in terms if t.size]  # an empty index or sum adds nothing (N = 1 chain)
    except UserError as err:
        raise explain_overrides(err, model.source, model.overrides) from None


MAX_EXPANDED = 1_000_000  # summands written out for the sums in nonlinear position of one factor


class _Expander:
    """Writes out a sum in nonlinear position (`softplus(c[j] + sum(i) W[i, j] * v[i])`) as
    one expression over its summands, its bound index replaced by each value in turn; sums
    nested in its body are written out the same way. Its range and `where` may use consts and
    the indices of enclosing written-out sums, not the factor's own indices."""

    def __init__(self, model: CheckedModel):
        self.model, self.total = model, 0

    def __call__(self, node: A.Sum) -> A.Expr:
        m = self.model
        try:
            space = build_space(node.index, m.env("in an index"), m.ranges, m.sets,
                                "a sum inside a nonlinear expression")
        except UserError as err:
            if "unknown name" not in err.message:
                raise
            raise UserError(f"{err.message}; the range and `where` of a sum inside a nonlinear "
                            "expression may use only consts and the indices of enclosing sums "
                            "inside it", err.span) from None
        self.total += space.size
        if self.total > MAX_EXPANDED:
            raise UserError(f"the sums inside nonlinear expressions of this factor have more "
                            f"than {MAX_EXPANDED} summands", node.span)
        names = node.index.names()
        terms = []
        for row in range(space.size):
            vals = space.row(row)
            body = substitute(node.body, {n: A.Num(float(v), True, span=node.span)
                                          for n, v in zip(names, vals)})
            terms.append(expand_sums(body, self))
        return added(terms, node.span)


def _check_bindings(owner: str, kind: str, outer_names, piece) -> None:
    seen = set(outer_names)
    for b in piece.bindings:
        for nm in binding_names(b):
            if nm in outer_names:
                raise UserError(f"index '{nm}' is already bound by {kind} {owner}", b.span)
            if nm in seen:
                raise UserError(f"index '{nm}' is already bound by an enclosing sum (a sum's "
                                "body extends as far right as it can: parenthesize the sum "
                                "to end it sooner)", b.span)
            seen.add(nm)


def _owner_rows(outer: Space, cols: list[np.ndarray], n: int) -> np.ndarray | None:
    """Row of each instance in the owner's space; None when that is the instance number
    itself (a term that splits no sum), so a million-instance factor stores nothing."""
    if not cols:
        return np.broadcast_to(np.zeros(1, np.int64), (n,))
    rows = outer.lookup(cols)
    return None if n == outer.size and np.array_equal(rows, np.arange(n)) else rows


def id_dtype(n: int) -> type:
    """int32 for positions below 2^31 (half the memory of a million-instance read), else int64."""
    return np.int32 if n < 2**31 else np.int64


def id_slice(ids: np.ndarray) -> slice | None:
    """The slice of the state that ids (sorted or not) read, when they are consecutive and
    increasing (a view instead of a gather), else None."""
    if len(ids) < 2 or ids.strides == (0,) or ids[-1] - ids[0] != len(ids) - 1 or \
            not np.all(np.diff(ids) == 1):
        return None
    return slice(int(ids[0]), int(ids[-1]) + 1)


def _uniform(a: np.ndarray) -> np.ndarray:
    """`a` itself, or a read-only broadcast of its one value when every entry is the same (a
    scalar param read by every instance): no memory per instance."""
    if len(a) > 1 and a[0] == a[-1] and np.all(a == a[0]):
        return np.broadcast_to(a[:1].copy(), a.shape)
    return a


def _term(model: CheckedModel, owner: str, kind: str, index: A.Index | None, outer: Space,
          number: int, piece) -> Term:
    outer_bind = index.bindings if index is not None else ()
    outer_names = index.names() if index is not None else ()
    _check_bindings(owner, kind, outer_names, piece)
    conds = ([index.where] if index is not None and index.where is not None else []) + \
        list(piece.wheres)
    full = A.Index(outer_bind + piece.bindings, _and(conds))
    space = build_space(full, model.env("in an index"), model.ranges, model.sets,
                        f"{kind} '{owner}'") if full.bindings else outer
    term = Term(owner, number, -1.0 if kind == "energy" else 1.0, full.names(),
                len(outer_names), space, piece.body, index=full if full.bindings else None)
    cols = dict(zip(term.names, space.columns()))
    term.outer_rows = _owner_rows(outer, [cols[n] for n in outer_names], space.size)
    if space.size:
        reads = _Reads(model, term, cols)
        reads.visit(piece.body)
        fold(piece.body, reads.env, reads.instance)  # constant parts: finite, no division by 0
    return term
