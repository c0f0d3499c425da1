"""Phase 7: the numpy runtime. State arrays are (chains, ground variables); every kernel is
vectorized over chains and over the variables of a block.

A Gibbs block step computes, for each variable of the block and each value of its domain, the
local log-potential: the sum of the terms whose instances read it, evaluated with the variable
set to that value. Because no two variables of a block share an instance, one evaluation per
value serves the whole block. It then draws from the softmax with the log-sum-exp shift, so
weights of 1e3 neither overflow nor give NaN.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from ebmlang.backends.lanes import per_group_values
from ebmlang.backends.numeric import ensure_shape
from ebmlang.middle.lower import Term, id_slice

if TYPE_CHECKING:
    from ebmlang.middle.graph import Block


@dataclass
class TermKernel:
    """A term with its generated function, ready to evaluate on any subset of instances."""

    term: Term
    fn: Callable
    grad: Callable | None = None     # d(value)/d(param read k), one array per param read
    where: Callable | None = None    # theta positions of param reads indexed by variables
    dense: object = None             # a DenseTerm when the term is a tensor contraction

    def total(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Sum over all instances, per chain."""
        if self.dense is not None:
            return self.dense.total(x, theta)
        return self.values(x, theta).sum(axis=1)

    def args(self, x: np.ndarray, theta: np.ndarray, rows=None, override=None):
        """The generated functions' arguments (V, P, I) for instances `rows` (all if None).

        `override` = (masks, value): read k takes `value` where masks[k] is true.
        """
        t = self.term
        sel = slice(None) if rows is None else rows
        V = [x[:, r.ids[sel]] if rows is not None or self._runs[k] is None else
             x[:, self._runs[k]] for k, r in enumerate(t.reads)]
        if override is not None:
            masks, value = override
            for k, m in masks:
                V[k] = np.where(m, value, V[k])
        P = [p.pos[sel] if p.dynamic else
             theta[p.pos[:1]] if p.pos.strides == (0,) else theta[p.pos[sel]] for p in t.preads]
        return V, P, _Columns(t.space, rows)

    @functools.cached_property
    def _runs(self) -> list[slice | None]:
        """Per read, the slice of the state it reads when its ids are consecutive, else None."""
        return [id_slice(r.ids) for r in self.term.reads]

    def values(self, x: np.ndarray, theta: np.ndarray, rows=None, override=None) -> np.ndarray:
        """Signed log-potential of instances `rows` (all if None), (chains, len(rows))."""
        V, P, I = self.args(x, theta, rows, override)
        n = self.term.size if rows is None else len(rows)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = self.fn(V, P, I, theta)
        return self.term.sign * ensure_shape(out, x.shape[0], n)

    def add_gradient(self, out: np.ndarray, x: np.ndarray, theta: np.ndarray, weights,
                     rows=None, override=None) -> None:
        """out += sum over chains c and instances n of weights[c, n] * d(value)/d(theta).

        `weights` broadcasts to (chains, instances): a per-chain column or per-instance array.
        """
        if self.dense is not None and rows is None and override is None and \
                np.ndim(weights) == 2 and np.shape(weights)[1] == 1:
            self.dense.add_gradient(out, x, theta, weights)
            return
        V, P, I = self.args(x, theta, rows, override)
        t = self.term
        n = t.size if rows is None else len(rows)
        chains = x.shape[0]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            derivs = self.grad(V, P, I, theta)
            places = self.where(V, P, I)
        w = np.broadcast_to(weights, (chains, n))
        sel = slice(None) if rows is None else rows
        for d, place, p in zip(derivs, places, t.preads):
            d = ensure_shape(d, chains, n) * w
            if place is None:
                out += np.bincount(p.pos[sel], weights=d.sum(axis=0), minlength=len(out))
            else:
                pos = np.broadcast_to(place, (chains, n))
                out += np.bincount(pos.ravel(), weights=d.ravel(), minlength=len(out))


class _Columns:
    """The index columns I[k] of some instances, computed when a generated function first
    reads one (most terms never do, and a dense space stores none)."""

    def __init__(self, space, rows):
        self.space, self.rows, self.cols = space, rows, None

    def __getitem__(self, k: int) -> np.ndarray:
        if self.cols is None:
            self.cols = self.space.columns(self.rows)
        return self.cols[k]

    def __len__(self) -> int:
        return self.space.ndim


@dataclass
class Touch:
    """The instances of one term that read variables of one block part."""

    kernel: TermKernel
    rows: np.ndarray              # instances of the term
    target: np.ndarray            # position, within the part, of the variable each reads
    masks: list                   # (read number, bool mask over rows) for reads of the target
    dense: bool = False           # evaluate as a contraction: the term's field on the family


@dataclass
class PartKernel:
    family: str
    ids: np.ndarray
    values: np.ndarray            # the domain (for a Gaussian update: the points -1, 0, 1)
    touches: list[Touch]
    method: str = "gibbs"         # gibbs | gaussian | mh
    scale: float = 1.0            # MH proposal scale
    adapt: bool = False           # MH scale adapted during burn-in
    accepted: int = 0
    proposed: int = 0


class GibbsInfo(NamedTuple):
    sweeps: int


def build_part(ids: np.ndarray, family: str, values: np.ndarray, kernels: list[TermKernel],
               n_state: int) -> PartKernel:
    where = np.full(n_state, -1, np.int64)
    where[ids] = np.arange(len(ids))
    touches = []
    for k in kernels:
        t = k.term
        if not t.size or not t.reads:
            continue
        pos = np.stack([where[r.ids] for r in t.reads])       # (reads, n)
        hit = pos >= 0
        rows = np.flatnonzero(hit.any(axis=0))
        if not len(rows):
            continue
        target = pos[:, rows].max(axis=0)
        masks = [(j, hit[j, rows]) for j in range(len(t.reads)) if hit[j, rows].any()]
        whole = _whole_family(ids, family, k)
        touches.append(Touch(k, rows, target, masks, whole))
    return PartKernel(family, ids, values, touches)


def _whole_family(ids: np.ndarray, family: str, kernel: TermKernel) -> bool:
    """True when the part is its whole family in state order and the term is a contraction
    reading that family once (its field is then one einsum)."""
    d = kernel.dense
    if d is None or not d.reads_once(family):
        return False
    op = next(o for o in d.operands if o.family == family)
    size = int(np.prod(op.shape, dtype=int))
    return len(ids) == size and ids[0] == op.offset and bool(np.all(np.diff(ids) == 1))


def local_logits(part: PartKernel, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(chains, variables, values): the local log-potential of each value of each variable."""
    chains, m, K = x.shape[0], len(part.ids), len(part.values)
    logits = np.zeros((chains, m, K))
    base = (np.arange(chains)[:, None] * m)
    for tc in part.touches:
        if tc.dense:
            field = tc.kernel.dense.field(x, theta, part.family)
            logits += field[:, :, None] * part.values[None, None, :]
            continue
        idx = (base + tc.target[None, :]).ravel()
        for k in range(K):
            vals = tc.kernel.values(x, theta, tc.rows, (tc.masks, part.values[k]))
            logits[:, :, k] += np.bincount(idx, weights=vals.ravel(),
                                           minlength=chains * m).reshape(chains, m)
    return logits


def local_at(part: PartKernel, x: np.ndarray, theta: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(chains, variables): the local log-potential with each variable set to values[c, m]."""
    chains, m = x.shape[0], len(part.ids)
    out = np.zeros((chains, m))
    base = (np.arange(chains)[:, None] * m)
    for tc in part.touches:
        if tc.dense:
            out += tc.kernel.dense.field(x, theta, part.family) * values
            continue
        idx = (base + tc.target[None, :]).ravel()
        vals = tc.kernel.values(x, theta, tc.rows, (tc.masks, values[:, tc.target]))
        out += np.bincount(idx, weights=vals.ravel(), minlength=chains * m).reshape(chains, m)
    return out


def draw_categorical(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index of a draw from softmax(logits) along the last axis, safe for huge or -inf logits."""
    if logits.shape[-1] == 2:  # two values: a logistic draw, no cumulative sums
        with np.errstate(invalid="ignore"):
            d = logits[..., 1] - logits[..., 0]
        p1 = np.where(np.isnan(d), 0.5, 0.5 * (1.0 + np.tanh(0.5 * d)))
        return (rng.random(d.shape) < p1).astype(np.int64)
    top = logits.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.exp(logits - top)
    w = np.where(np.isnan(w), 0.0, w)
    cum = np.cumsum(w, axis=-1)
    total = cum[..., -1:]
    u = rng.random(logits.shape[:-1] + (1,)) * total
    choice = (cum <= u).sum(axis=-1)
    # all-zero weights (every value impossible): keep a uniform draw instead of failing mid-chain
    flat = total[..., 0] <= 0
    if np.any(flat):
        choice = np.where(flat, rng.integers(0, logits.shape[-1], size=choice.shape), choice)
    return np.minimum(choice, logits.shape[-1] - 1)


def write_block(x: np.ndarray, new, block, clamp: np.ndarray | None) -> None:
    """Write a block's new values (ids, values) into x, then put its clamped cells back (the
    compiled parts write x themselves, so the clamps go back after them too)."""
    for ids, vals in new:
        x[:, ids] = vals
    if clamp is not None:
        for part in block:
            fixed = clamp[:, part.ids]
            x[:, part.ids] = np.where(np.isnan(fixed), x[:, part.ids], fixed)


def gibbs_step(parts: list[list[PartKernel]], x: np.ndarray, theta: np.ndarray,
               rng: np.random.Generator, clamp: np.ndarray | None = None) -> np.ndarray:
    """One sweep: every block in turn, every part of a block from the same state.

    `clamp`: values (chains, n_state), NaN where free; clamped variables keep their values.
    `rng`: a Generator, or `lanes.Lanes` (each chain group from its own).
    """
    for block in parts:
        write_block(x, [(part.ids, per_group_values(UPDATES[part.method], part, x, theta, rng))
                        for part in block], block, clamp)
    return x


def total_log_potential(kernels: list[TermKernel], x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Sum of every ground factor minus every ground energy, per chain (log p up to log Z)."""
    out = np.zeros(x.shape[0])
    for k in kernels:
        if k.term.size:
            out += k.total(x, theta)
    return out


def block_parts(blocks: list[Block], model, kernels: list[TermKernel],
                methods: dict) -> list[list[PartKernel]]:
    """Kernels for every block part; `methods`: family -> (method, scale, adapt)."""
    out = []
    for b in blocks:
        parts = []
        for p in b.parts:
            fam = model.vars[p.family]
            method, scale, adapt = methods[p.family]
            values = fam.domain.values if method != "gaussian" else np.array([-1.0, 0.0, 1.0])
            part = build_part(p.ids, p.family, values, kernels, model.n_state)
            part.method, part.scale, part.adapt = method, scale, adapt
            parts.append(part)
        out.append(parts)
    return out


def _gibbs(part: PartKernel, x, theta, rng) -> np.ndarray:
    return part.values[draw_categorical(local_logits(part, x, theta), rng)]


def _gaussian(part: PartKernel, x, theta, rng) -> np.ndarray:
    """Exact draw from a quadratic local log-potential a x^2 + b x + c, read off its values at
    -1, 0 and 1; a variable whose a >= 0 here (improper) keeps its value."""
    ell = local_logits(part, x, theta)
    a = 0.5 * (ell[..., 2] + ell[..., 0]) - ell[..., 1]
    b = 0.5 * (ell[..., 2] - ell[..., 0])
    z = rng.standard_normal(a.shape)
    proper = a < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        draw = -b / (2 * a) + z * np.sqrt(-0.5 / a)
    part.proposed += a.size
    part.accepted += int(proper.sum())
    return np.where(proper, draw, x[:, part.ids])


def _mh(part: PartKernel, x, theta, rng) -> np.ndarray:
    """Random-walk Metropolis-Hastings: a Gaussian step for real variables, a step of up to
    `scale` positions along the sorted domain for finite ones (for two values: propose the
    other, Metropolized Gibbs)."""
    current = x[:, part.ids]
    shape = current.shape
    if part.values is None:
        proposal = current + part.scale * rng.standard_normal(shape)
        inside = np.ones(shape, bool)
    else:
        k = len(part.values)
        idx = np.clip(np.searchsorted(part.values, current), 0, k - 1)
        reach = max(1, int(round(part.scale)))
        step = rng.integers(1, reach + 1, shape) * rng.choice([-1, 1], shape)
        new = idx + step
        inside = (new >= 0) & (new < k)
        proposal = part.values[np.clip(new, 0, k - 1)]
    with np.errstate(invalid="ignore", over="ignore"):
        delta = local_at(part, x, theta, proposal) - local_at(part, x, theta, current)
    accept = inside & (np.log(rng.random(shape)) < delta)
    part.proposed += accept.size
    part.accepted += int(accept.sum())
    return np.where(accept, proposal, current)


def _joint(part: PartKernel, x, theta, rng) -> np.ndarray:
    """HMC / MALA families keep their values in the sweep: `infer.hmc` moves them jointly."""
    return x[:, part.ids]


UPDATES = {"gibbs": _gibbs, "gaussian": _gaussian, "mh": _mh, "hmc": _joint, "mala": _joint}
