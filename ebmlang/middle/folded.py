"""Index form for terms with sums in nonlinear position (`softplus(c[j] + sum(i) W[i, j] * v[i])`):
the contribution of a read inside such a sum to its family's conditional, and the derivatives
in the params, derived from the term's folded body (`Term.folded`, the sum not written out)
once per family, never per ground read.

For the read `v[i]` under `sum(i in 0..N-1)`, solving `i = a` for the family's own index `a`
splits the sum into the summand that reads the variable itself and the rest:
`sum(i) B(i) = B(a) + sum(i' in 0..N-1 where i' != a) B(i')`, which is exact because an affine
read is one-to-one. The factor's own indices are solved as for any read (`solve.assemble`).
A read this does not cover (under two nested sums, read twice, a set binding) returns None, and
the caller uses the written-out body instead: longer, never wrong.

sympy sees only expressions built here from the checked AST: user text is never sympified.
"""

from __future__ import annotations

from types import SimpleNamespace

import sympy as sp

from ebmlang.frontend import ast as A
from ebmlang.middle.forms import Ind, ToSympy, truth
from ebmlang.middle.solve import Contribution, _affine, _solve, _uses, assemble
from ebmlang.middle.split import occurrences


def folded_read(term, family: str):
    """(read, its one enclosing sum) when the folded body reads `family` exactly once, under
    exactly one sum; else None."""
    if term.folded is None:
        return None
    occ = occurrences(term.folded, {family})
    if len(occ) != 1 or len(occ[0][1]) != 1:
        return None
    read, (node,) = occ[0]
    if not all(isinstance(b, (A.RangeBinding, A.NamedBinding)) for b in node.index.bindings):
        return None
    return read, node


def _limits(model, conv, node: A.Sum, names: dict):
    out = []
    for b in node.index.bindings:
        if isinstance(b, A.RangeBinding):
            out.append((names[b.name], conv(b.lo), conv(b.hi)))
        else:
            r = model.ranges.get(b.target)
            if r is None:
                return None
            out.append((names[b.name], sp.Integer(r.lo), sp.Integer(r.hi)))
    return out


class _SumsToSympy(ToSympy):
    """ToSympy that also converts sums: `target` into its own summand plus the rest, any other
    sum into a sympy Sum over fresh symbols (primed where a name is taken)."""

    def __init__(self, model, names, replace, taken, target=None, split=None):
        super().__init__(model, names, replace)
        self.taken, self.target, self.split = taken, target, split

    def bound(self, node: A.Sum) -> dict:
        return {n: sp.Symbol(n + "'" if n in self.taken else n, integer=True)
                for n in node.index.names()}

    def __call__(self, e):
        if not isinstance(e, A.Sum):
            return super().__call__(e)
        if e is self.target:
            return self.split(self, e)
        syms = self.bound(e)
        inner = _SumsToSympy(self.model, {**self.names, **syms}, self.replace, self.taken)
        limits = _limits(self.model, inner, e, syms)
        if limits is None:
            raise _NotFolded
        body = inner(e.body)
        if e.index.where is not None:
            body = Ind(truth(inner(e.index.where))) * body
        return sp.Sum(body, *limits)


class _NotFolded(Exception):
    """A sum the index form does not cover (a set binding): use the written-out body."""


def folded_contribution(model, fam, term, own, value) -> Contribution | None:
    """The contribution of `term`'s one read of `fam` under a nonlinear sum, in index form
    (see the module docstring), or None."""
    found = folded_read(term, fam.name)
    if found is None:
        return None
    read, node = found
    outer = term.index.bindings if term.index is not None else ()
    view = SimpleNamespace(names=term.names + node.index.names(),
                           index=A.Index(outer + node.index.bindings,
                                         term.index.where if term.index is not None else None))
    tsyms = {n: sp.Symbol(f"{n}__t", integer=True) for n in view.names}
    taken = {s.name for s in own} | set(term.names)
    conv = _SumsToSympy(model, dict(tsyms), {read: value}, taken)
    sol = _solve(view, read, own, conv)
    bound = node.index.names()
    if sol is None or any(b not in sol.subs for b in bound):
        return None
    if node.index.where is not None:
        sol.checks.append(truth(conv(node.index.where)))

    def split(c, e):
        own_part = c(e.body)    # the bound names are the solution: tsyms -> sol.subs later
        syms = c.bound(e)
        rest = _SumsToSympy(model, {**c.names, **syms}, {}, taken)
        limits = _limits(model, rest, e, syms)
        if limits is None:
            raise _NotFolded
        body = rest(e.body)
        conds = [sp.Ne(syms[b], tsyms[b]) for b in bound]
        if e.index.where is not None:
            conds.append(truth(rest(e.index.where)))
        return own_part + sp.Sum(Ind(sp.And(*conds)) * body, *limits)

    conv.target, conv.split = node, split
    try:
        return assemble(model, fam, view, conv, sol, tsyms, own, lambda: conv(term.folded))
    except _NotFolded:
        return None


# ---------------------------------------------------------------- dF/dparam in index form

def folded_statistics(model, term) -> list[tuple[str, sp.Expr]] | None:
    """(param family, d(body)/d(param read)) for each param read of `term`'s folded body, in
    index form: for `W[i, j]` under `softplus(c[j] + sum(i) W[i, j] * v[i])`, the chain rule
    g'(sum) * d(summand)/dW[i, j] = v[i] * sigmoid(c[j] + sum(i') W[i', j] * v[i']). None when
    a param is read twice or under nested sums (the caller uses the written-out body)."""
    params = set(model.params)
    occ = occurrences(term.folded, params)
    if len({r for r, _ in occ}) != len(occ) or any(len(s) > 1 for _, s in occ):
        return None
    names = {n: sp.Symbol(n, integer=True) for n in term.names}
    taken = set(term.names) | {n for _, s in occ for node in s for n in node.index.names()}
    out = []
    try:
        for read, sums in occ:
            out.append((read.name, _statistic(model, term, read, sums, names, taken)))
    except _NotFolded:
        return None
    return out


def _statistic(model, term, read, sums, names, taken) -> sp.Expr:
    p = sp.Dummy("p")
    if not sums:
        conv = _SumsToSympy(model, dict(names), {read: p}, taken)
        plain = _SumsToSympy(model, dict(names), {}, taken)
        return sp.diff(conv(term.folded), p).xreplace({p: plain(read)})
    node, = sums
    z = sp.Dummy("z")
    outer = _SumsToSympy(model, dict(names), {}, taken, node, lambda c, e: z)
    dz = sp.diff(outer(term.folded), z)
    whole = _SumsToSympy(model, dict(names), {}, taken)(node)
    own = {n: sp.Symbol(n, integer=True) for n in node.index.names()}
    inner = _SumsToSympy(model, {**names, **own}, {read: p}, set(term.names))
    plain = _SumsToSympy(model, {**names, **own}, {}, set(term.names))
    d = sp.diff(inner(node.body), p).xreplace({p: plain(read)})
    if node.index.where is not None:
        d = Ind(truth(inner(node.index.where))) * d
    args = read.args if isinstance(read, A.Indexed) else ()
    solved = [_affine(a, set(own)) for a in args]
    used = {x[0] for x in solved if x is not None}
    if any(x is None and _uses(a, set(own)) for x, a in zip(solved, args)):
        raise _NotFolded        # W[i % 2]: several summands share one param, not in index form
    missing = [n for n in own if n not in used]
    if missing:                 # a param every summand reads (`w` in sum(i) w * v[i]): summed
        lims = _limits(model, plain, SimpleNamespace(index=A.Index(tuple(
            b for b in node.index.bindings if b.name in missing))), own)
        d = sp.Sum(d, *lims)
    return dz.xreplace({z: whole}) * d
