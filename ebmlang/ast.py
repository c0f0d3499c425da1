"""The abstract syntax tree: frozen dataclasses, each with the span of its source text."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span, NO_SPAN


@dataclass(frozen=True)
class Node:
    span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


# ---------------------------------------------------------------- expressions

@dataclass(frozen=True)
class Num(Node):
    value: float
    is_int: bool


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Indexed(Node):
    name: str
    args: tuple["Expr", ...]


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple["Expr", ...]


@dataclass(frozen=True)
class BinOp(Node):
    """Arithmetic (+ - * / ^ %), comparison (== != < <= > >=) or logic (and, or)."""

    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: "Expr"


@dataclass(frozen=True)
class Sum(Node):
    index: "Index"
    body: "Expr"


Expr = Num | Name | Indexed | Call | BinOp | Unary | Sum


# ---------------------------------------------------------------- index bindings

@dataclass(frozen=True)
class RangeBinding(Node):
    """`i in A..B`"""

    name: str
    lo: Expr
    hi: Expr


@dataclass(frozen=True)
class NamedBinding(Node):
    """`i in R` where R is a `range` or a one-column `set`."""

    name: str
    target: str


@dataclass(frozen=True)
class TupleBinding(Node):
    """`(u, v) in S` where S is a `set`."""

    names: tuple[str, ...]
    target: str


Binding = RangeBinding | NamedBinding | TupleBinding


@dataclass(frozen=True)
class Index(Node):
    bindings: tuple[Binding, ...]
    where: Expr | None = None

    def names(self) -> tuple[str, ...]:
        out: list[str] = []
        for b in self.bindings:
            out.extend(b.names if isinstance(b, TupleBinding) else (b.name,))
        return tuple(out)


# ---------------------------------------------------------------- domains

@dataclass(frozen=True)
class DomBool(Node):
    pass


@dataclass(frozen=True)
class DomSpin(Node):
    pass


@dataclass(frozen=True)
class DomReal(Node):
    pass


@dataclass(frozen=True)
class DomCat(Node):
    k: Expr


@dataclass(frozen=True)
class DomRange(Node):
    lo: Expr
    hi: Expr


@dataclass(frozen=True)
class DomSet(Node):
    values: tuple[Expr, ...]


@dataclass(frozen=True)
class DomName(Node):
    name: str


Domain = DomBool | DomSpin | DomReal | DomCat | DomRange | DomSet | DomName


# ---------------------------------------------------------------- statements

@dataclass(frozen=True)
class ModelStmt(Node):
    name: str


@dataclass(frozen=True)
class ConstStmt(Node):
    name: str
    expr: Expr


@dataclass(frozen=True)
class RangeStmt(Node):
    name: str
    lo: Expr
    hi: Expr


@dataclass(frozen=True)
class SetStmt(Node):
    name: str
    path: str
    path_span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class DomainStmt(Node):
    name: str
    domain: Domain


@dataclass(frozen=True)
class VarStmt(Node):
    kind: str  # "var" | "latent" | "input"
    name: str
    index: Index | None
    domain: Domain


@dataclass(frozen=True)
class ParamStmt(Node):
    name: str
    index: Index | None
    init: Expr


@dataclass(frozen=True)
class StatStmt(Node):
    name: str
    index: Index | None
    expr: Expr


@dataclass(frozen=True)
class FactorStmt(Node):
    kind: str  # "factor" (adds to log p) | "energy" (subtracts)
    name: str
    index: Index | None
    expr: Expr


@dataclass(frozen=True)
class SamplerStmt(Node):
    name: str
    method: str
    args: tuple[tuple[str, Expr], ...] = ()


Stmt = (ModelStmt | ConstStmt | RangeStmt | SetStmt | DomainStmt | VarStmt | ParamStmt
        | StatStmt | FactorStmt | SamplerStmt)


@dataclass(frozen=True)
class Program(Node):
    stmts: tuple[Stmt, ...]
