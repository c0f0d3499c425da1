"""Phase 2: AST -> checked declarations. Names resolved, consts evaluated, domains and index
spaces built. Factor and stat expressions are checked later, when they are grounded."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ebmlang.frontend import ast as A
from ebmlang.errors import Note, Source, Span, UserError, did_you_mean
from ebmlang.frontend.exprs import FUNCTIONS, StaticEnv, as_number, eval_int, eval_number
from ebmlang.io.setcsv import read_set_csv
from ebmlang.frontend.space import RangeDecl, Space, build_space

MAX_DOMAIN = 4096  # values a finite domain may have for Gibbs enumeration


@dataclass(frozen=True)
class Domain:
    kind: str                       # bool | spin | cat | range | set | real
    values: np.ndarray | None       # sorted values of a finite domain
    text: str

    @property
    def finite(self) -> bool:
        return self.values is not None

    @property
    def size(self) -> int:
        return len(self.values) if self.values is not None else 0

    @property
    def integer(self) -> bool:
        return self.values is not None and bool(np.all(self.values == np.round(self.values)))


@dataclass
class VarFamily:
    name: str
    kind: str          # var | latent | input
    domain: Domain
    space: Space
    offset: int        # first position in the state vector
    span: Span

    @property
    def sampled(self) -> bool:
        return self.kind != "input"


@dataclass
class ParamFamily:
    name: str
    space: Space
    init: A.Expr
    offset: int        # first position in the flat parameter vector
    span: Span

    @property
    def size(self) -> int:
        return int(np.prod(self.space.shape)) if self.space.shape else 1


@dataclass
class StatDecl:
    name: str
    index: A.Index | None
    space: Space
    expr: A.Expr
    span: Span


@dataclass
class FactorDecl:
    name: str
    kind: str          # factor | energy
    index: A.Index | None
    expr: A.Expr
    span: Span


@dataclass
class SamplerDecl:
    name: str
    method: str
    args: dict
    span: Span


@dataclass
class CheckedModel:
    name: str
    source: Source
    consts: dict[str, float]
    ranges: dict[str, RangeDecl]
    sets: dict[str, np.ndarray]
    vars: dict[str, VarFamily]
    params: dict[str, ParamFamily]
    stats: dict[str, StatDecl]
    factors: list[FactorDecl]
    samplers: dict[str, SamplerDecl]
    n_state: int
    n_theta: int
    kinds: dict[str, str] = field(default_factory=dict)  # every declared name -> its kind
    overrides: dict[str, float] = field(default_factory=dict)  # consts set from outside

    def env(self, what: str = "here") -> StaticEnv:
        others = {k: v for k, v in self.kinds.items() if k not in self.consts}
        return StaticEnv(self.consts, None, others, what)


_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def parse_override(text: str) -> tuple[str, float]:
    """`NAME=VALUE` from --set; VALUE must be a plain number (never evaluated)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UserError(f"--set expects NAME=VALUE, got '{text}'")
    if not _NUMBER.match(value):
        raise UserError(f"--set {name}: '{value}' is not a number")
    number = int(value) if re.fullmatch(r"[+-]?[0-9]+", value) else float(value)
    return name, outside_value(name, number, value)


def outside_value(name: str, value: int | float, text: str | None = None) -> int | float:
    """A const's value given from outside the model: finite; an int if it is an exact one."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        shown = str(text or value)
        shown = shown if len(shown) <= 24 else shown[:20] + "..."
        raise UserError(f"--set {name}: '{shown}' is not a finite number")
    return as_number(number, isinstance(value, (int, np.integer)))


_KIND_OF = {A.ConstStmt: "const", A.RangeStmt: "range", A.SetStmt: "set",
            A.DomainStmt: "domain", A.ParamStmt: "param", A.StatStmt: "stat"}


def _declared(program: A.Program) -> dict[str, tuple[str, A.Stmt]]:
    names: dict[str, tuple[str, A.Stmt]] = {}
    for i, st in enumerate(program.stmts):
        if isinstance(st, A.ModelStmt):
            if i != 0 and isinstance(program.stmts[0], A.ModelStmt):
                raise UserError(f"'model' given twice (first on line {program.stmts[0].span.line})",
                                st.span)
            if i != 0:
                raise UserError("'model NAME' must be the first statement", st.span)
            continue
        if isinstance(st, A.SamplerStmt):
            continue
        kind = st.kind if isinstance(st, (A.VarStmt, A.FactorStmt)) else _KIND_OF[type(st)]
        if st.name in FUNCTIONS or st.name in ("normal", "uniform"):
            raise UserError(f"'{st.name}' is a built-in function and cannot be declared",
                            st.name_span)
        if st.name in names:
            prev = names[st.name][1].span
            raise UserError(f"'{st.name}' is already declared (as a {names[st.name][0]} on line "
                            f"{prev.line})", st.name_span)
        names[st.name] = (kind, st)
    return names


def _eval_consts(program, kinds, overrides, source) -> dict[str, float]:
    consts: dict[str, float] = {}
    for name in overrides:
        if name not in kinds or kinds[name][0] != "const":
            if name in kinds:
                raise UserError(f"--set {name}: '{name}' is a {kinds[name][0]}, not a const")
            known = [n for n, (k, _) in kinds.items() if k == "const"]
            hint = did_you_mean(name, known) or (f"; the consts are: {', '.join(known)}" if known
                                                 else "; the model has no consts")
            raise UserError(f"--set {name}: the model has no const named '{name}'{hint}")
    others = {n: k for n, (k, _) in kinds.items() if k != "const"}
    for st in program.stmts:
        if isinstance(st, A.ConstStmt):
            if st.name in overrides:
                consts[st.name] = outside_value(st.name, overrides[st.name])
            else:
                env = StaticEnv(consts, None, others, "in a const")
                v = eval_number(st.expr, env)
                consts[st.name] = as_number(v, v == int(v) and _is_int_expr(st.expr, consts))
    return consts


def _is_int_expr(e: A.Expr, consts) -> bool:
    if isinstance(e, A.Num):
        return e.is_int
    if isinstance(e, A.Name):
        return isinstance(consts.get(e.name), int)
    if isinstance(e, A.Unary):
        return e.op == "-" and _is_int_expr(e.operand, consts)
    if isinstance(e, A.BinOp) and e.op in ("+", "-", "*", "%"):
        return _is_int_expr(e.left, consts) and _is_int_expr(e.right, consts)
    return False


def _domain(d: A.Domain, env: StaticEnv, domains: dict[str, Domain]) -> Domain:
    if isinstance(d, A.DomBool):
        return Domain("bool", np.array([0.0, 1.0]), "bool")
    if isinstance(d, A.DomSpin):
        return Domain("spin", np.array([-1.0, 1.0]), "spin")
    if isinstance(d, A.DomReal):
        return Domain("real", None, "real")
    if isinstance(d, A.DomName):
        if d.name not in domains:
            raise UserError(f"unknown domain '{d.name}'"
                            f"{did_you_mean(d.name, list(domains) + ['bool', 'spin', 'real'])}",
                            d.span)
        return domains[d.name]
    if isinstance(d, A.DomCat):
        k = eval_int(d.k, env)
        if k < 1:
            raise UserError(f"cat(K) needs K >= 1, got {k}", d.span)
        if k > MAX_DOMAIN:
            raise UserError(f"cat({k}) has {k:,} values; finite domains may have at most "
                            f"{MAX_DOMAIN}", d.span)
        values = np.arange(k, dtype=float)
        text = f"cat({k})"
    elif isinstance(d, A.DomRange):
        lo, hi = eval_int(d.lo, env), eval_int(d.hi, env)
        if hi < lo:
            raise UserError(f"empty domain {lo}..{hi}", d.span)
        if hi - lo + 1 > MAX_DOMAIN:
            raise UserError(f"domain {lo}..{hi} has {hi - lo + 1:,} values; finite domains may "
                            f"have at most {MAX_DOMAIN}", d.span)
        values = np.arange(lo, hi + 1, dtype=float)
        text = f"{lo}..{hi}"
    else:
        raw = [eval_number(v, env) for v in d.values]
        if len(set(raw)) != len(raw):
            raise UserError("a domain lists the same value twice", d.span)
        values = np.array(sorted(raw), dtype=float)
        text = "{" + ", ".join(f"{v:g}" for v in values) + "}"
        return Domain("set", values, text)
    if len(values) > MAX_DOMAIN:
        raise UserError(f"domain has {len(values):,} values; at most {MAX_DOMAIN}", d.span)
    return Domain(type(d).__name__[3:].lower(), values, text)


def _index_text(source: Source, index: A.Index | None) -> str:
    if index is None or index.span.end <= index.span.start:
        return ""
    return " ".join(source.text[index.span.start:index.span.end].split())


def shown_path(path: Path) -> str:
    """`path` relative to the current directory when it is under it, else absolute."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load_set(st: A.SetStmt, base: Path, source: Source) -> np.ndarray:
    path = (base / st.path) if not Path(st.path).is_absolute() else Path(st.path)
    if not path.exists():
        where = shown_path(path.parent)
        where = "the current directory" if where == "." else where
        raise UserError(f"set file '{st.path}' not found (looked in {where})", st.path_span)
    try:
        return read_set_csv(shown_path(path))
    except UserError as err:
        raise err.with_notes(Note(f"set '{st.name}' is loaded here", st.path_span,
                                  source)) from None


def explain_overrides(err: UserError, source: Source, overrides: dict[str, float]) -> UserError:
    """Add a note for each const set from outside the model that the error's span mentions."""
    span = err.span
    if err.source not in (None, source) or err.file is not None or span is None \
            or span.end <= span.start:
        return err
    text = source.text[span.start:span.end]
    for name, value in overrides.items():
        if re.search(rf"\b{re.escape(name)}\b", text):
            err.with_notes(f"{name} = {value:g} was set from outside the model "
                           f"(--set {name}={value:g})")
    return err


def check(program: A.Program, source: Source, base: Path,
          overrides: dict[str, float] | None = None,
          sets: dict[str, np.ndarray] | None = None) -> CheckedModel:
    """Resolve and evaluate the declarations of a parsed model. `sets` gives the rows of
    `set` statements directly (a model built in memory, e.g. from a UAI file)."""
    overrides = dict(overrides or {})
    try:
        return _check(program, source, base, overrides, sets or {})
    except UserError as err:
        raise explain_overrides(err, source, overrides) from None


def _check(program: A.Program, source: Source, base: Path,
           overrides: dict[str, float], preloaded: dict[str, np.ndarray]) -> CheckedModel:
    decls = _declared(program)
    kinds = {n: k for n, (k, _) in decls.items()}
    consts = _eval_consts(program, decls, overrides, source)
    others = {n: k for n, k in kinds.items() if k != "const"}
    env = StaticEnv(consts, None, others, "here")
    model = CheckedModel(
        name=next((s.name for s in program.stmts if isinstance(s, A.ModelStmt)),
                  Path(source.name).stem), source=source, consts=consts, ranges={}, sets={},
        vars={}, params={}, stats={}, factors=[], samplers={}, n_state=0, n_theta=0, kinds=kinds,
        overrides=overrides)
    domains: dict[str, Domain] = {}
    for st in program.stmts:
        if isinstance(st, A.RangeStmt):
            model.ranges[st.name] = RangeDecl(st.name, eval_int(st.lo, env), eval_int(st.hi, env))
        elif isinstance(st, A.SetStmt):
            model.sets[st.name] = preloaded[st.name] if st.name in preloaded \
                else _load_set(st, base, source)
        elif isinstance(st, A.DomainStmt):
            domains[st.name] = _domain(st.domain, env, domains)
    for st in program.stmts:
        if isinstance(st, (A.VarStmt, A.ParamStmt, A.StatStmt)):
            text = _index_text(source, st.index)
            space = build_space(st.index, env, model.ranges, model.sets, f"'{st.name}'", text)
            if space.size == 0:
                raise UserError(f"'{st.name}' has no elements: its index is empty", st.span)
        if isinstance(st, A.VarStmt):
            dom = _domain(st.domain, env, domains)
            model.vars[st.name] = VarFamily(st.name, st.kind, dom, space, model.n_state, st.span)
            model.n_state += space.size
        elif isinstance(st, A.ParamStmt):
            p = ParamFamily(st.name, space, st.init, model.n_theta, st.span)
            model.params[st.name] = p
            model.n_theta += p.size
        elif isinstance(st, A.StatStmt):
            model.stats[st.name] = StatDecl(st.name, st.index, space, st.expr, st.span)
        elif isinstance(st, A.FactorStmt):
            model.factors.append(FactorDecl(st.name, st.kind, st.index, st.expr, st.span))
        elif isinstance(st, A.SamplerStmt):
            model.samplers[st.name] = _sampler(st, model, env)
    if not any(v.sampled for v in model.vars.values()):
        raise UserError("the model declares no random variables (var or latent)",
                        program.stmts[0].span if program.stmts else Span(1, 1))
    return model


SAMPLERS = {"gibbs": (), "mh": ("scale",), "swendsen_wang": (), "wolff": (), "hmc": ("steps",),
            "mala": ()}  # method -> its arguments


def _sampler(st: A.SamplerStmt, model: CheckedModel, env: StaticEnv) -> SamplerDecl:
    fam = model.vars.get(st.name)
    if fam is None:
        known = [n for n, v in model.vars.items() if v.sampled]
        raise UserError(f"sampler for unknown variable '{st.name}'{did_you_mean(st.name, known)}",
                        st.name_span)
    if not fam.sampled:
        raise UserError(f"'{st.name}' is an input: it is given, never sampled", st.name_span)
    if st.name in model.samplers:
        raise UserError(f"a sampler for '{st.name}' is already given", st.name_span)
    if st.method not in SAMPLERS:
        raise UserError(f"unknown sampler '{st.method}'{did_you_mean(st.method, SAMPLERS)};"
                        f" available: {', '.join(SAMPLERS)}", st.method_span)
    args: dict[str, float] = {}
    for (k, v), span in zip(st.args, st.arg_spans or [st.span] * len(st.args)):
        if k not in SAMPLERS[st.method]:
            takes = ", ".join(SAMPLERS[st.method])
            raise UserError(f"sampler '{st.method}' takes no argument '{k}'"
                            + (f" (it takes: {takes})" if takes else ""), span)
        if k in args:
            raise UserError(f"argument '{k}' is given twice", span)
        args[k] = eval_number(v, env)
        if k == "scale" and args[k] <= 0:
            raise UserError(f"the scale of mh must be > 0, got {args[k]:g}", v.span)
        if k == "steps" and (args[k] < 1 or int(args[k]) != args[k]):
            raise UserError(f"the steps of hmc must be an integer >= 1, got {args[k]:g}", v.span)
    return SamplerDecl(st.name, st.method, args, st.span)
