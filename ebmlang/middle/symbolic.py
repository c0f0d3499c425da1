"""Phase 5: each variable family's full conditional, derived with sympy in index form.

For family X with indices (i, j), every term that reads X contributes. For a read such as
`s[i, (j + 1) % L]` inside `right[i, j]`, solving `(i, (j + 1) % L) = (a, b)` for the term's
indices gives the instance `right[a, (b - 1) % L]`; its expression, with that read replaced by
the variable's own value, is the contribution. A term index the read leaves free (`i` in
`pair[i, j]` reading `h[j]`) becomes a sum over its range. A read that does not invert (a set
binding, a nonlinear index) contributes `sum(INDEX where READ == OWN) BODY`, which is exactly
what the ground kernel computes. Derived once per family, never per ground variable.

sympy sees only expressions built here from the checked AST: user text is never sympified.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ebmlang.errors import UserError
from ebmlang.middle.folded import folded_contribution
from ebmlang.middle.forms import Ind, IndexSum, sigmoid, sum_where, to_latex, to_text
from ebmlang.middle.solve import Contribution, contribution


# ---------------------------------------------------------------- the conditional of a family

@dataclass(repr=False)
class Conditional:
    """A family's full conditional: `expr` (sympy), `text` (what `ebmlang conditionals`
    prints), `latex`; shown as its formula, and as LaTeX in a notebook."""

    family: str
    domain: str
    kind: str                 # logistic | softmax | density
    expr: sp.Expr             # logistic: p(high value); softmax and density: log-potential
    local: sp.Expr            # the local log-potential as a function of `value`
    value: sp.Symbol
    blanket: list[str]
    text: str
    latex: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Conditional({self.text.splitlines()[-1].strip()})"

    def _repr_latex_(self) -> str:
        return f"${self.latex}$"


def _whole_numbers(e):
    """Floats that are whole numbers become integers (1.0*c -> c)."""
    return e.xreplace({f: sp.Integer(int(f)) for f in e.atoms(sp.Float) if float(f).is_integer()})


def _tidy(e: sp.Expr, params) -> sp.Expr:
    e = sp.factor_terms(sp.expand(e))
    e = _whole_numbers(e)
    if isinstance(e, sp.Mul):
        return sp.Mul(*[sp.collect(a, params) if isinstance(a, sp.Add) else a for a in e.args])
    return sp.collect(e, params) if isinstance(e, sp.Add) else e


def _number(v: float) -> sp.Expr:
    return sp.Integer(int(v)) if float(v).is_integer() else sp.nsimplify(float(v))


def _blanket(e, fam_name, model, own_head) -> list[str]:
    """The blanket's reads as written, each summed index with its range."""
    ranges = {}
    for s in e.atoms(sp.Sum):
        where = sum_where(s)[0]
        for sym, lo, hi in s.limits:
            ranges[sym] = f"{to_text(sym)} in {to_text(lo)}..{to_text(hi)}" + \
                (f" where {to_text(Ind(where))[1:-1]}" if where is not None else "")
    out = []
    for atom in sorted(e.atoms(sp.Indexed), key=to_text):
        name = atom.base.label.name
        if name in model.vars and atom != own_head:
            free = [ranges[s] for s in sorted(atom.free_symbols, key=str) if s in ranges]
            text = to_text(atom) + (f" for {', '.join(free)}" if free else "")
            if text not in out:
                out.append(text)
    for atom in sorted(e.atoms(sp.Symbol), key=str):
        fam = model.vars.get(atom.name)
        if fam is not None and fam.space.ndim == 0 and atom.name != fam_name:
            out.append(atom.name)
    return out


def _value_symbol(model, fam) -> sp.Symbol:
    """The symbol for a finite family's own value: `k`, or a hidden one for two values."""
    if fam.domain.finite and fam.domain.size == 2:
        return sp.Dummy("value")
    taken = set(model.checked.kinds) | {n for t in model.terms for n in t.names}
    name = "k"
    while name in taken:
        name += "_"
    return sp.Symbol(name)


def _contributions(model, fam, own, value) -> list[tuple[Contribution, int]]:
    """Each (term, read of the family) contribution to the local log-potential, with its sign."""
    return [(c, s) for c, s, _ in _owned_contributions(model, fam, own, value)]


def _owned_contributions(model, fam, own, value) -> list[tuple[Contribution, int, object]]:
    """(contribution, sign, term) for each term and read of the family: a term whose folded
    body reads the family under one nonlinear sum gives one contribution in index form for all
    its ground reads of it."""
    out = []
    for t in model.terms:
        folded = folded_contribution(model.checked, fam, t, own, value) \
            if t.folded is not None and any(r.family == fam.name for r in t.reads) else None
        if folded is not None:
            out.append((folded, int(t.sign), t))
            continue
        seen = set()
        for r in t.reads:
            if r.family == fam.name and r.node not in seen:
                seen.add(r.node)
                out.append((contribution(model.checked, fam, t, r, own, value), int(t.sign), t))
    return out


def derive(model, fam) -> Conditional:
    own = [sp.Symbol(n, integer=True) for n in fam.space.names]
    head = sp.IndexedBase(fam.name)[tuple(own)] if own else sp.Symbol(fam.name)
    value = _value_symbol(model, fam) if fam.domain.finite else head
    contribs = _contributions(model, fam, own, value)
    params = [sp.Symbol(p) for p, pf in model.checked.params.items() if pf.space.ndim == 0]
    local = sp.Add(*[s * c.at(lambda b: b) for c, s in contribs])
    head_text = to_text(head)
    if fam.domain.finite and fam.domain.size == 2:
        lo, hi = (_number(v) for v in fam.domain.values)
        logit = sp.Add(*[s * c.at(lambda b: sp.factor_terms(sp.expand(
            b.xreplace({value: hi}) - b.xreplace({value: lo})))) for c, s in contribs])
        logit = _tidy(logit, params)
        expr, kind = sigmoid(logit), "logistic"
        hi_text = "+1" if fam.domain.kind == "spin" else to_text(hi)
        formula = f"p({head_text} = {hi_text} | blanket) = {to_text(expr)}"
        latex = rf"p\left({to_latex(head)} = {hi_text} \mid \text{{blanket}}\right) = {to_latex(expr)}"
    elif fam.domain.finite:
        expr = _tidy(local, params)
        kind = "softmax"
        formula = f"log p({head_text} = {value} | blanket) = {to_text(expr)} + const,  " \
                  f"{value} in {fam.domain.text}"
        latex = (rf"\log p\left({to_latex(head)} = {to_latex(value)} \mid \text{{blanket}}\right)"
                 rf" = {to_latex(expr)} + \text{{const}}")
    else:
        expr, kind, formula, latex = _real_text(model, fam, local, head, head_text, params)
    blanket = _blanket(local, fam.name, model.checked, head)
    return Conditional(fam.name, fam.domain.text, kind, expr, local, value, blanket,
                       _text(model, fam, head_text, blanket, formula), latex)


def _real_text(model, fam, local, head, head_text, params):
    form = model.real_forms[fam.name]
    if form.kind == "gaussian" and form.quad is None:   # stored without sympy: derive it again
        form = real_form(model, fam)
    if form.kind == "gaussian":
        mean = _tidy(-form.lin / (2 * form.quad), params)
        var = _tidy(-1 / (2 * form.quad), params)
        formula = (f"{head_text} | blanket ~ Normal(mean = {to_text(mean)}, "
                   f"variance = {to_text(var)})")
        latex = (rf"{to_latex(head)} \mid \text{{blanket}} \sim \mathcal{{N}}\left({to_latex(mean)},"
                 rf" {to_latex(var)}\right)")
        return sp.Tuple(mean, var), "gaussian", formula, latex
    expr = _tidy(local, params)
    formula = f"log p({head_text} | blanket) = {to_text(expr)} + const"
    latex = rf"\log p\left({to_latex(head)} \mid \text{{blanket}}\right) = {to_latex(expr)} + \text{{const}}"
    return expr, "density", formula, latex


def _text(model, fam, head_text, blanket, formula) -> str:
    sampler = model.sampler_text(fam.name)
    block = model.graph.colouring.get(fam.name, "")
    lines = [f"{head_text} : {fam.domain.text}   {sampler}   blocks: {block}".rstrip(),
             f"  blanket  {', '.join(blanket) if blanket else '(none)'}",
             f"  {formula}"]
    return "\n".join(lines)


def conditionals(model) -> dict[str, Conditional]:
    """Each sampled family's full conditional, derived once per family in index form."""
    return {f.name: derive(model, f) for f in model.vars.values() if f.sampled}


# ---------------------------------------------------------------- real-valued families

@dataclass
class RealForm:
    """How a real family is sampled, from the shape of its local log-potential in x."""

    kind: str                   # "gaussian" | "mh"
    quad: sp.Expr | None = None # coefficient of x^2 (must be negative)
    lin: sp.Expr | None = None  # coefficient of x
    span: object = None         # the first factor with an x^2 term: where an improper one is reported
    quad_reads_vars: bool = False  # the x^2 coefficient depends on other variables' values

def _reads_value(e, value) -> bool:
    return e.has(value)


def real_form(model, fam) -> RealForm:
    """Quadratic with a negative x^2 coefficient: an exact Gaussian update; a local
    log-potential that cannot be normalized: a UserError at the factor's span; else MH."""
    own = [sp.Symbol(n, integer=True) for n in fam.space.names]
    value = sp.IndexedBase(fam.name)[tuple(own)] if own else sp.Symbol(fam.name)
    owned = _owned_contributions(model, fam, own, value)
    x = sp.Dummy("x", real=True)
    parts = [(s * c.at(lambda b: b)).xreplace({value: x}) for c, s, _ in owned]
    local = sp.Add(*parts)
    owners = [t for _, _, t in owned]
    first = next((t for t, e in zip(owners, parts) if sp.diff(e, x, 2) != 0),
                 owners[0] if owners else None)
    span = _term_span(model, first)
    if not local.has(x):
        raise UserError(f"'{fam.name}' is real-valued but no factor depends on it: its density "
                        "is flat and cannot be normalized", fam.span)
    d3 = sp.diff(local, x, 3)
    if d3 != 0 and _polynomial_in(local, x):
        d3 = sp.simplify(d3)     # only a polynomial can be quadratic once simplified; the
        # rest (tanh, exp, ...) is sampled by MH or HMC without sympy's costly trigsimp
    if d3 == 0 and _plain_polynomial(local, x):
        quad = sp.expand(sp.diff(local, x, 2) / 2)
        lin = sp.expand(sp.diff(local, x).xreplace({x: 0}))
        if quad == 0:
            raise UserError(f"the log-density of the real variable {to_text(value)} is linear in "
                            "it (degree 1): it grows without bound and cannot be normalized; "
                            "add a quadratic energy such as 0.5 * x^2", span)
        if quad.is_nonnegative:
            raise UserError(f"the log-density of the real variable {to_text(value)} has the x^2 "
                            f"coefficient {to_text(quad)} >= 0: it grows without bound and "
                            "cannot be normalized (an energy needs +x^2, a factor -x^2)", span)
        return RealForm("gaussian", quad, lin, span, _reads_vars(model, quad))
    _check_polynomial_growth(local, x, value, span)
    return RealForm("mh")


def _plain_polynomial(e, x) -> bool:
    """x appears only through sums, products and whole powers: an indicator such as (x > 0),
    abs, a step or any function of x has third derivative 0 almost everywhere in sympy's eyes
    (its derivative taken as 0), yet the density is not Gaussian."""
    if not e.has(x) or e == x:
        return True
    if isinstance(e, (sp.Add, sp.Mul)) or isinstance(e, (sp.Sum, IndexSum)):
        return all(_plain_polynomial(a, x) for a in e.args)
    if isinstance(e, sp.Pow):
        return (not e.exp.has(x) and e.exp.is_Integer and e.exp >= 0
                and _plain_polynomial(e.base, x))
    if isinstance(e, (sp.Tuple, sp.Indexed)):
        return all(_plain_polynomial(a, x) for a in e.args)
    return False


def _polynomial_in(e, x) -> bool:
    try:
        return bool(e.is_polynomial(x))
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return True          # undecided: simplify, as before


def _check_polynomial_growth(local, x, value, span) -> None:
    if local.has(sp.Sum) or local.has(IndexSum):
        return
    try:
        poly = sp.Poly(local, x)
    except sp.PolynomialError:
        return
    lead = poly.LC()
    if poly.degree() % 2 == 1 or lead.is_nonnegative:
        why = "odd degree" if poly.degree() % 2 == 1 else f"leading coefficient {to_text(lead)} >= 0"
        raise UserError(f"the log-density of the real variable {to_text(value)} is a polynomial of "
                        f"degree {poly.degree()} with {why}: it grows without bound and cannot be "
                        "normalized", span)


def _reads_vars(model, e) -> bool:
    """Whether the expression reads any variable (var, latent or input) of the model."""
    names = set(model.checked.vars)
    return any(str(a.base.label) in names for a in e.atoms(sp.Indexed)) \
        or any(s.name in names for s in e.free_symbols if isinstance(s, sp.Symbol))


def _term_span(model, term):
    if term is None:
        return None
    for f in model.checked.factors:
        if f.name == term.owner:
            return f.span
    return None
