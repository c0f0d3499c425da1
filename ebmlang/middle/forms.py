"""sympy forms of the checked syntax: the functions ebmlang adds (the indicator, sigmoid,
softplus, an index sum), the converter from the AST, and the text and LaTeX printers.

sympy sees only expressions built here from the checked AST: user text is never sympified.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from ebmlang.frontend import ast as A
from ebmlang.errors import UserError


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


def truth(x):
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
            return -x if e.op == "-" else Ind(sp.Not(truth(x)))
        if isinstance(e, A.Sum):
            raise ValueError("sums are split before symbolic derivation")
        a, b = self(e.left), self(e.right)
        if e.op in _CMP:
            return Ind(_CMP[e.op](a, b))
        if e.op == "and":
            return Ind(sp.And(truth(a), truth(b)))
        if e.op == "or":
            return Ind(sp.Or(truth(a), truth(b)))
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
        where, function = sum_where(e)
        body = self._print(function)
        limits = ", ".join(f"{self._print(s)} in {self._print(lo)}..{self._print(hi)}"
                           for s, lo, hi in e.limits)
        if where is not None:
            limits += f" where {self._print_cond(where)}"
        return f"sum({limits}) {body}" if not isinstance(function, sp.Add) else \
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

    def _print_Sum(self, expr):
        where, function = sum_where(expr)
        if where is None or len(expr.limits) != 1:
            return super()._print_Sum(expr)
        (s, lo, hi), = expr.limits
        body = self._print(function)
        if isinstance(function, sp.Add):
            body = rf"\left({body}\right)"
        return (rf"\sum_{{\substack{{{self._print(s)}={self._print(lo)} \\ {self._print(where)}}}}}"
                rf"^{{{self._print(hi)}}} {body}")

    def _print_IndexSum(self, e, exp=None):
        body, binds, cond = e.args
        text = binds.name.replace("..", r"\ldots ")
        return rf"\sum_{{{text},\ {self._print(cond)}}} \left({self._print(body)}\right)"


def sum_where(e: sp.Sum):
    """(condition, body) of a Sum whose body is [condition on its indices] * body, as
    `sum(i' in 0..N-1 where i' != i) B` is built; (None, the body) otherwise."""
    f = e.function
    bound = {s for s, _, _ in e.limits}
    factors = f.args if isinstance(f, sp.Mul) else (f,)
    conds = [a for a in factors if isinstance(a, Ind) and a.free_symbols & bound]
    if not conds:
        return None, f
    rest = [a for a in factors if a not in conds]
    return sp.And(*[c.args[0] for c in conds]), sp.Mul(*rest)


def _reads_hidden(e):
    """e with each read a distinct plain symbol: the same shape of sum and product."""
    return e.xreplace({a: sp.Dummy() for a in e.atoms(sp.Indexed)}) if e.has(sp.Indexed) else e


def to_text(e) -> str:
    return _Str().doprint(e).replace("**", "^")


def to_latex(e) -> str:
    return _Latex().doprint(e)
