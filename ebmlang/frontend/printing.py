"""Print AST expressions back as ebmlang text, with the fewest parentheses that keep meaning."""

from __future__ import annotations

from ebmlang.frontend import ast as A

# binding strength, loosest first (the order of the grammar)
_PREC = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "neg": 7, "^": 8}
_ATOM = 9


def _num(e: A.Num) -> str:
    if e.is_int:
        return str(int(e.value))
    return repr(e.value)


def _prec(e: A.Expr) -> int:
    if isinstance(e, A.BinOp):
        return _PREC[e.op]
    if isinstance(e, A.Unary):
        return _PREC["neg"] if e.op == "-" else _PREC["not"]
    if isinstance(e, A.Sum):
        return 0
    return _ATOM


def index_text(index: A.Index) -> str:
    parts = []
    for b in index.bindings:
        if isinstance(b, A.RangeBinding):
            parts.append(f"{b.name} in {expr_text(b.lo)}..{expr_text(b.hi)}")
        elif isinstance(b, A.NamedBinding):
            parts.append(f"{b.name} in {b.target}")
        else:
            parts.append(f"({', '.join(b.names)}) in {b.target}")
    text = ", ".join(parts)
    if index.where is not None:
        text += f" where {expr_text(index.where)}"
    return text


def expr_text(e: A.Expr) -> str:
    if isinstance(e, A.Num):
        return _num(e)
    if isinstance(e, A.Name):
        return e.name
    if isinstance(e, A.Indexed):
        return f"{e.name}[{', '.join(expr_text(a) for a in e.args)}]"
    if isinstance(e, A.Call):
        return f"{e.func}({', '.join(expr_text(a) for a in e.args)})"
    if isinstance(e, A.Sum):
        return f"sum({index_text(e.index)}) {expr_text(e.body)}"
    if isinstance(e, A.Unary):
        inner = expr_text(e.operand)
        need = _prec(e.operand) < _prec(e) or isinstance(e.operand, A.Sum)
        if e.op == "-":
            return f"-({inner})" if need else f"-{inner}"
        return f"not ({inner})" if _prec(e.operand) < _prec(e) else f"not {inner}"
    p = _PREC[e.op]
    left, right = expr_text(e.left), expr_text(e.right)
    lp, rp = _prec(e.left), _prec(e.right)
    right_assoc = e.op == "^"
    if lp < p or (right_assoc and lp == p) or isinstance(e.left, A.Sum):
        left = f"({left})"
    if rp < p or (not right_assoc and rp == p and not _assoc_ok(e.op, e.right)):
        right = f"({right})"
    return f"{left} {e.op} {right}"


def _assoc_ok(op: str, right: A.Expr) -> bool:
    """a + (b + c) and a * (b * c) print without parentheses."""
    return isinstance(right, A.BinOp) and op in ("+", "*") and right.op == op
