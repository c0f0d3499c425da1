"""Phase 1: text -> AST. A lark LALR parser; the transformer only builds nodes."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from ebmlang.frontend import ast as A
from ebmlang.errors import Source, Span, UserError

_OPEN = {"LPAR", "LSQB", "LBRACE"}
_CLOSE = {"RPAR", "RSQB", "RBRACE"}

# Words of the grammar. The contextual lexer reads one as a NAME where the parser cannot take
# the keyword (`var in : bool`); the post-lexer refuses that.
KEYWORDS = frozenset({
    "in", "where", "sum", "and", "or", "not", "load",
    "model", "const", "range", "set", "domain", "var", "latent", "input", "param", "stat",
    "factor", "energy", "sampler", "bool", "spin", "real", "cat",
})


class _BracketNewlines:
    """Post-lexer: drop newlines inside brackets, so statements continue there; refuse
    keywords used as names."""

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
            elif tok.type == "NAME" and tok in KEYWORDS:
                raise UserError(f"'{tok}' is a keyword and cannot be a name", _tspan(tok))
            yield tok


def _grammar_text() -> str:
    try:
        return resources.files("ebmlang.grammar").joinpath("ebm.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        here = Path(__file__).resolve().parents[2] / "grammar" / "ebm.lark"  # a source checkout
        return here.read_text()


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser. Its tables are cached on disk (lark checks the file against a hash of
    the grammar, the options and its version): building them takes 0.8 s, loading 0.05 s."""
    return Lark(_grammar_text(), parser="lalr", propagate_positions=True,
                postlex=_BracketNewlines(), maybe_placeholders=True, cache=_cache_file())


def _cache_file() -> str | bool:
    from ebmlang.cachedir import cache_dir
    try:
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        return str(directory / "parser.lark-tables")
    except OSError:
        return False


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
        return A.ModelStmt(str(tok), span=_span(meta), name_span=_tspan(tok))

    def const_stmt(self, meta, tok, expr):
        return A.ConstStmt(str(tok), expr, span=_span(meta), name_span=_tspan(tok))

    def range_stmt(self, meta, tok, lo, hi):
        return A.RangeStmt(str(tok), lo, hi, span=_span(meta), name_span=_tspan(tok))

    def set_stmt(self, meta, tok, path):
        return A.SetStmt(str(tok), str(path)[1:-1], _tspan(path), span=_span(meta),
                         name_span=_tspan(tok))

    def domain_stmt(self, meta, tok, dom):
        return A.DomainStmt(str(tok), dom, span=_span(meta), name_span=_tspan(tok))

    def var_stmt(self, meta, kind, tok, index, dom):
        return A.VarStmt(str(kind), str(tok), index, dom, span=_span(meta),
                         name_span=_tspan(tok))

    def param_stmt(self, meta, tok, index, init):
        return A.ParamStmt(str(tok), index, init, span=_span(meta), name_span=_tspan(tok))

    def stat_stmt(self, meta, tok, index, expr):
        return A.StatStmt(str(tok), index, expr, span=_span(meta), name_span=_tspan(tok))

    def factor_stmt(self, meta, kind, tok, index, expr):
        return A.FactorStmt(str(kind), str(tok), index, expr, span=_span(meta),
                            name_span=_tspan(tok))

    def sampler_stmt(self, meta, tok, method, args):
        args = args or ()
        return A.SamplerStmt(str(tok), str(method), tuple((k, e) for k, e, _ in args),
                             span=_span(meta), name_span=_tspan(tok), method_span=_tspan(method),
                             arg_spans=tuple(sp for _, _, sp in args))

    def method_args(self, meta, *kwargs):
        return tuple(k for k in kwargs if k is not None)

    def kwarg(self, meta, tok, expr):
        return (str(tok), expr, _span(meta))


_FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "STRING": 'a quoted path', "_NL": "end of line",
    "$END": "end of file", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='",
    "CMPOP": "a comparison", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'",
    "PERCENT": "'%'", "CIRCUMFLEX": "'^'", "VARKIND": "'var'", "FACTORKIND": "'factor'",
}
# the separator after `KEYWORD NAME [INDEX]`, by the statement's first token
_SEPARATOR = {"VARKIND": ":", "FACTORKIND": ":", "SAMPLER": ":", "CONST": "=", "PARAM": "=",
              "STAT": "=", "RANGE": "=", "SET": "=", "DOMAIN": "="}
_DOMAIN_HINT = "a domain (bool, spin, real, cat(K), A..B, {...} or a domain name)"
_WHERE_HINT = ("'where' belongs inside the index brackets: "
               "factor f[i in 0..N-1 where i > 0] : ...")
_CHAIN_HINT = "comparisons cannot be chained; write a < b and b < c"


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


def _statement(stack: list) -> list:
    """The parser's stack items of the statement being parsed (after the last whole one)."""
    start = 0
    for k, v in enumerate(stack):
        if (isinstance(v, Tree) and v.data.startswith("__start")) or \
                (isinstance(v, Token) and v.type == "_NL"):
            start = k + 1
    return stack[start:]


def _open_items(items: list) -> list:
    """The items after the innermost bracket still open (all of them when none is)."""
    depth = 0
    for k in range(len(items) - 1, -1, -1):
        t = items[k].type if isinstance(items[k], Token) else None
        if t in _CLOSE:
            depth += 1
        elif t in _OPEN:
            if depth == 0:
                return items[k + 1:]
            depth -= 1
    return items


def _is_open(items: list) -> bool:
    return len(_open_items(items)) != len(items)


def _has(items: list, *types: str) -> bool:
    return any(isinstance(v, Token) and v.type in types for v in items)


def _binding_hint(tok: Token, items: list, source: Source) -> str:
    """` (write i in 0..3)` for `[i = 0..3]`."""
    if not items or not isinstance(items[-1], Token) or items[-1].type != "NAME" \
            or tok.type in ("_NL", "$END"):
        return ""
    rest = source.text[tok.end_pos if tok.type in ("EQUAL", "COLON") else tok.start_pos:]
    rest = re.split(r"[,\]\n]|\bwhere\b", rest, maxsplit=1)[0].strip()
    return f" (write {items[-1]} in {rest})" if rest else ""


def _expected(choices: set[str], items: list, tok: Token, source: Source,
              grammar: Lark) -> str:
    """What the parser wanted, said as the user would: `expected ':'`, `expected a domain`."""
    first = items[0].type if items and isinstance(items[0], Token) else None
    if choices & {"COLON", "EQUAL"} and choices <= {"COLON", "EQUAL", "LSQB"} \
            and first in _SEPARATOR and not _has(items, "COLON", "EQUAL"):
        return f"expected '{_SEPARATOR[first]}'"
    if choices == {"IN"}:
        return "expected 'in'" + _binding_hint(tok, items, source)
    if "BOOL" in choices:
        return f"expected {_DOMAIN_HINT}"
    shown = sorted({_describe(t, grammar) for t in choices})
    return "expected " + ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "")


def _bad_character(err: UnexpectedCharacters, source: Source) -> UserError:
    ch = source.text[err.pos_in_stream] if err.pos_in_stream < len(source.text) else "?"
    quote = '"' if ch == "'" else "'"
    msg = f"unexpected character {quote}{ch}{quote}"
    if ch == "\"":
        msg += " (strings appear only in load(\"FILE.csv\"))"
    return UserError(msg, Span(max(err.line, 1), max(err.column, 1)), source)


def _end_span(source: Source, line: int | None = None) -> Span:
    """Just after the last character of `line` (default: the last line)."""
    lines = source.text.splitlines() or [""]
    line = len(lines) if line is None else line
    return Span(line, len((source.line(line) or "").rstrip()) + 1)


def _syntax_error(err: UnexpectedInput, source: Source, grammar: Lark) -> UserError:
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(err, source)
    tok = getattr(err, "token", None) or Token("$END", "")
    ip = getattr(err, "interactive_parser", None)
    if ip is not None:
        items = _statement(ip.parser_state.value_stack)
        choices = {t for t in ip.choices() if t.isupper()}
    else:
        items, choices = [], set(getattr(err, "expected", ()) or ())
    if tok.type == "CMPOP" and "CMPOP" not in choices and _has(_open_items(items), "CMPOP"):
        return UserError(_CHAIN_HINT, _tspan(tok), source)
    if tok.type == "WHERE" and not _is_open(items):
        return UserError(_WHERE_HINT, _tspan(tok), source)
    if tok.type in _CLOSE and not _is_open(items):
        return UserError(f"unexpected '{tok}': no bracket is open", _tspan(tok), source)
    expected = _expected(choices, items, tok, source, grammar)
    if tok.type == "$END":
        return UserError(f"unexpected end of file; {expected}", _end_span(source), source)
    if tok.type == "_NL":  # point at the end of the line, not at the next one
        return UserError(f"statement ends too early; {expected}", _end_span(source, tok.line),
                         source)
    if tok.type == "STRING":
        return UserError(f"unexpected string {tok}: strings appear only in load(\"FILE.csv\")",
                         _tspan(tok), source)
    return UserError(f"unexpected {_token_text(tok)}; {expected}", _tspan(tok), source)


def parse(text: str, name: str = "<string>") -> A.Program:
    """Parse model text into an AST; a syntax error is a UserError at its position."""
    source = Source(name, text)
    grammar = parser()
    try:
        tree = grammar.parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, source, grammar) from None
    except UserError as err:  # from the post-lexer
        raise err.with_source(source) from None
    return _Build().transform(tree)
