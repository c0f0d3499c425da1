"""Expressions over numbers and index arrays, evaluated at compile time (vectorized numpy).

Used for consts, range bounds, domains, `where` conditions and index arithmetic: the parts of
a model that depend only on consts and bound indices. Nothing here touches Python's eval.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from . import ast as A
from .errors import UserError, did_you_mean


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def _softplus(x):
    x = np.asarray(x, dtype=float)
    return np.logaddexp(0.0, x)


# name -> (numpy function, number of arguments)
FUNCTIONS: dict[str, tuple[Callable, int]] = {
    "exp": (np.exp, 1), "log": (np.log, 1), "log1p": (np.log1p, 1), "sqrt": (np.sqrt, 1),
    "abs": (np.abs, 1), "tanh": (np.tanh, 1), "sigmoid": (_sigmoid, 1),
    "softplus": (_softplus, 1), "min": (np.minimum, 2), "max": (np.maximum, 2),
}

ARITH = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "%": np.mod,
    "^": np.power,
}
COMPARE = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
    ">": np.greater, ">=": np.greater_equal,
}


class StaticEnv:
    """Names visible to a compile-time expression: consts (numbers) and bound indices (arrays).

    `others` maps names of other kinds (var, param, ...) to their kind, for better messages.
    """

    def __init__(self, consts: Mapping[str, float], indices: Mapping[str, np.ndarray] | None = None,
                 others: Mapping[str, str] | None = None, what: str = "here"):
        self.consts = consts
        self.indices = dict(indices or {})
        self.others = others or {}
        self.what = what

    def bind(self, **arrays: np.ndarray) -> "StaticEnv":
        env = StaticEnv(self.consts, {**self.indices, **arrays}, self.others, self.what)
        return env

    def lookup(self, name: str, node: A.Node):
        if name in self.indices:
            return self.indices[name]
        if name in self.consts:
            return self.consts[name]
        if name in self.others:
            raise UserError(f"{self.others[name]} '{name}' cannot be used {self.what}: only consts"
                            " and bound indices are known at compile time", node.span)
        known = list(self.indices) + list(self.consts) + list(self.others)
        raise UserError(f"unknown name '{name}'{did_you_mean(name, known)}", node.span)


def _with_errors(fn, *args):
    with np.errstate(all="ignore"):
        return fn(*args)


def eval_static(expr: A.Expr, env: StaticEnv):
    """Evaluate a compile-time expression; a scalar or an array broadcast over bound indices."""
    if isinstance(expr, A.Num):
        return int(expr.value) if expr.is_int else expr.value
    if isinstance(expr, A.Name):
        return env.lookup(expr.name, expr)
    if isinstance(expr, A.Unary):
        x = eval_static(expr.operand, env)
        return np.negative(x) if expr.op == "-" else np.logical_not(x).astype(np.int64)
    if isinstance(expr, A.BinOp):
        left, right = eval_static(expr.left, env), eval_static(expr.right, env)
        if expr.op in ARITH:
            if expr.op in ("/", "%") and np.any(np.asarray(right) == 0):
                raise UserError("division by zero", expr.span)
            if expr.op == "^" and np.issubdtype(np.asarray(right).dtype, np.integer):
                right = np.asarray(right, dtype=float)
                out = _with_errors(ARITH["^"], left, right)
                return out
            return _with_errors(ARITH[expr.op], left, right)
        if expr.op in COMPARE:
            return COMPARE[expr.op](left, right).astype(np.int64)
        fn = np.logical_and if expr.op == "and" else np.logical_or
        return fn(left, right).astype(np.int64)
    if isinstance(expr, A.Call):
        if expr.func not in FUNCTIONS:
            raise UserError(f"unknown function '{expr.func}'"
                            f"{did_you_mean(expr.func, FUNCTIONS)}", expr.span)
        fn, arity = FUNCTIONS[expr.func]
        if len(expr.args) != arity:
            raise UserError(f"{expr.func} takes {arity} argument{'s' * (arity > 1)}, "
                            f"got {len(expr.args)}", expr.span)
        return _with_errors(fn, *(eval_static(a, env) for a in expr.args))
    if isinstance(expr, A.Indexed):
        env.lookup(expr.name, expr)  # raises the right message for vars/params
        raise UserError(f"'{expr.name}' cannot be indexed {env.what}", expr.span)
    if isinstance(expr, A.Sum):
        raise UserError(f"sum(...) cannot be used {env.what}", expr.span)
    raise TypeError(f"unknown node {expr!r}")


def eval_number(expr: A.Expr, env: StaticEnv) -> float:
    value = np.asarray(eval_static(expr, env))
    if value.ndim != 0:
        raise UserError(f"expected a single number {env.what}", expr.span)
    value = float(value)
    if not np.isfinite(value):
        raise UserError(f"this evaluates to {value}, not a finite number", expr.span)
    return value


def eval_int(expr: A.Expr, env: StaticEnv) -> int:
    value = eval_number(expr, env)
    if value != round(value):
        raise UserError(f"expected an integer {env.what}, got {value:g}", expr.span)
    return int(round(value))


def as_int_array(value, expr: A.Expr, what: str) -> np.ndarray:
    """An integer array from an evaluated index expression, or a UserError."""
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
    if np.any(bad):
        first = np.asarray(arr).ravel()[np.argmax(np.asarray(bad).ravel())]
        raise UserError(f"{what} must be an integer, got {first:g}", expr.span)
    return np.round(arr).astype(np.int64)


def free_names(expr: A.Expr, bound: frozenset = frozenset()) -> set[str]:
    """Names (plain or indexed) that an expression refers to, minus those bound by its sums."""
    out: set[str] = set()

    def walk(e, bound):
        if isinstance(e, A.Name):
            if e.name not in bound:
                out.add(e.name)
        elif isinstance(e, A.Indexed):
            out.add(e.name)
            for a in e.args:
                walk(a, bound)
        elif isinstance(e, A.Call):
            for a in e.args:
                walk(a, bound)
        elif isinstance(e, A.BinOp):
            walk(e.left, bound)
            walk(e.right, bound)
        elif isinstance(e, A.Unary):
            walk(e.operand, bound)
        elif isinstance(e, A.Sum):
            inner = bound | set(e.index.names())
            for b in e.index.bindings:
                if isinstance(b, A.RangeBinding):
                    walk(b.lo, bound)
                    walk(b.hi, bound)
            if e.index.where is not None:
                walk(e.index.where, inner)
            walk(e.body, inner)

    walk(expr, frozenset(bound))
    return out
