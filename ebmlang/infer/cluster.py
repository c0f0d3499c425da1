"""Which families cluster moves (Swendsen-Wang, Wolff) apply to, derived from the model.

A term that reads two variables of finite-domain families is a cluster pair when its
log-potential is c + u(a) + w(b) + K [a == b] in the labels (value positions) of a and b.
For two two-valued variables this always holds, with K = (f(1,1) + f(0,0) - f(1,0) -
f(0,1)) / 2 (half the interaction that `graphcut` derives; 2 beta J for the Ising factor on
spins); for more values the interaction D(a, b) = f(a,b) - f(a,0) - f(0,b) + f(0,0) must be
K (1 + [a == b]) at every a, b >= 1 (a weight on x[a] == x[b], Potts). Both are decided with
sympy once per term, over its symbols (params, inputs, indices), so they hold for every
instance; a term sympy cannot take (a param indexed by variables) is decided numerically per
instance at the current params, and the moves check the decomposition again whenever the
params change. K's sign is checked per instance at run time (`cluster_moves`): K < 0 anywhere
(frustration) falls back to Gibbs.

A family qualifies when it has a finite domain, is not given `sampler X : gibbs`, and every
term reading it reads at most one other qualifying variable, as a cluster pair (other sampled
variables in a term of one qualifying read are constants of the move: it samples the
qualifying families given the rest, as a Gibbs block does). Families joined by pairs form a
group; each group is moved as one (`cluster_moves.Group`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ebmlang.backends.numeric import ensure_shape
from ebmlang.errors import UserError

METHODS = {"swendsen_wang": "Swendsen-Wang", "wolff": "Wolff"}
MAX_TABLE = 64          # labels a categorical pair may have for a per-instance numeric check


@dataclass
class PairForm:
    """A term that is a cluster pair: its two qualifying reads and K as text."""

    term: int                 # index into model.terms
    reads: tuple[int, int]
    k_text: str
    how: str                  # "symbolically" or "numerically at the current params"


@dataclass
class GroupPlan:
    families: tuple[str, ...]
    method: str               # swendsen_wang | wolff
    explicit: bool            # given by a sampler statement: the families get no Gibbs sweep
    pairs: list[PairForm] = field(default_factory=list)
    unary: list[tuple[int, int]] = field(default_factory=list)    # (term, read), static
    dynamic: list[tuple[int, int]] = field(default_factory=list)  # (term, read), read others


@dataclass
class Plan:
    groups: list[GroupPlan]
    why_not: dict[str, str]   # family -> why it gets no cluster move


def plan(model) -> Plan:
    """The cluster plan of a model, derived once and kept on it."""
    found = getattr(model, "_cluster_plan", None)
    if found is None:
        found = _derive(model)
        model._cluster_plan = found
    return found


def _derive(model) -> Plan:
    decls = model.checked.samplers
    why: dict[str, str] = {}
    ok = set()
    for f in model.vars.values():
        if not f.sampled:
            continue
        d = decls.get(f.name)
        if d is not None and d.method not in METHODS:
            why[f.name] = f"sampler {f.name} : {d.method} was asked for"
        elif not f.domain.finite:
            why[f.name] = "its domain is not finite"
        else:
            ok.add(f.name)
    forms: dict[int, PairForm] = {}
    while True:
        bad = _first_bad(model, ok, forms)
        if bad is None:
            break
        families, reason = bad
        for name in families:
            ok.discard(name)
            why[name] = reason
    groups = _groups(model, ok, forms, why)
    for g in groups:
        for name in g.families:
            why.pop(name, None)
    _explicit_errors(model, groups, why)
    return Plan(groups, why)


def _first_bad(model, ok: set, forms: dict) -> tuple[list[str], str] | None:
    """The families of the first term that stops them (and why), or None when none does."""
    for n, t in enumerate(model.terms):
        if not t.size:
            continue
        mine = [k for k, r in enumerate(t.reads) if r.family in ok]
        others = [r.family for r in t.reads
                  if r.family not in ok and model.vars[r.family].sampled]
        fams = sorted({t.reads[k].family for k in mine})
        label = _label(t)
        if len(mine) >= 3:
            return fams, f"{label} reads {len(mine)} of its variables: not a pair"
        if len(mine) == 2 and others:
            return fams, (f"{label} also reads {sorted(set(others))[0]}, which gets no "
                          "cluster move: not a pair")
        if len(mine) == 2 and n not in forms:
            form, reason = pair_form(model, n, tuple(mine))
            if form is None:
                return fams, f"{label}: {reason}"
            forms[n] = form
    return None


def _label(t) -> str:
    return ("energy " if t.sign < 0 else "factor ") + t.owner + \
        (f" (term {t.number})" if t.number else "")


def pair_form(model, n: int, reads: tuple[int, int]) -> tuple[PairForm | None, str]:
    """Whether term n is c + u(a) + w(b) + K [a == b] in the labels of its two reads."""
    t = model.terms[n]
    da, db = (model.vars[t.reads[k].family].domain for k in reads)
    if da.size != db.size:
        return None, f"its variables have {da.size} and {db.size} values"
    if da.size < 2:
        return PairForm(n, reads, "0", "symbolically"), ""
    if not any(q.dynamic for q in t.preads):
        found = symbolic_pair(model, n, reads)
        if found is not None:
            return found
    if da.size > MAX_TABLE:
        return None, f"{da.size} values are too many to check the pair per instance"
    x = np.zeros((1, model.checked.n_state))
    _, _, residual = pair_tables(model, n, reads, x, model.params.theta)
    if residual == math.inf:
        return None, "a pair of values has probability 0 (log 0): no finite weight on equality"
    if residual > 1e-9:
        return None, "not a weight on equality plus unary parts (checked per instance)"
    return PairForm(n, reads, "per instance", "numerically at the current params"), ""


def symbolic_pair(model, n: int, reads: tuple[int, int]):
    """`_symbolic` of term n, or None when sympy could not decide. It depends on the model's
    text alone (params stay symbols), so it is kept on the model (`_pair_memo`), and a model
    loaded from the compiled-model cache brings it along instead of importing sympy."""
    memo = model.__dict__.setdefault("_pair_memo", {})
    if (n, reads) not in memo:
        t = model.terms[n]
        da, db = (model.vars[t.reads[k].family].domain for k in reads)
        try:
            memo[n, reads] = _symbolic(model, t, n, reads, da.values, db.values)
        except (TypeError, ValueError, AttributeError, RecursionError):
            memo[n, reads] = None  # sympy could not: decided per instance
    return memo[n, reads]


def symbolic_pairs(model) -> dict:
    """`symbolic_pair` of every term that reads two sampled finite variables of one size (the
    forms the plan may ask for), derived now: the memo the compiled-model cache stores."""
    for n, t in enumerate(model.terms):
        mine = tuple(k for k, r in enumerate(t.reads)
                     if model.vars[r.family].sampled and model.vars[r.family].domain.finite)
        if t.size and len(mine) == 2 and not any(q.dynamic for q in t.preads) and \
                model.vars[t.reads[mine[0]].family].domain.size == \
                model.vars[t.reads[mine[1]].family].domain.size >= 2:
            symbolic_pair(model, n, mine)
    return dict(model.__dict__.get("_pair_memo", {}))


def _symbolic(model, t, n, reads, va, vb):
    import sympy as sp

    from ebmlang.frontend.printing import expr_text
    from ebmlang.middle.derivatives import term_expr, term_symbols
    from ebmlang.middle.forms import to_text
    v, p, _ = term_symbols(t)
    expr = term_expr(t, model.checked.consts)
    a, b = reads

    def num(value):   # exact for integers (spins, bits, labels); never parsed from text
        return sp.Integer(int(value)) if float(value).is_integer() else sp.Float(value, 17)

    def f(la, lb):
        return int(t.sign) * expr.xreplace({v[a]: num(va[la]), v[b]: num(vb[lb])})
    k2 = sp.simplify(f(1, 1) - f(1, 0) - f(0, 1) + f(0, 0))
    for la in range(1, len(va)):
        for lb in range(1, len(vb)):
            d = f(la, lb) - f(la, 0) - f(0, lb) + f(0, 0)
            if sp.simplify(2 * d - k2 * (1 + (la == lb))) != 0:
                return None, "not a weight on equality plus unary parts"
    shown = {s: sp.Symbol(expr_text(q.node)) for s, q in zip(p, t.preads)}
    shown.update({s: sp.Symbol(expr_text(r.node)) for s, r in zip(v, t.reads)})
    half = sp.simplify(k2 / 2)
    text = f"{float(half):.6g}" if half.is_number else to_text(half.xreplace(shown))
    if k2.is_number and k2 < 0:
        return None, f"K = {text} < 0 (antiferromagnetic, frustrated)"
    return PairForm(n, reads, text, "symbolically"), ""


def _groups(model, ok: set, forms: dict, why: dict) -> list[GroupPlan]:
    """The qualifying families joined by pairs, one group each, with their terms."""
    import networkx as nx
    g = nx.Graph()
    g.add_nodes_from(ok)
    for form in forms.values():
        t = model.terms[form.term]
        fa, fb = (t.reads[k].family for k in form.reads)
        if fa in ok and fb in ok:
            g.add_edge(fa, fb)
    decls = model.checked.samplers
    out = []
    for comp in nx.connected_components(g):
        fams = tuple(f for f in model.vars if f in comp)
        asked = {decls[f].method for f in fams if f in decls}
        if len(asked) > 1:
            d = next(decls[f] for f in fams if f in decls)
            raise UserError(f"{', '.join(fams)} are joined by pairs and moved as one cluster "
                            f"group: give them one sampler, not {' and '.join(sorted(asked))}",
                            d.span)
        gp = GroupPlan(fams, min(asked) if asked else "swendsen_wang", bool(asked))
        _fill_terms(model, gp, comp, forms)
        if not gp.pairs and not gp.explicit:
            for f in fams:
                why[f] = "no pair factor joins its variables (Gibbs draws them exactly)"
            continue
        out.append(gp)
    return out


def _fill_terms(model, gp: GroupPlan, comp: set, forms: dict) -> None:
    for n, t in enumerate(model.terms):
        mine = [k for k, r in enumerate(t.reads) if r.family in comp]
        if not t.size or not mine:
            continue
        if len(mine) == 2:
            gp.pairs.append(forms[n])
        elif any(r.family not in comp and model.vars[r.family].sampled for r in t.reads):
            gp.dynamic.append((n, mine[0]))
        else:
            gp.unary.append((n, mine[0]))


def _explicit_errors(model, groups, why) -> None:
    """A family given `sampler X : swendsen_wang | wolff` that does not qualify is an error."""
    for name, d in model.checked.samplers.items():
        if d.method in METHODS and name in why:
            raise UserError(f"sampler {d.method} for '{name}' does not apply: {why[name]}",
                            d.span)


def term_values(kernel, x, theta, rows, sets) -> np.ndarray:
    """Signed log-potential of instances `rows`, (chains, len(rows)), read k set to v for
    (k, v) in sets (v broadcasts to (chains, len(rows)))."""
    V, P, I = kernel.args(x, theta, rows)
    for k, v in sets:
        V[k] = np.broadcast_to(v, (x.shape[0], len(rows)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = kernel.fn(V, P, I, theta)
    return kernel.term.sign * ensure_shape(out, x.shape[0], len(rows))


def pair_tables(model, n: int, reads, x, theta, rows=None):
    """(K (chains, rows), unary parts (u of read a, w of read b: (chains, rows, labels)), the
    largest relative residual of the decomposition) of pair term n over `rows` (all if None)."""
    t, kernel = model.terms[n], model.kernels[n]
    rows = np.arange(t.size) if rows is None else rows
    ka, kb = reads
    va = model.vars[t.reads[ka].family].domain.values
    vb = model.vars[t.reads[kb].family].domain.values
    k = len(va)
    F = np.stack([np.stack([term_values(kernel, x, theta, rows, [(ka, va[i]), (kb, vb[j])])
                            for j in range(k)], -1) for i in range(k)], -2)
    if not np.isfinite(F).all():    # a pair of values of probability 0 (log 0): K would be
        return None, None, math.inf   # inf - inf; no finite u + w + K [a == b] matches it
    K = 0.5 * (F[..., 1, 1] - F[..., 1, 0] - F[..., 0, 1] + F[..., 0, 0])
    eq0 = (np.arange(k) == 0)
    ua = F[..., :, 0] - K[..., None] * eq0
    wb = F[..., 0, :] - K[..., None] * eq0
    residual = 0.0
    if k > 2:
        model_f = ua[..., :, None] + wb[..., None, :] + K[..., None, None] * np.eye(k) + \
            (K - F[..., 0, 0])[..., None, None]
        with np.errstate(invalid="ignore"):
            residual = float(np.nanmax(np.abs(F - model_f) / (1 + np.abs(F)), initial=0.0))
    return K, (ua, wb), residual
