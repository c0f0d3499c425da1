"""Solving a term's reads for its indices: which instance of a term touches a given variable,
and what it contributes to that variable's local log-potential (see `symbolic`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import sympy as sp

from ebmlang.frontend import ast as A
from ebmlang.frontend.exprs import ARITH, COMPARE
from ebmlang.middle.lower import Term
from ebmlang.middle.forms import Ind, IndexSum, ToSympy, truth


# ---------------------------------------------------------------- solving reads for term indices

def _binding_of(term: Term, name: str):
    for b in term.index.bindings if term.index is not None else ():
        if isinstance(b, A.TupleBinding) and name in b.names:
            return b
        if not isinstance(b, A.TupleBinding) and b.name == name:
            return b
    return None


def _affine(arg: A.Expr, names) -> tuple[str, A.Expr | None, int] | None:
    """`n`, `n + c`, `n - c` with c free of term indices: (n, c, sign of c) else None."""
    if isinstance(arg, A.Name) and arg.name in names:
        return arg.name, None, 0
    if isinstance(arg, A.BinOp) and arg.op in ("+", "-") and isinstance(arg.left, A.Name) \
            and arg.left.name in names and not _uses(arg.right, names):
        return arg.left.name, arg.right, 1 if arg.op == "+" else -1
    if isinstance(arg, A.BinOp) and arg.op == "+" and isinstance(arg.right, A.Name) \
            and arg.right.name in names and not _uses(arg.left, names):
        return arg.right.name, arg.left, 1
    return None


def _uses(e: A.Expr, names) -> bool:
    if isinstance(e, A.Name):
        return e.name in names
    if isinstance(e, A.Indexed):
        return True  # a read: not a compile-time offset
    if isinstance(e, A.BinOp):
        return _uses(e.left, names) or _uses(e.right, names)
    if isinstance(e, A.Unary):
        return _uses(e.operand, names)
    if isinstance(e, A.Call):
        return any(_uses(a, names) for a in e.args)
    return False


@dataclass
class _Solution:
    subs: dict          # term symbol -> expression in the family's index symbols
    checks: list        # conditions that must hold (sympy relationals)


def _solve(term: Term, read: A.Indexed, own: list[sp.Symbol], conv) -> _Solution | None:
    names = set(term.names)
    subs, checks = {}, []
    args = read.args if isinstance(read, A.Indexed) else ()
    for arg, a in zip(args, own):
        mod = None
        if isinstance(arg, A.BinOp) and arg.op == "%" and not _uses(arg.right, names):
            arg, mod = arg.left, arg.right
        aff = _affine(arg, names)
        if aff is None:
            if _uses(arg, names):
                return None
            checks.append(sp.Eq(conv(arg if mod is None else A.BinOp("%", arg, mod)), a))
            continue
        name, off, sign = aff
        b = _binding_of(term, name)
        if not isinstance(b, (A.RangeBinding, A.NamedBinding)) or \
                (isinstance(b, A.NamedBinding) and b.target in conv.model.sets):
            return None
        value = a - sign * conv(off) if off is not None else a
        if mod is not None:
            value = sp.Mod(value, conv(mod))
        if name in subs:
            checks.append(sp.Eq(subs[name], value))
        else:
            subs[name] = value
    return _Solution(subs, checks)


def _range_of(conv, term: Term, name: str):
    b = _binding_of(term, name)
    if isinstance(b, A.RangeBinding):
        return conv(b.lo), conv(b.hi)
    r = conv.model.ranges.get(b.target)
    return sp.Integer(r.lo), sp.Integer(r.hi)


_SYMPY_NUMPY = {
    sp.Add: ARITH["+"], sp.Mul: ARITH["*"], sp.Pow: ARITH["^"], sp.Mod: ARITH["%"],
    sp.Eq: COMPARE["=="], sp.Ne: COMPARE["!="], sp.StrictLessThan: COMPARE["<"],
    sp.LessThan: COMPARE["<="], sp.StrictGreaterThan: COMPARE[">"],
    sp.GreaterThan: COMPARE[">="], sp.And: np.logical_and, sp.Or: np.logical_or,
}


class _Unsupported(Exception):
    """A condition with a node the numpy evaluator does not know."""


def _numpy_value(e, env):
    """Evaluate a sympy condition over index arrays with numpy ufuncs (nothing is exec'd)."""
    if e.is_Symbol:
        if e not in env:
            raise _Unsupported(e)
        return env[e]
    if e is sp.true or e is sp.false:
        return bool(e)
    if e.is_Number:
        return int(e) if e.is_Integer else float(e)
    if isinstance(e, sp.Not):
        return np.logical_not(_numpy_value(e.args[0], env))
    for cls, fn in _SYMPY_NUMPY.items():
        if isinstance(e, cls):
            return reduce(fn, [_numpy_value(a, env) for a in e.args])
    raise _Unsupported(e)


def _always(cond, model, fam, own) -> bool:
    """True when `cond` holds at every ground index of the family (consts at their values)."""
    if cond is sp.true:
        return True
    consts = {sp.Symbol(k): v for k, v in model.consts.items()}
    env = dict(zip(own, fam.space.tuples.T))
    try:
        with np.errstate(all="ignore"):
            vals = _numpy_value(cond.xreplace(consts), env)
    except _Unsupported:  # a condition we cannot evaluate is kept, not dropped
        return False
    return bool(np.all(vals))


@dataclass
class Contribution:
    body: sp.Expr                 # contains the value symbol
    limits: tuple = ()            # sums over term indices the read leaves free
    cond: sp.Expr | None = None   # when the instance exists
    fallback: tuple | None = None # (Symbol naming the bindings, condition) of an IndexSum

    def at(self, fn) -> sp.Expr:
        b = fn(self.body)
        if b == 0:
            return sp.S.Zero
        if self.cond is not None:
            b = Ind(self.cond) * b
        if self.fallback is not None:
            return IndexSum(b, *self.fallback)
        return sp.Sum(b, *self.limits) if self.limits else b


def contribution(model, fam, term: Term, read, own, value) -> Contribution:
    tsyms = {n: sp.Symbol(f"{n}__t", integer=True) for n in term.names}
    conv = ToSympy(model, dict(tsyms), {read.node: value})
    sol = _solve(term, read.node, own, conv) if term.index is not None or not term.names else None
    if sol is None:
        return _fallback(model, term, read, own, value)
    found = assemble(model, fam, term, conv, sol, tsyms, own, lambda: conv(term.body))
    return found if found is not None else _fallback(model, term, read, own, value)


def assemble(model, fam, term, conv, sol: _Solution, tsyms: dict, own, body_of) -> Contribution | None:
    """The contribution of a solved read: `term` (a Term, or a view of one with more `names`
    and bindings) has `sol.subs` for some of its names; the others become sums over their
    ranges, or None when one of them cannot (a set or tuple binding). `body_of()` converts the
    body with `conv`'s symbols."""
    conds = list(sol.checks)
    display = {}
    for n in term.names:
        if n in sol.subs:
            lo, hi = _range_of(conv, term, n)
            conds += [sp.Le(lo, sol.subs[n]), sp.Le(sol.subs[n], hi)]
    limits = []
    taken = {s.name for s in own}
    for n in term.names:
        if n not in sol.subs:
            b = _binding_of(term, n)
            if isinstance(b, A.TupleBinding) or (isinstance(b, A.NamedBinding) and b.target in model.sets):
                return None
            name = n if n not in taken else n + "2"
            display[tsyms[n]] = sp.Symbol(name, integer=True)
            lo, hi = _range_of(conv, term, n)
            limits.append((display[tsyms[n]], lo, hi))
    subs = {tsyms[n]: v for n, v in sol.subs.items()}
    subs.update(display)
    limits = tuple((s, lo.xreplace(subs), hi.xreplace(subs)) for s, lo, hi in limits)
    body = body_of().xreplace(subs)
    if term.index is not None and term.index.where is not None:
        where = truth(conv(term.index.where)).xreplace(subs)
        if limits:
            body = Ind(where) * body
        else:
            conds.append(where)
    kept = [c.xreplace(subs) for c in conds]
    kept = [c for c in kept if not _always(c, model, fam, own)]
    return Contribution(body, limits, sp.And(*kept) if kept else None)


def _fallback(model, term: Term, read, own, value) -> Contribution:
    from ebmlang.frontend.printing import index_text
    names = {n: sp.Symbol(n if n not in {s.name for s in own} else n + "'", integer=True)
             for n in term.names}
    conv = ToSympy(model, names, {read.node: value})
    args = read.node.args if isinstance(read.node, A.Indexed) else ()
    cond = sp.And(*[sp.Eq(conv(a), s) for a, s in zip(args, own)])
    index = term.index
    text = index_text(A.Index(index.bindings)) if index is not None else ""
    for n, s in names.items():
        text = text.replace(n, s.name) if s.name != n else text
    if index is not None and index.where is not None:
        cond = sp.And(cond, truth(conv(index.where)))
    return Contribution(conv(term.body), (), None, (sp.Symbol(text), cond))
