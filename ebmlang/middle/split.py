"""Stats inlined and sums split: a factor's expression -> pieces, one per term.

A sum in linear position (added, subtracted, multiplied, or divided by a sum-free factor) is
distributed outward, so `J * sum(i) x[i] * x[i+1]` becomes one piece whose bindings are the
sum's: the same Markov blankets as a factor indexed by i.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ebmlang.frontend import ast as A
from ebmlang.frontend.check import CheckedModel
from ebmlang.errors import UserError, count


def substitute(e: A.Expr, mapping: dict[str, A.Expr]) -> A.Expr:
    """Replace free names by expressions (for inlining indexed stats)."""
    if not mapping:
        return e
    if isinstance(e, A.Name):
        return mapping.get(e.name, e)
    if isinstance(e, A.Sum):
        bound = set(e.index.names())
        inner = {k: v for k, v in mapping.items() if k not in bound}
        bindings = tuple(A.RangeBinding(b.name, substitute(b.lo, inner), substitute(b.hi, inner),
                                        span=b.span) if isinstance(b, A.RangeBinding) else b
                         for b in e.index.bindings)
        where = substitute(e.index.where, inner) if e.index.where is not None else None
        return A.Sum(A.Index(bindings, where, span=e.index.span), substitute(e.body, inner),
                     span=e.span)
    return map_children(e, lambda c: substitute(c, mapping))


def inline_stats(e: A.Expr, model: CheckedModel, path: tuple[str, ...] = ()) -> A.Expr:
    """Replace references to stats by their (index-substituted) expressions; `path` holds the
    stats being inlined, so a cycle is named."""

    def visit(x):
        if isinstance(x, (A.Name, A.Indexed)) and x.name in model.stats:
            return _inline_stat(x, model, path, visit)
        return map_children(x, visit)

    return visit(e)


def _inline_stat(x: A.Name | A.Indexed, model: CheckedModel, path: tuple[str, ...], visit):
    if x.name in path:
        cycle = " -> ".join(path[path.index(x.name):] + (x.name,))
        raise UserError(f"stats refer to each other in a cycle: {cycle}", x.span)
    st = model.stats[x.name]
    names = st.index.names() if st.index is not None else ()
    if isinstance(x, A.Name):
        if names:
            raise UserError(f"stat '{x.name}' is indexed; use {x.name}[...]", x.span)
        return inline_stats(st.expr, model, path + (x.name,))
    if len(names) != len(x.args):
        raise UserError(f"stat '{x.name}' takes {count(len(names), 'index', 'indices')}, got "
                        f"{len(x.args)}", x.span)
    body = substitute(st.expr, dict(zip(names, (visit(a) for a in x.args))))
    return inline_stats(body, model, path + (x.name,))


def map_children(x, fn):
    if isinstance(x, (A.Num, A.Name)):
        return x
    if isinstance(x, A.Indexed):
        return A.Indexed(x.name, tuple(fn(a) for a in x.args), span=x.span)
    if isinstance(x, A.Call):
        return A.Call(x.func, tuple(fn(a) for a in x.args), span=x.span)
    if isinstance(x, A.BinOp):
        return A.BinOp(x.op, fn(x.left), fn(x.right), span=x.span)
    if isinstance(x, A.Unary):
        return A.Unary(x.op, fn(x.operand), span=x.span)
    if isinstance(x, A.Sum):
        return A.Sum(x.index, fn(x.body), span=x.span)
    raise TypeError(x)


@dataclass(frozen=True)
class Piece:
    bindings: tuple[A.Binding, ...]
    wheres: tuple[A.Expr, ...]
    body: A.Expr


def has_sum(e: A.Expr) -> bool:
    return isinstance(e, A.Sum) or any(has_sum(c) for c in children(e))


def _neg(p: Piece) -> Piece:
    return Piece(p.bindings, p.wheres, A.Unary("-", p.body, span=p.body.span))


def split(e: A.Expr, expand=None) -> list[Piece]:
    """Distribute sums in linear position outward: the summands become separate terms. A sum in
    nonlinear position (inside a function, a power, a divisor, a comparison) is handed to
    `expand(sum_node) -> expr`, which writes it out as one term over every variable it reads;
    without `expand` it is refused."""
    if not has_sum(e):
        return [Piece((), (), e)]
    if isinstance(e, A.Sum):
        where = (e.index.where,) if e.index.where is not None else ()
        return [Piece(e.index.bindings + p.bindings, where + p.wheres, p.body)
                for p in split(e.body, expand)]
    if isinstance(e, A.Unary) and e.op == "-":
        return [_neg(p) for p in split(e.operand, expand)]
    if isinstance(e, A.BinOp) and e.op in ("+", "-"):
        right = split(e.right, expand)
        return split(e.left, expand) + (right if e.op == "+" else [_neg(p) for p in right])
    if isinstance(e, A.BinOp) and e.op == "*":
        out = []
        for a, b in itertools.product(split(e.left, expand), split(e.right, expand)):
            clash = _bound(a) & _bound(b)
            if clash:
                raise UserError(f"a product of two sums binds '{sorted(clash)[0]}' twice; "
                                "rename one of the indices", e.span)
            out.append(Piece(a.bindings + b.bindings, a.wheres + b.wheres,
                             A.BinOp("*", a.body, b.body, span=e.span)))
        return out
    if isinstance(e, A.BinOp) and e.op == "/" and not has_sum(e.right):
        return [Piece(p.bindings, p.wheres, A.BinOp("/", p.body, e.right, span=e.span))
                for p in split(e.left, expand)]
    if expand is not None:
        return [Piece((), (), expand_sums(e, expand))]
    node = _first_sum(e)
    raise UserError("this sum is inside a nonlinear expression; ebmlang splits only sums in linear "
                    "position (added, subtracted, multiplied or divided by a sum-free factor)",
                    node.span)


def expand_sums(e: A.Expr, expand) -> A.Expr:
    """`e` with every sum in it (innermost first) replaced by `expand(sum)`."""
    if isinstance(e, A.Sum):
        return expand(e)
    return map_children(e, lambda c: expand_sums(c, expand))


def added(terms: list[A.Expr], span) -> A.Expr:
    """The terms added as a balanced tree (depth log2 n: no deep recursion for n = 784)."""
    if not terms:
        return A.Num(0.0, True, span=span)
    while len(terms) > 1:
        terms = [A.BinOp("+", terms[k], terms[k + 1], span=span) if k + 1 < len(terms)
                 else terms[k] for k in range(0, len(terms), 2)]
    return terms[0]


def binding_names(b: A.Binding) -> tuple[str, ...]:
    return b.names if isinstance(b, A.TupleBinding) else (b.name,)


def _bound(p: Piece) -> set[str]:
    return {n for b in p.bindings for n in binding_names(b)}


def _first_sum(e):
    if isinstance(e, A.Sum):
        return e
    for c in children(e):
        s = _first_sum(c)
        if s is not None:
            return s
    return None


def children(e):
    if isinstance(e, A.BinOp):
        return (e.left, e.right)
    if isinstance(e, A.Unary):
        return (e.operand,)
    if isinstance(e, (A.Call, A.Indexed)):
        return e.args
    if isinstance(e, A.Sum):
        return (e.body,)
    return ()


def merge_pieces(pieces: list[Piece]) -> list[Piece]:
    """Sum-free pieces are added back into one term; each summand of a sum stays its own."""
    plain = [p for p in pieces if not p.bindings]
    rest = [p for p in pieces if p.bindings]
    if len(plain) > 1:
        body = plain[0].body
        for p in plain[1:]:
            body = A.BinOp("+", body, p.body, span=p.body.span)
        plain = [Piece((), (), body)]
    return plain + rest


def occurrences(e: A.Expr, names: set, sums=()) -> list[tuple[A.Expr, tuple]]:
    """Each read of a family in `names` in e (every occurrence), with the sums enclosing it,
    outermost first."""
    if isinstance(e, (A.Indexed, A.Name)) and e.name in names:
        return [(e, sums)]
    inner = sums + (e,) if isinstance(e, A.Sum) else sums
    return [o for c in children(e) for o in occurrences(c, names, inner)]
