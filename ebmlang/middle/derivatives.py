"""Each term as a sympy expression and its derivatives in the params: the sufficient
statistics dF/dtheta that the learners match and `ebmlang check` prints."""

from __future__ import annotations

import sympy as sp

from ebmlang.middle.lower import Term
from ebmlang.frontend.printing import expr_text
from ebmlang.middle.folded import folded_statistics
from ebmlang.middle.forms import ToSympy, to_text


# ---------------------------------------------------------------- derivatives for learning

def term_symbols(term: Term):
    """Real symbols V0.., P0.., I0.. for a term's variable reads, param reads and indices."""
    v = [sp.Symbol(f"V{k}", real=True) for k in range(len(term.reads))]
    p = [sp.Symbol(f"P{k}", real=True) for k in range(len(term.preads))]
    i = [sp.Symbol(f"I{k}", integer=True) for k in range(len(term.names))]
    return v, p, i


def term_expr(term: Term, consts: dict[str, float]):
    """A term's body as sympy, reads and indices as the symbols of `term_symbols`."""
    v, p, i = term_symbols(term)
    replace = {r.node: s for r, s in zip(term.reads, v)}
    replace.update({q.node: s for q, s in zip(term.preads, p)})
    names = {n: s for n, s in zip(term.names, i)}
    names.update({k: (sp.Integer(c) if float(c).is_integer() and isinstance(c, int) else sp.Float(c, 17))
                  for k, c in consts.items() if k not in names})
    return ToSympy(None, names, replace)(term.body)


def diff(expr: sp.Expr, s: sp.Symbol) -> sp.Expr:
    """d(expr)/ds, almost everywhere: sympy leaves d/ds (a % b) unevaluated, and it is
    d/ds a - floor(a / b) d/ds b wherever it exists (a % b = a - b floor(a / b))."""
    def mod_rule(d):
        (a, b), (var, _) = d.expr.args, d.variable_count[0]
        return diff(a, var) - sp.floor(a / b) * diff(b, var)
    d = sp.diff(expr, s).replace(
        lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, sp.Mod)
        and len(e.variable_count) == 1 and e.variable_count[0][1] == 1, mod_rule)
    return d.replace(lambda e: isinstance(e, sp.Subs), lambda e: e.doit())  # the chain rule's


def param_derivatives(term: Term, consts: dict[str, float]) -> list[sp.Expr]:
    """d(body)/d(param read k) for each param read of the term (the sufficient statistics
    when the term is linear in its params)."""
    expr = term_expr(term, consts)
    _, p, _ = term_symbols(term)
    return diffs(expr, p)


LARGE_SUM = 8  # summands above which `diffs` differentiates a sum by the chain rule


def diffs(expr: sp.Expr, symbols: list[sp.Symbol]) -> list[sp.Expr]:
    """[d(expr)/ds for s in symbols], equal to `diff` one by one, but in time linear in the
    size of expr when it holds large sums (softplus(c + sum of 784 products), each read once):
    each outermost large sum A_m becomes a placeholder z_m, and
    d/ds expr = d/ds expr[z] + sum_m d/dz_m expr[z] * d/ds A_m, with every d/ds A_m found in
    one pass over A_m's summands."""
    adds = [a for a in expr.atoms(sp.Add) if len(a.args) > LARGE_SUM]
    adds = [a for a in adds if not any(a is not b and b.has(a) for b in adds)]
    if not adds:
        return [diff(expr, s) for s in symbols]
    z = [sp.Dummy(f"z{m}", real=True) for m in range(len(adds))]
    back = dict(zip(z, adds))
    small = expr.xreplace(dict(zip(adds, z)))
    outer = [diff(small, zm) for zm in z]
    wanted = set(symbols)
    inner: list[dict] = []
    for a in adds:
        parts: dict = {}
        for t in a.args:
            for s in t.free_symbols & wanted:
                parts[s] = parts.get(s, 0) + diff(t, s)
        inner.append(parts)
    out = []
    for s in symbols:
        d = diff(small, s) + sum((o * parts[s] for o, parts in zip(outer, inner) if s in parts),
                                 sp.Integer(0))
        out.append(d.xreplace(back))
    return out


def var_derivatives(term: Term, consts: dict[str, float], reads) -> list:
    """d(body)/d(variable read k) for each k in `reads` (the gradient in x that HMC and MALA
    follow), almost everywhere."""
    expr = term_expr(term, consts)
    v, _, _ = term_symbols(term)
    return [diff(expr, v[k]) for k in reads]


def sufficient_statistics(model) -> dict[str, list[tuple[str, str]]]:
    """For each param family, (term label, dF/dparam as text) per term reading it: the
    statistics whose data and model averages the learner matches."""
    out: dict[str, list[tuple[str, str]]] = {p: [] for p in model.checked.params}
    for t in model.terms:
        if not t.preads:
            continue
        label = t.owner + (f" term {t.number}" if t.number else "")
        folded = folded_statistics(model.checked, t) if t.folded is not None else None
        if folded is not None:      # index form, not one row per written-out summand
            for family, d in folded:
                out[family].append((label, to_text(int(t.sign) * d)))
            continue
        v, p, i = term_symbols(t)
        shown = {s: sp.Symbol(expr_text(r.node)) for s, r in zip(v, t.reads)}
        shown.update({s: sp.Symbol(expr_text(q.node)) for s, q in zip(p, t.preads)})
        shown.update({s: sp.Symbol(n) for s, n in zip(i, t.names)})
        consts = {k: sp.Symbol(k) for k in model.checked.consts}
        expr = ToSympy(None, {**{n: s for n, s in zip(t.names, i)}, **consts},
                       {**{r.node: s for r, s in zip(t.reads, v)},
                        **{q.node: s for q, s in zip(t.preads, p)}})(t.body)
        for q, sym in zip(t.preads, p):
            d = int(t.sign) * diff(expr, sym)
            out[q.family].append((label, to_text(d.xreplace(shown))))
    return out
