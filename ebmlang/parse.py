"""Phase 1: text -> AST. A lark LALR parser; the transformer only builds nodes."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast as A
from .errors import Source, Span, UserError

_OPEN = {"LPAR", "LSQB", "LBRACE"}
_CLOSE = {"RPAR", "RSQB", "RBRACE"}


class _BracketNewlines:
    """Post-lexer: drop newlines inside brackets, so statements continue there."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for tok in stream:
            if tok.type in _OPEN:
                depth += 1
            elif tok.type in _CLOSE:
                depth = max(0, depth - 1)
            elif tok.type == "_NL" and depth > 0:
                continue
            yield tok


def _grammar_text() -> str:
    try:
        return resources.files("ebmlang.grammar").joinpath("ebm.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        here = Path(__file__).resolve().parent.parent / "grammar" / "ebm.lark"
        return here.read_text()


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(_grammar_text(), parser="lalr", propagate_positions=True,
                postlex=_BracketNewlines(), maybe_placeholders=True)


def _span(meta) -> Span:
    if getattr(meta, "empty", False):
        return Span(0, 0)
    return Span(meta.line, meta.column, meta.end_line, meta.end_column,
                meta.start_pos, meta.end_pos)


def _tspan(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column, tok.start_pos, tok.end_pos)


_BIN = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "pow": "^",
        "and_": "and", "or_": "or"}


@v_args(meta=True, inline=True)
class _Build(Transformer):
    """Tree -> AST nodes. Builds only; every check happens in `check`."""

    def start(self, meta, *stmts):
        return A.Program(tuple(s for s in stmts if s is not None), span=_span(meta))

    # expressions
    def number(self, meta, tok):
        text = str(tok)
        is_int = text.isdigit()
        return A.Num(float(int(text)) if is_int else float(text), is_int, span=_tspan(tok))

    def name(self, meta, tok):
        return A.Name(str(tok), span=_tspan(tok))

    def indexed(self, meta, tok, *args):
        return A.Indexed(str(tok), tuple(args), span=_span(meta))

    def call(self, meta, tok, *args):
        return A.Call(str(tok), tuple(a for a in args if a is not None), span=_span(meta))

    def compare(self, meta, left, op, right):
        return A.BinOp(str(op), left, right, span=_span(meta))

    def neg(self, meta, x):
        return A.Unary("-", x, span=_span(meta))

    def not_(self, meta, x):
        return A.Unary("not", x, span=_span(meta))

    def sum_expr(self, meta, index, body):
        return A.Sum(index, body, span=_span(meta))

    def __default__(self, data, children, meta):
        if data in _BIN:
            left, right = children
            return A.BinOp(_BIN[data], left, right, span=_span(meta))
        return super().__default__(data, children, meta)

    # index bindings
    def range_binding(self, meta, tok, lo, hi):
        return A.RangeBinding(str(tok), lo, hi, span=_span(meta))

    def named_binding(self, meta, tok, target):
        return A.NamedBinding(str(tok), str(target), span=_span(meta))

    def tuple_binding(self, meta, *toks):
        *names, target = toks
        return A.TupleBinding(tuple(str(t) for t in names), str(target), span=_span(meta))

    def bindings(self, meta, *items):
        where = None
        if items and not isinstance(items[-1], (A.RangeBinding, A.NamedBinding, A.TupleBinding)):
            *items, where = items
        return A.Index(tuple(items), where, span=_span(meta))

    def index(self, meta, bindings):
        return bindings

    # domains
    def dom_bool(self, meta):
        return A.DomBool(span=_span(meta))

    def dom_spin(self, meta):
        return A.DomSpin(span=_span(meta))

    def dom_real(self, meta):
        return A.DomReal(span=_span(meta))

    def dom_cat(self, meta, k):
        return A.DomCat(k, span=_span(meta))

    def dom_range(self, meta, lo, hi):
        return A.DomRange(lo, hi, span=_span(meta))

    def dom_set(self, meta, *values):
        return A.DomSet(tuple(values), span=_span(meta))

    def dom_name(self, meta, tok):
        return A.DomName(str(tok), span=_tspan(tok))

    # statements
    def model_stmt(self, meta, tok):
        return A.ModelStmt(str(tok), span=_span(meta))

    def const_stmt(self, meta, tok, expr):
        return A.ConstStmt(str(tok), expr, span=_span(meta))

    def range_stmt(self, meta, tok, lo, hi):
        return A.RangeStmt(str(tok), lo, hi, span=_span(meta))

    def set_stmt(self, meta, tok, path):
        return A.SetStmt(str(tok), str(path)[1:-1], _tspan(path), span=_span(meta))

    def domain_stmt(self, meta, tok, dom):
        return A.DomainStmt(str(tok), dom, span=_span(meta))

    def var_stmt(self, meta, kind, tok, index, dom):
        return A.VarStmt(str(kind), str(tok), index, dom, span=_span(meta))

    def param_stmt(self, meta, tok, index, init):
        return A.ParamStmt(str(tok), index, init, span=_span(meta))

    def stat_stmt(self, meta, tok, index, expr):
        return A.StatStmt(str(tok), index, expr, span=_span(meta))

    def factor_stmt(self, meta, kind, tok, index, expr):
        return A.FactorStmt(str(kind), str(tok), index, expr, span=_span(meta))

    def sampler_stmt(self, meta, tok, method, args):
        return A.SamplerStmt(str(tok), str(method), tuple(args or ()), span=_span(meta))

    def method_args(self, meta, *kwargs):
        return tuple(k for k in kwargs if k is not None)

    def kwarg(self, meta, tok, expr):
        return (str(tok), expr)


_FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "STRING": 'a quoted path', "_NL": "end of line",
    "$END": "end of file", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='",
    "CMPOP": "a comparison", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'",
    "PERCENT": "'%'", "CIRCUMFLEX": "'^'", "VARKIND": "'var'", "FACTORKIND": "'factor'",
}


def _describe(term: str, grammar: Lark) -> str:
    if term in _FRIENDLY:
        return _FRIENDLY[term]
    try:
        pattern = grammar.get_terminal(term).pattern
        if pattern.type == "str":
            return f"'{pattern.value}'"
    except KeyError:
        pass
    return term.lower()


def _token_text(tok) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _syntax_error(err: UnexpectedInput, source: Source, grammar: Lark) -> UserError:
    line, col = max(getattr(err, "line", 1), 1), max(getattr(err, "column", 1), 1)
    if isinstance(err, UnexpectedCharacters):
        ch = source.text[err.pos_in_stream] if err.pos_in_stream < len(source.text) else "?"
        msg = f"unexpected character '{ch}'"
        if ch == "\"":
            msg += " (strings appear only in load(\"FILE.csv\"))"
        return UserError(msg, Span(line, col), source)
    expected = sorted({_describe(t, grammar) for t in getattr(err, "expected", ()) or ()})
    shown = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
    if isinstance(err, UnexpectedEOF):
        lines = source.text.splitlines() or [""]
        return UserError(f"unexpected end of file; expected {shown}",
                         Span(len(lines), len(lines[-1]) + 1), source)
    tok = err.token
    if tok.type == "$END":
        lines = source.text.splitlines() or [""]
        return UserError(f"unexpected end of file; expected {shown}",
                         Span(len(lines), len(lines[-1]) + 1), source)
    if tok.type == "_NL":
        # point at the end of the line, not at the next one
        line = tok.line
        text = source.line(line) or ""
        return UserError(f"statement ends too early; expected {shown}",
                         Span(line, len(text.rstrip()) + 1), source)
    msg = f"unexpected {_token_text(tok)}"
    if shown:
        msg += f"; expected {shown}"
    return UserError(msg, _tspan(tok), source)


def parse(text: str, name: str = "<string>") -> A.Program:
    """Parse model text into an AST; a syntax error is a UserError at its position."""
    source = Source(name, text)
    grammar = parser()
    try:
        tree = grammar.parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, source, grammar) from None
    return _Build().transform(tree)
