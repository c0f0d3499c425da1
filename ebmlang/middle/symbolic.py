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
from functools import reduce

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from ebmlang.frontend import ast as A
from ebmlang.errors import UserError
from ebmlang.frontend.exprs import ARITH, COMPARE
from ebmlang.middle.lower import Term
from ebmlang.frontend.printing import expr_text


class Ind(sp.Function):
    """The 0/1 value of a condition (ebmlang's comparisons), an Iverson bracket."""

    def fdiff(self, argindex=1):
        return sp.S.Zero  # piecewise constant: zero derivative almost everywhere

    def _eval_derivative(self, s):
        return sp.S.Zero  # without differentiating the condition (a relation has no diff)

    @classmethod
    def eval(cls, cond):
        if cond is sp.true:
            return sp.S.One
        if cond is sp.false:
            return sp.S.Zero
        return None


class sigmoid(sp.Function):  # noqa: N801 - the name users read
    def fdiff(self, argindex=1):
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))


class softplus(sp.Function):  # noqa: N801
    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


class IndexSum(sp.Function):
    """sum(BINDINGS where COND) BODY over ground instances that a read does not invert."""

    nargs = 3  # (body, Symbol naming the bindings, condition)

    def _eval_derivative(self, s):
        body, name, cond = self.args  # the condition reads indices only (never a variable)
        return IndexSum(sp.diff(body, s), name, cond)


# ---------------------------------------------------------------- AST -> sympy

_CMP = {"==": sp.Eq, "!=": sp.Ne, "<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge}
_FUN = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "tanh": sp.tanh,
        "sigmoid": sigmoid, "softplus": softplus, "min": sp.Min, "max": sp.Max,
        "log1p": lambda x: sp.log(1 + x)}


def _truth(x):
    return x.args[0] if isinstance(x, Ind) else sp.Ne(x, 0)


class ToSympy:
    """AST -> sympy, with a table for names: consts stay symbols so formulas read as written."""

    def __init__(self, model, names: dict[str, sp.Expr], replace: dict | None = None):
        self.model = model
        self.names = names
        self.replace = replace or {}

    def __call__(self, e):
        if e in self.replace:
            return self.replace[e]
        if isinstance(e, A.Num):
            return sp.Integer(int(e.value)) if e.is_int else sp.Float(e.value, 15)
        if isinstance(e, A.Name):
            return self.names.get(e.name) or sp.Symbol(e.name)
        if isinstance(e, A.Indexed):
            return sp.IndexedBase(e.name)[tuple(self(a) for a in e.args)]
        if isinstance(e, A.Call):
            return _FUN[e.func](*(self(a) for a in e.args))
        if isinstance(e, A.Unary):
            x = self(e.operand)
            return -x if e.op == "-" else Ind(sp.Not(_truth(x)))
        if isinstance(e, A.Sum):
            raise ValueError("sums are split before symbolic derivation")
        a, b = self(e.left), self(e.right)
        if e.op in _CMP:
            return Ind(_CMP[e.op](a, b))
        if e.op == "and":
            return Ind(sp.And(_truth(a), _truth(b)))
        if e.op == "or":
            return Ind(sp.Or(_truth(a), _truth(b)))
        if e.op in ("/", "%") and b.is_zero:  # e.g. x % (J < J): zero whatever the params
            raise UserError("division by zero: this divisor is 0 whatever the params", e.span)
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                "/": lambda: a / b, "^": lambda: a ** b, "%": lambda: sp.Mod(a, b)}[e.op]()


# ---------------------------------------------------------------- printing

class _Str(StrPrinter):
    def _print_Mod(self, e):
        a, m = e.args
        inner = self._print(a)
        if isinstance(a, (sp.Add, sp.Mul)):
            inner = f"({inner})"
        return f"{inner} % {self._print(m)}"

    def _print_Ind(self, e):
        return f"({self._print_cond(e.args[0])})"

    def _print_cond(self, c):
        ops = {sp.Eq: "==", sp.Ne: "!=", sp.Lt: "<", sp.Le: "<=", sp.Gt: ">", sp.Ge: ">="}
        for cls, op in ops.items():
            if isinstance(c, cls):
                return f"{self._print(c.lhs)} {op} {self._print(c.rhs)}"
        if isinstance(c, sp.And):
            return " and ".join(self._print_cond(a) for a in c.args)
        if isinstance(c, sp.Or):
            return " or ".join(self._print_cond(a) for a in c.args)
        if isinstance(c, sp.Not):
            return f"not {self._print_cond(c.args[0])}"
        return self._print(c)

    def _print_Sum(self, e):
        body = self._print(e.function)
        limits = ", ".join(f"{self._print(s)} in {self._print(lo)}..{self._print(hi)}"
                           for s, lo, hi in e.limits)
        return f"sum({limits}) {body}" if not isinstance(e.function, sp.Add) else \
            f"sum({limits}) ({body})"

    def _print_IndexSum(self, e):
        body, binds, cond = e.args
        return f"sum({binds.name} where {self._print_cond(cond)}) {self._paren(body)}"

    def _paren(self, x):
        text = self._print(x)
        return f"({text})" if isinstance(x, sp.Add) else text


class _Latex(LatexPrinter):
    """sympy's LaTeX, with reads printed as on paper: `s_{(i + 1) \bmod L, j}`."""

    def _print_Mod(self, e, exp=None):
        a, m = e.args
        inner = self._print(a)
        return rf"{f'({inner})' if isinstance(a, (sp.Add, sp.Mul)) else inner} \bmod {self._print(m)}"

    def _print_Indexed(self, e, exp=None):
        return rf"{self._print(e.base.label)}_{{{', '.join(self._print(i) for i in e.indices)}}}"

    # sympy brackets any term holding a Mod; a Mod inside a read's subscript needs none
    def _needs_add_brackets(self, expr):
        return super()._needs_add_brackets(_reads_hidden(expr))

    def _needs_mul_brackets(self, expr, first=False, last=False):
        return super()._needs_mul_brackets(_reads_hidden(expr), first=first, last=last)

    def _print_Ind(self, e, exp=None):
        return rf"\left[{self._print(e.args[0])}\right]"

    def _print_sigmoid(self, e, exp=None):
        return rf"\sigma\left({self._print(e.args[0])}\right)"

    def _print_IndexSum(self, e, exp=None):
        body, binds, cond = e.args
        text = binds.name.replace("..", r"\ldots ")
        return rf"\sum_{{{text},\ {self._print(cond)}}} \left({self._print(body)}\right)"


def _reads_hidden(e):
    """e with each read a distinct plain symbol: the same shape of sum and product."""
    return e.xreplace({a: sp.Dummy() for a in e.atoms(sp.Indexed)}) if e.has(sp.Indexed) else e


def to_text(e) -> str:
    return _Str().doprint(e).replace("**", "^")


def to_latex(e) -> str:
    return _Latex().doprint(e)


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
class _Contrib:
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


def _contribution(model, fam, term: Term, read, own, value) -> _Contrib:
    tsyms = {n: sp.Symbol(f"{n}__t", integer=True) for n in term.names}
    conv = ToSympy(model, dict(tsyms), {read.node: value})
    sol = _solve(term, read.node, own, conv) if term.index is not None or not term.names else None
    if sol is None:
        return _fallback(model, term, read, own, value)
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
                return _fallback(model, term, read, own, value)
            name = n if n not in taken else n + "2"
            display[tsyms[n]] = sp.Symbol(name, integer=True)
            lo, hi = _range_of(conv, term, n)
            limits.append((display[tsyms[n]], lo, hi))
    subs = {tsyms[n]: v for n, v in sol.subs.items()}
    subs.update(display)
    limits = tuple((s, lo.xreplace(subs), hi.xreplace(subs)) for s, lo, hi in limits)
    body = conv(term.body).xreplace(subs)
    if term.index is not None and term.index.where is not None:
        where = _truth(conv(term.index.where)).xreplace(subs)
        if limits:
            body = Ind(where) * body
        else:
            conds.append(where)
    kept = [c.xreplace(subs) for c in conds]
    kept = [c for c in kept if not _always(c, model, fam, own)]
    return _Contrib(body, limits, sp.And(*kept) if kept else None)


def _fallback(model, term: Term, read, own, value) -> _Contrib:
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
        cond = sp.And(cond, _truth(conv(index.where)))
    return _Contrib(conv(term.body), (), None, (sp.Symbol(text), cond))


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
        for sym, lo, hi in s.limits:
            ranges[sym] = f"{to_text(sym)} in {to_text(lo)}..{to_text(hi)}"
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


def _contributions(model, fam, own, value) -> list[tuple[_Contrib, int]]:
    """Each (term, read of the family) contribution to the local log-potential, with its sign."""
    out = []
    for t in model.terms:
        seen = set()
        for r in t.reads:
            if r.family == fam.name and r.node not in seen:
                seen.add(r.node)
                out.append((_contribution(model.checked, fam, t, r, own, value), int(t.sign)))
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
    return [diff(expr, s) for s in p]


def sufficient_statistics(model) -> dict[str, list[tuple[str, str]]]:
    """For each param family, (term label, dF/dparam as text) per term reading it: the
    statistics whose data and model averages the learner matches."""
    out: dict[str, list[tuple[str, str]]] = {p: [] for p in model.checked.params}
    for t in model.terms:
        if not t.preads:
            continue
        v, p, i = term_symbols(t)
        shown = {s: sp.Symbol(expr_text(r.node)) for s, r in zip(v, t.reads)}
        shown.update({s: sp.Symbol(expr_text(q.node)) for s, q in zip(p, t.preads)})
        shown.update({s: sp.Symbol(n) for s, n in zip(i, t.names)})
        consts = {k: sp.Symbol(k) for k in model.checked.consts}
        expr = ToSympy(None, {**{n: s for n, s in zip(t.names, i)}, **consts},
                       {**{r.node: s for r, s in zip(t.reads, v)},
                        **{q.node: s for q, s in zip(t.preads, p)}})(t.body)
        label = t.owner + (f" term {t.number}" if t.number else "")
        for q, sym in zip(t.preads, p):
            d = int(t.sign) * diff(expr, sym)
            out[q.family].append((label, to_text(d.xreplace(shown))))
    return out


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
    contribs = _contributions(model, fam, own, value)
    x = sp.Dummy("x", real=True)
    parts = [(s * c.at(lambda b: b)).xreplace({value: x}) for c, s in contribs]
    local = sp.Add(*parts)
    owners = _contribution_owners(model, fam)
    first = next((t for t, e in zip(owners, parts) if sp.diff(e, x, 2) != 0),
                 owners[0] if owners else None)
    span = _term_span(model, first)
    if not local.has(x):
        raise UserError(f"'{fam.name}' is real-valued but no factor depends on it: its density "
                        "is flat and cannot be normalized", fam.span)
    d3 = sp.simplify(sp.diff(local, x, 3))
    if d3 == 0:
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


def _contribution_owners(model, fam) -> list:
    """The term of each contribution `_contributions` returns, in the same order."""
    out = []
    for t in model.terms:
        nodes = {r.node for r in t.reads if r.family == fam.name}
        out += [t] * len(nodes)
    return out


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
