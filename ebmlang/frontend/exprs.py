"""Expressions over numbers and index arrays, evaluated at compile time (vectorized numpy).

Used for consts, range bounds, domains, `where` conditions and index arithmetic: the parts of
a model that depend only on consts and bound indices. Nothing here touches Python's eval.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ebmlang.frontend import ast as A
from ebmlang.errors import UserError, did_you_mean


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

    def known(self, name: str):
        """The value of a bound index or const, None for any other name."""
        return self.indices.get(name, self.consts.get(name))

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


BIG = 2.0 ** 62  # integers beyond this are not indices, and int64 arithmetic near it wraps


def as_number(value: float, is_int: bool) -> int | float:
    """An int when `value` is meant as an integer and is exact as one, else a float."""
    return int(value) if is_int and abs(value) < 2 ** 53 else float(value)


def _arith(op: str, left, right):
    """An arithmetic operator; integer results that would wrap around in int64 become floats."""
    out = _with_errors(ARITH[op], left, right)
    if op in "+-*" and np.asarray(out).dtype.kind in "iu":
        exact = _with_errors(ARITH[op], np.asarray(left, float), np.asarray(right, float))
        if np.any(np.abs(exact) > BIG):
            return exact
    return out


def _instance(mask: np.ndarray, label: Callable[[int], str] | None) -> str:
    """` in factor f[2]`: the first instance where `mask` holds, when the value is per instance."""
    if label is None or np.ndim(mask) == 0:
        return ""
    return f" in {label(int(np.argmax(np.ravel(mask))))}"


def check_divisor(expr: A.BinOp, right, label: Callable[[int], str] | None = None) -> None:
    if expr.op in ("/", "%") and np.any(zero := np.asarray(right) == 0):
        raise UserError(f"division by zero{_instance(zero, label)}", expr.span)


def check_finite(expr: A.Expr, value, label: Callable[[int], str] | None = None) -> None:
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and not np.all(finite := np.isfinite(arr)):
        first = float(arr.ravel()[np.argmax(~finite.ravel())])
        raise UserError(f"this evaluates to {first}{_instance(~finite, label)}, not a finite "
                        "number", expr.span)


def operands(expr: A.Expr) -> tuple[A.Expr, ...]:
    """The operands of an operator or a function call."""
    if isinstance(expr, A.Unary):
        return (expr.operand,)
    if isinstance(expr, A.BinOp):
        return (expr.left, expr.right)
    return expr.args


def check_call(expr: A.Call) -> None:
    if expr.func not in FUNCTIONS:
        raise UserError(f"unknown function '{expr.func}'"
                        f"{did_you_mean(expr.func, FUNCTIONS)}", expr.span)
    arity = FUNCTIONS[expr.func][1]
    if len(expr.args) != arity:
        raise UserError(f"{expr.func} takes {arity} argument{'s' * (arity > 1)}, "
                        f"got {len(expr.args)}", expr.span)


def apply(expr: A.Unary | A.BinOp | A.Call, args: list,
          label: Callable[[int], str] | None = None):
    """The value of an operator or call whose operands evaluated to `args`."""
    if isinstance(expr, A.Unary):
        x = args[0]
        return np.negative(x) if expr.op == "-" else np.logical_not(x).astype(np.int64)
    if isinstance(expr, A.Call):
        return _with_errors(FUNCTIONS[expr.func][0], *args)
    left, right = args
    if expr.op in ARITH:
        check_divisor(expr, right, label)
        if expr.op == "^" and np.issubdtype(np.asarray(right).dtype, np.integer):
            right = np.asarray(right, dtype=float)
        return _arith(expr.op, left, right)
    if expr.op in COMPARE:
        return COMPARE[expr.op](left, right).astype(np.int64)
    fn = np.logical_and if expr.op == "and" else np.logical_or
    return fn(left, right).astype(np.int64)


def eval_static(expr: A.Expr, env: StaticEnv):
    """Evaluate a compile-time expression; a scalar or an array broadcast over bound indices."""
    if isinstance(expr, A.Num):
        return as_number(expr.value, expr.is_int)
    if isinstance(expr, A.Name):
        return env.lookup(expr.name, expr)
    if isinstance(expr, (A.Unary, A.BinOp, A.Call)):
        if isinstance(expr, A.Call):
            check_call(expr)
        return apply(expr, [eval_static(a, env) for a in operands(expr)])
    if isinstance(expr, A.Indexed):
        env.lookup(expr.name, expr)  # raises the right message for vars/params
        raise UserError(f"'{expr.name}' cannot be indexed {env.what}", expr.span)
    if isinstance(expr, A.Sum):
        raise UserError(f"sum(...) cannot be used {env.what}", expr.span)
    raise TypeError(f"unknown node {expr!r}")


def fold(expr: A.Expr, env: StaticEnv, label: Callable[[int], str] | None = None):
    """The value of `expr` if it reads only consts and bound indices, else None; on the way,
    a UserError at the first such sub-expression that is not finite or divides by zero,
    naming the instance (`label(k)`) when the value depends on the bound indices."""
    if isinstance(expr, A.Num):
        return as_number(expr.value, expr.is_int)
    if isinstance(expr, A.Name):
        return env.known(expr.name)
    if not isinstance(expr, (A.Unary, A.BinOp, A.Call)):
        return None  # a read: its index is checked where it is grounded
    args = [fold(a, env, label) for a in operands(expr)]
    if isinstance(expr, A.BinOp) and args[1] is not None:
        check_divisor(expr, args[1], label)
    if any(a is None for a in args) or (isinstance(expr, A.Call) and
                                        FUNCTIONS.get(expr.func, (0, -1))[1] != len(args)):
        return None
    value = apply(expr, args, label)
    check_finite(expr, value, label)
    return value


def eval_number(expr: A.Expr, env: StaticEnv) -> float:
    value = np.asarray(eval_static(expr, env))
    if value.ndim != 0:
        raise UserError(f"expected a single number {env.what}", expr.span)
    check_finite(expr, value.astype(float))
    return float(value)


def eval_int(expr: A.Expr, env: StaticEnv) -> int:
    value = eval_number(expr, env)
    if value != round(value):
        raise UserError(f"expected an integer {env.what}, got {value:g}", expr.span)
    return int(round(value))


def as_int_array(value, expr: A.Expr, what: str,
                 label: Callable[[int], str] | None = None) -> np.ndarray:
    """An integer array from an evaluated index expression, or a UserError (naming the
    instance, `label(k)`, when the value is per instance)."""
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    arr = arr.astype(float)
    with np.errstate(invalid="ignore"):
        fractional = ~np.isfinite(arr) | (arr != np.round(arr))
        bad = fractional | (np.abs(arr) > BIG)
    if np.any(bad):
        k = int(np.argmax(bad.ravel()))
        v = float(arr.ravel()[k])
        where = _instance(bad, label)
        why = f"must be an integer, got {v:g}{where}" if fractional.ravel()[k] else \
            f"is {v:g}{where}, which is too {'large' if v > 0 else 'small'}"
        raise UserError(f"{what} {why}", expr.span)
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
