"""The abstract syntax tree: frozen dataclasses, each with the span of its source text."""

from __future__ import annotations

from dataclasses import dataclass, field

from ebmlang.errors import Span, NO_SPAN


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
class StmtNode(Node):
    """A statement: its span, and the span of the name it declares (for carets under it)."""

    name_span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class ModelStmt(StmtNode):
    name: str


@dataclass(frozen=True)
class ConstStmt(StmtNode):
    name: str
    expr: Expr


@dataclass(frozen=True)
class RangeStmt(StmtNode):
    name: str
    lo: Expr
    hi: Expr


@dataclass(frozen=True)
class SetStmt(StmtNode):
    name: str
    path: str
    path_span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class DomainStmt(StmtNode):
    name: str
    domain: Domain


@dataclass(frozen=True)
class VarStmt(StmtNode):
    kind: str  # "var" | "latent" | "input"
    name: str
    index: Index | None
    domain: Domain


@dataclass(frozen=True)
class ParamStmt(StmtNode):
    name: str
    index: Index | None
    init: Expr


@dataclass(frozen=True)
class StatStmt(StmtNode):
    name: str
    index: Index | None
    expr: Expr


@dataclass(frozen=True)
class FactorStmt(StmtNode):
    kind: str  # "factor" (adds to log p) | "energy" (subtracts)
    name: str
    index: Index | None
    expr: Expr


@dataclass(frozen=True)
class SamplerStmt(StmtNode):
    name: str
    method: str
    args: tuple[tuple[str, Expr], ...] = ()
    method_span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)
    arg_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False, kw_only=True)


Stmt = (ModelStmt | ConstStmt | RangeStmt | SetStmt | DomainStmt | VarStmt | ParamStmt
        | StatStmt | FactorStmt | SamplerStmt)


@dataclass(frozen=True)
class Program(Node):
    stmts: tuple[Stmt, ...]
