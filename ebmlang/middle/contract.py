"""Tensor contractions planned once and run as one matrix product.

`np.einsum(..., optimize=True)` plans its contraction order on every call; for the small
products of a minibatch update (the RBM's `v @ W`: 10 x 64 x 100) the planning costs more than
the arithmetic (bench/RESULTS.md, "where the time goes"). A `Contraction` is planned once for
given subscripts and shapes: one operand is a sum (`einsum` without path search), two are
transposed and reshaped views multiplied by `matmul` (BLAS), more follow the path
`np.einsum_path` found once. The result equals `np.einsum(spec, *arrays)` up to rounding
(tested against it).
"""

from __future__ import annotations

from math import prod

import numpy as np


MAX_PLANS = 64    # plans a cache keeps (row counts vary, e.g. the metric's alternatives)


def cached(plans: dict, key, make):
    """plans[key], made by make() on first use; the cache is emptied when it reaches
    MAX_PLANS entries, so that many different shapes cannot grow it without bound."""
    found = plans.get(key)
    if found is None:
        if len(plans) >= MAX_PLANS:
            plans.clear()
        found = plans[key] = make()
    return found


class Contraction:
    """sum over every letter not in `out` of the product of the operands (einsum semantics);
    every letter of `out` must appear in some operand. A single operand with nothing to sum or
    transpose comes back as itself (a view: do not write into the result)."""

    def __init__(self, subs: list[str], shapes: list[tuple], out: str):
        self.subs, self.out = list(subs), out
        self.size = {c: n for s, shape in zip(subs, shapes) for c, n in zip(s, shape)}
        self.spec = f"{','.join(subs)}->{out}"
        self.run = {1: self._one, 2: self._two}.get(len(subs), self._many)
        if len(subs) == 2:
            self._plan_two()
        elif len(subs) > 2:
            dummies = [np.empty(shape) for shape in shapes]
            self.path = np.einsum_path(self.spec, *dummies, optimize="greedy")[0]

    def __call__(self, *arrays) -> np.ndarray:
        return self.run(arrays)

    def _one(self, arrays):
        if self.subs[0] == self.out:        # nothing to sum or transpose: the operand itself
            return arrays[0]
        return np.einsum(self.spec, arrays[0])

    def _many(self, arrays):
        return np.einsum(self.spec, *arrays, optimize=self.path)

    def _plan_two(self) -> None:
        """Letters of each operand alone are summed first; the rest become batch (in both and
        in out), free (in one and in out) and contracted (in both, not in out) axes of one
        batched matmul (left free) x (right free). The operand holding out's first free letter
        goes left, so that out usually needs no transpose."""
        a, b = self.subs
        first = next((c for c in self.out if (c in a) != (c in b)), None)
        self.swap = first is not None and first in b
        if self.swap:
            a, b = b, a
        lone_a = "".join(c for c in a if c not in b and c not in self.out)
        lone_b = "".join(c for c in b if c not in a and c not in self.out)
        a2 = "".join(c for c in a if c not in lone_a)
        b2 = "".join(c for c in b if c not in lone_b)
        self.pre = (f"{a}->{a2}" if lone_a else None, f"{b}->{b2}" if lone_b else None)
        batch = "".join(c for c in self.out if c in a2 and c in b2)
        free_a = "".join(c for c in a2 if c not in b2)
        free_b = "".join(c for c in b2 if c not in a2)
        inner = "".join(c for c in a2 if c in b2 and c not in self.out)
        self.perm_a = _perm(a2, batch + free_a + inner)
        self.perm_b = _perm(b2, batch + inner + free_b)
        n = [prod(self.size[c] for c in s) for s in (free_a, inner, free_b)]
        bshape = tuple(self.size[c] for c in batch)
        got = batch + free_a + free_b
        shape = lambda letters: tuple(self.size[c] for c in letters)  # noqa: E731
        self.shape_a = _unless(shape(batch + free_a + inner), bshape + (n[0], n[1]))
        self.shape_b = _unless(shape(batch + inner + free_b), bshape + (n[1], n[2]))
        self.shape_out = _unless(bshape + (n[0], n[2]), shape(got))
        self.perm_out = _perm(got, self.out)

    def _two(self, arrays):
        a, b = (arrays[1], arrays[0]) if self.swap else arrays
        if self.pre[0]:
            a = np.einsum(self.pre[0], a)
        if self.pre[1]:
            b = np.einsum(self.pre[1], b)
        if self.perm_a is not None:
            a = a.transpose(self.perm_a)
        if self.perm_b is not None:
            b = b.transpose(self.perm_b)
        if self.shape_a is not None:
            a = a.reshape(self.shape_a)
        if self.shape_b is not None:
            b = b.reshape(self.shape_b)
        res = np.matmul(a, b)
        if self.shape_out is not None:
            res = res.reshape(self.shape_out)
        return res if self.perm_out is None else res.transpose(self.perm_out)


def _unless(have: tuple, want: tuple):
    """The shape `want` to reshape to, or None when the array has it already (`have`)."""
    return None if have == want else want


def _perm(have: str, want: str):
    """The axes permutation taking subscripts `have` to `want`, or None for the identity."""
    perm = tuple(have.index(c) for c in want)
    return None if perm == tuple(range(len(have))) else perm
