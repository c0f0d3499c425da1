"""Terms that are tensor contractions, evaluated with einsum (BLAS) instead of per instance.

A term qualifies when its instances fill a box (plain ranges, no `where`), its body is a
product of a constant and reads, each read indexed by plain bound indices covering its whole
family, and no family is read twice. The RBM's `W[i, j] * v[i] * h[j]` is one: its total is
`einsum('ab,za,zb->z', W, v, h)`, the field it puts on h is `v @ W`, and its sufficient
statistic for W is `v^T h`. This is the "matrix product when compiled" of DESIGN.md; every other
term keeps the general per-instance kernel, and both give the same numbers (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ebmlang.frontend import ast as A
from ebmlang.middle.contract import Contraction, cached

_LETTERS = "abcdefghijklmnopqrstuvwxy"   # z is the chain axis


@dataclass
class Operand:
    kind: str           # "var" | "param"
    family: str
    offset: int
    shape: tuple
    subs: str           # einsum subscripts of its axes (without the chain axis)

    @property
    def size(self) -> int:
        return self._size

    def __post_init__(self):
        self._size = int(np.prod(self.shape, dtype=int))


@dataclass
class DenseTerm:
    coef: float
    operands: list[Operand]
    plans: dict = field(default_factory=dict, repr=False, compare=False)  # Contraction by use

    def plan(self, key, subs: list[str], arrays: list, out: str) -> Contraction:
        """The contraction of `arrays` onto `out`, planned on first use for these shapes."""
        shapes = [a.shape for a in arrays]
        return cached(self.plans, (key,) + tuple(shapes), lambda: Contraction(subs, shapes, out))

    def _arrays(self, x, theta, replace=None):
        out = []
        for op in self.operands:
            if op.kind == "var":
                arr = replace.get(op.family) if replace else None
                if arr is None:
                    arr = x[:, op.offset:op.offset + op.size]
                out.append(arr.reshape((x.shape[0],) + op.shape))
            else:
                out.append(theta[op.offset:op.offset + op.size].reshape(op.shape))
        return out

    def _subs(self, op: Operand) -> str:
        return ("z" + op.subs) if op.kind == "var" else op.subs

    def total(self, x, theta) -> np.ndarray:
        subs = [self._subs(o) for o in self.operands]
        arrays = self._arrays(x, theta)
        if not any(o.kind == "var" for o in self.operands):
            return np.full(x.shape[0], self.coef * self.plan("total", subs, arrays, "")(*arrays))
        return self.coef * self.plan("total", subs, arrays, "z")(*arrays)

    def reads_once(self, family: str) -> bool:
        return sum(o.family == family for o in self.operands) == 1 and \
            any(o.family == family and o.kind == "var" for o in self.operands)

    def field(self, x, theta, family: str) -> np.ndarray:
        """(chains, family size): the coefficient this term puts on each variable's value."""
        k = next(i for i, o in enumerate(self.operands) if o.family == family)
        arrays = self._arrays(x, theta)
        others = [i for i in range(len(self.operands)) if i != k]
        target = self.operands[k]
        res = self._contract(("field", k), [self._subs(self.operands[i]) for i in others],
                             [arrays[i] for i in others], "z" + target.subs,
                             (x.shape[0],) + target.shape)
        return self.coef * res.reshape(x.shape[0], -1)

    def add_gradient(self, out, x, theta, weights, replace=None) -> None:
        """out += sum_c weights[c] * d(total_c)/d(theta), with some families replaced (by
        their conditional expectations). The weights multiply the first other variable read
        (or, with none, enter as an operand of their own)."""
        arrays = self._arrays(x, theta, replace)
        w = np.asarray(weights, float).reshape(-1)
        for k, op in enumerate(self.operands):
            if op.kind != "param":
                continue
            others = [i for i in range(len(self.operands)) if i != k]
            subs = [self._subs(self.operands[i]) for i in others]
            used = [arrays[i] for i in others]
            first = next((j for j, i in enumerate(others) if self.operands[i].kind == "var"), None)
            if first is None:
                subs, used = subs + ["z"], used + [w]
            else:
                used[first] = used[first] * w.reshape((-1,) + (1,) * (used[first].ndim - 1))
            grad = self._contract(("grad", k), subs, used, op.subs, op.shape)
            out[op.offset:op.offset + op.size] += self.coef * np.asarray(grad).reshape(-1)

    def _contract(self, key, subs: list[str], arrays: list, out: str, shape: tuple) -> np.ndarray:
        """The contraction of `arrays` onto the axes `out` (sizes `shape`); output axes that no
        input has are broadcast (the sum over them is the same for every index)."""
        present = "".join(c for c in out if any(c in s for s in subs))
        res = self.plan(key, subs, arrays, present)(*arrays) if subs else np.ones(())
        if present == out:
            return res
        expand = tuple(size if c in present else 1 for c, size in zip(out, shape))
        return np.broadcast_to(np.reshape(res, expand), shape)


def _factors(e: A.Expr, sign: float):
    """Flatten a product into (constant factor, [read nodes]) or None."""
    if isinstance(e, A.BinOp) and e.op == "*":
        left, right = _factors(e.left, sign), _factors(e.right, 1.0)
        if left is None or right is None:
            return None
        return left[0] * right[0], left[1] + right[1]
    if isinstance(e, A.Unary) and e.op == "-":
        inner = _factors(e.operand, sign)
        return None if inner is None else (-inner[0], inner[1])
    if isinstance(e, A.Num):
        return sign * e.value, []
    if isinstance(e, (A.Name, A.Indexed)):
        return sign, [e]
    return None


def detect(term, model) -> DenseTerm | None:
    """The contraction form of a term, or None when it is not one."""
    checked = model
    if not term.size or not term.space.dense or term.index is None or term.index.where is not None:
        return None
    flat = _factors(term.body, term.sign)
    if flat is None:
        return None
    coef, nodes = flat
    letters = {n: _LETTERS[i] for i, n in enumerate(term.names)} if len(term.names) <= 25 else None
    if letters is None:
        return None
    lo = dict(zip(term.names, term.space.lo))
    hi = dict(zip(term.names, term.space.hi))
    operands, seen = [], set()
    for node in nodes:
        if isinstance(node, A.Name) and node.name in checked.consts:
            coef *= float(checked.consts[node.name])
            continue
        op = _operand(node, checked, letters, lo, hi)
        if op is None or op.family in seen:
            return None
        seen.add(op.family)
        operands.append(op)
    if not operands:
        return None
    used = "".join(o.subs for o in operands)
    for n in term.names:  # an index no read uses repeats every instance: a multiplicity
        if letters[n] not in used:
            coef *= int(hi[n] - lo[n] + 1)
    return DenseTerm(float(coef), operands)


def _operand(node, checked, letters, lo, hi) -> Operand | None:
    name = node.name
    args = node.args if isinstance(node, A.Indexed) else ()
    if name in checked.vars:
        fam, kind, offset = checked.vars[name], "var", checked.vars[name].offset
    elif name in checked.params:
        fam, kind, offset = checked.params[name], "param", checked.params[name].offset
    else:
        return None
    space = fam.space
    if not space.dense and space.ndim:
        return None
    subs = ""
    for k, a in enumerate(args):
        if not isinstance(a, A.Name) or a.name not in letters or letters[a.name] in subs:
            return None
        if lo[a.name] != space.lo[k] or hi[a.name] != space.hi[k]:
            return None
        subs += letters[a.name]
    if len(args) != space.ndim:
        return None
    return Operand(kind, name, offset, tuple(space.shape), subs)
