"""One PCD update in a few matrix products, for models whose every term is a tensor contraction.

When every term is a contraction (dense.py: the RBM's `W[i, j] * v[i] * h[j]`, its biases, a
deep Boltzmann machine's layers, three-way products) and every sampled family is updated whole
by exact Gibbs over a finite domain, each term is linear in each family it reads, so:

- a family's local log-potential at value t is F * t, with F (chains, family size) the sum of
  the terms' fields on it: one matmul per term (`v @ W` for h); a two-valued family is drawn by
  one logistic test, with the random numbers `runtime.draw_categorical` would use;
- the data phase's statistics with a conditionally independent family summed out are the
  statistics at its conditional mean (a term reads at most one such family, linearly);
- each param's statistic is one contraction of the term's other reads (`v^T h` for W).

`FusedModel` plans these once per model (and each contraction once per chain count) and reads
the state and params as views, so an update is a few dozen numpy calls instead of the generic
path's ~1,600 (bench/RESULTS.md). It gives the generic path's numbers up to rounding (tested
against it, and its draws against exact enumeration); `fit(backend="numpy")` keeps the generic
path as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmlang.middle.contract import Contraction, cached
from ebmlang.backends.lanes import each_group
from ebmlang.backends.numeric import logsumexp
from ebmlang.backends.runtime import draw_categorical, write_block


class _Use:
    """One contraction of a term: its reads other than the target, onto the target's axes
    (`out`, with "z" for the chain axis of a family). Axes of `out` that no other read has come
    out of size 1, to broadcast. Planned once per chain count."""

    def __init__(self, dense, k: int):
        target = dense.operands[k]
        others = [o for i, o in enumerate(dense.operands) if i != k]
        self.coef, self.shape = dense.coef, target.shape
        self.reads = [(o.kind == "var", o.offset, slice(o.offset, o.offset + o.size),
                       None if len(o.shape) == 1 else o.shape) for o in others]
        self.subs = [("z" + o.subs) if o.kind == "var" else o.subs for o in others]
        self.out = ("z" + target.subs) if target.kind == "var" else target.subs
        self.present = "".join(c for c in self.out if any(c in s for s in self.subs))
        self.per_row = any(var for var, *_ in self.reads)     # depends on the state
        self.plans: dict = {}

    def __call__(self, x: np.ndarray, theta: np.ndarray, replace: dict | None = None):
        """The contraction for states x; `replace` maps a family's state offset to values
        standing in for its slice of x."""
        chains = x.shape[0]
        arrays = []
        for var, offset, sl, shape in self.reads:    # shape: None for one axis
            if not var:
                arrays.append(theta[sl] if shape is None else theta[sl].reshape(shape))
                continue
            arr = replace.get(offset) if replace else None
            if arr is None:
                arr = x[:, sl]
            arrays.append(arr if shape is None else arr.reshape((chains,) + shape))
        contraction, expand = cached(self.plans, chains, lambda: self._plan(arrays, chains))
        res = contraction(*arrays) if contraction is not None else np.ones(())
        if expand is not None:
            res = res.reshape(expand)
        return res if self.coef == 1.0 else self.coef * res

    def _plan(self, arrays, chains: int):
        """(Contraction or None for no reads, the shape with size-1 axes or None)."""
        contraction = Contraction(self.subs, [a.shape for a in arrays], self.present) \
            if self.subs else None
        if self.present == self.out:
            return contraction, None
        sizes = dict(zip(self.out, ((chains,) if self.out[:1] == "z" else ()) + self.shape))
        return contraction, tuple(sizes[c] if c in self.present else 1 for c in self.out)


@dataclass
class _Family:
    """A sampled family updated whole: its state slice, domain and the fields on it."""

    name: str
    offset: int
    size: int
    values: np.ndarray
    fields: list[_Use]

    def __post_init__(self):
        self.unit = len(self.values) == 2 and tuple(self.values) == (0.0, 1.0)

    def field(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(chains, size): F such that the local log-potential at value t is F * t."""
        total = None
        for use in self.fields:
            f = use(x, theta)
            if f.shape[1:] != use.shape:
                f = np.broadcast_to(f, f.shape[:1] + use.shape)
            f = f.reshape(f.shape[0], self.size)
            total = f if total is None else total + f   # (1, size) broadcasts
        if total is None:
            return np.zeros((x.shape[0], self.size))
        return total if total.shape[0] == x.shape[0] else \
            np.broadcast_to(total, (x.shape[0], self.size))

    def draw(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
             beta: np.ndarray | None = None) -> None:
        """Replace the family's values in x by a draw from its conditional (heat bath), with
        the random numbers of `runtime.draw_categorical`: for two values one uniform per
        variable against the logistic of the difference of their log-potentials. `beta`: an
        inverse temperature per chain (parallel tempering), the field scaled by it."""
        f = self.field(x, theta)
        if beta is not None:
            f = f * beta[:, None]
        sl = slice(self.offset, self.offset + self.size)
        if len(self.values) != 2:
            x[:, sl] = self.values[draw_categorical(f[..., None] * self.values, rng)]
            return
        p1 = self._p1(f)
        if self.unit:
            x[:, sl] = rng.random(p1.shape) < p1
        else:
            x[:, sl] = np.where(rng.random(p1.shape) < p1, self.values[1], self.values[0])

    def _p1(self, f: np.ndarray) -> np.ndarray:
        """For two values: the probability of the second, 1/2 where the field is undefined."""
        v0, v1 = self.values
        p1 = np.tanh(0.5 * f if self.unit else (0.5 * (v1 - v0)) * f)   # no 0 * inf here
        p1 += 1.0
        p1 *= 0.5
        p1[np.isnan(p1)] = 0.5
        return p1

    def mean(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(chains, size): the conditional expectation of each variable given the rest."""
        f = self.field(x, theta)
        if len(self.values) == 2:
            p1 = self._p1(f)
            return p1 if self.unit else self.values[0] + (self.values[1] - self.values[0]) * p1
        logits = f[..., None] * self.values
        w = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (w @ self.values) / w.sum(axis=-1)

    def log_sum(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(chains,): log of the sum over the family's values of exp(its local log-potential),
        summed over its variables."""
        f = self.field(x, theta)
        if self.unit:
            return np.logaddexp(0.0, f).sum(axis=1)
        if len(self.values) == 2:
            v0, v1 = self.values
            return np.logaddexp(f * v0, f * v1).sum(axis=1)
        return logsumexp(f[..., None] * self.values, axis=-1).sum(axis=1)


def unfused(model) -> str | None:
    """Why the fused update does not apply to the model, or None when it does: it needs every
    term with instances a contraction and every block part a whole family, in state order,
    sampled by exact Gibbs over a finite domain."""
    terms = [k for k in model.kernels if k.term.size]
    if not terms:
        return "the model has no terms"
    if len(model.state_ids(("input",))):
        return "the model has inputs (one persistent chain per training row)"
    for k in terms:
        if k.dense is None:
            return f"'{k.term.owner}' is not a product of whole-family reads (a contraction)"
    for block in model.graph.blocks:
        for part in block.parts:
            fam = model.vars[part.family]
            if model.methods[fam.name][0] != "gibbs" or not fam.domain.finite:
                return f"'{fam.name}' is not sampled by exact Gibbs over a finite domain"
            if not np.array_equal(part.ids, np.arange(fam.offset, fam.offset + fam.space.size)):
                return f"'{fam.name}' is split between blocks"
    return None


def fit_text(model) -> str:
    """The line `ebmlang check` prints on how `fit --backend auto` runs its updates."""
    why = unfused(model)
    if why is not None:
        return f"fit        --backend auto: the block parts above, not fused: {why}"
    return ("fit        --backend auto: fused, a few matrix products per update (every term a "
            "contraction)")


class FusedModel:
    """The fused update of a model, or None from `build` when some term or family does not
    qualify (the fit then takes the generic path)."""

    def __init__(self, blocks: list[list[_Family]], grads: list[tuple], terms):
        self.blocks, self.terms = blocks, terms
        self.families = {f.name: f for block in blocks for f in block}
        self.grads = grads              # (contraction, theta offset, size, first) per param read

    @staticmethod
    def build(model) -> FusedModel | None:
        """Plan the fused update, or None where `unfused` gives a reason."""
        if unfused(model) is not None:
            return None
        dense = [k.dense for k in model.kernels if k.term.size]
        blocks = []
        for block in model.graph.blocks:
            row = []
            for part in block.parts:
                fam = model.vars[part.family]
                fields = [_Use(d, k) for d in dense
                          for k, o in enumerate(d.operands) if o.family == fam.name]
                values = np.asarray(fam.domain.values, float)
                row.append(_Family(fam.name, fam.offset, fam.space.size, values, fields))
            blocks.append(row)
        grads, seen = [], set()
        for d in dense:
            for k, o in enumerate(d.operands):
                if o.kind == "param":
                    grads.append((_Use(d, k), o.offset, o.size, o.offset not in seen))
                    seen.add(o.offset)
        return FusedModel(blocks, grads, dense)

    def sweep(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
              clamp: np.ndarray | None = None, beta: np.ndarray | None = None) -> np.ndarray:
        """One Gibbs sweep in place, block by block in the model's order; the families of a
        block read none of each other's variables, so in place is the same as from one state.
        `clamp`: values (chains, n_state), NaN where free; every family is drawn (the same
        random numbers as `runtime.gibbs_step`), then its clamped cells are put back. `beta`:
        one inverse temperature per chain, each chain sampling its model raised to it."""
        for block in self.blocks:
            for fam in block:
                fam.draw(x, theta, rng, beta)
                if clamp is not None:
                    sl = slice(fam.offset, fam.offset + fam.size)
                    fixed = clamp[:, sl]
                    x[:, sl] = np.where(np.isnan(fixed), x[:, sl], fixed)
        return x

    def stats(self, x: np.ndarray, theta: np.ndarray, replace: dict | None = None) -> np.ndarray:
        """The average over rows of x of dF/dtheta; `replace` maps a family's state offset to
        values standing in for its slice of x (its conditional means). The first term to
        reach a param writes its slot, the others add to it."""
        out = np.zeros(len(theta))
        scale = 1.0 / x.shape[0]
        for use, offset, size, first in self.grads:
            g = use(x, theta, replace)
            if not use.per_row:
                g = g * x.shape[0]             # the same statistic in every row
            if g.shape != use.shape:
                g = np.broadcast_to(g, use.shape)
            slot = out[offset:offset + size]
            if first:
                np.multiply(g.reshape(-1), scale, out=slot)
            else:
                slot += scale * g.reshape(-1)
        return out

    def summed_stats(self, x: np.ndarray, theta: np.ndarray, names) -> np.ndarray:
        """`stats` with the families `names` summed out: each replaced by its conditional
        mean given the rest, exact because a term reads at most one of them, linearly (they
        are conditionally independent) and its statistic is a product of its reads."""
        means = {self.families[n].offset: self.families[n].mean(x, theta) for n in names}
        return self.stats(x, theta, means)


class Marginal:
    """log sum over the families `names` of exp F(x), per row (minus the free energy), like
    `summed.SummedOut.log_marginal`: the terms reading none of them, plus each family's
    `log_sum`. The families must be conditionally independent given the rest."""

    def __init__(self, fused: FusedModel, model, names):
        self.fused, self.model = fused, model
        self.names = list(names)
        offsets = {fused.families[n].offset for n in self.names}
        self.others = [d for d in fused.terms
                       if not any(o.kind == "var" and o.offset in offsets for o in d.operands)]

    def log_marginal(self, x: np.ndarray) -> np.ndarray:
        theta = self.model.params.theta
        out = np.zeros(x.shape[0])
        for d in self.others:
            out += d.total(x, theta)
        for n in self.names:
            out += self.fused.families[n].log_sum(x, theta)
        return out


class FusedPart:
    """One family of a `FusedModel` as a block part of the sampling sweep: `update` draws it
    in place (`fused_step`), `tempered` at a beta per chain (`tempering.tempered_sweep` calls
    it), and it carries what the drivers read of a part (family, ids, method, counts)."""

    method = "gibbs"
    adapt = False

    def __init__(self, fam: _Family):
        self.fam, self.family = fam, fam.name
        self.ids = np.arange(fam.offset, fam.offset + fam.size)
        self.accepted = self.proposed = 0

    def update(self, x: np.ndarray, theta: np.ndarray, rng) -> None:
        """Draw the family in place; with `lanes.Lanes`, each chain group on its rows from its
        own Generator (its matrix products then have the group's shapes, as run alone)."""
        for _, rows, r in each_group(rng):
            self.fam.draw(x[rows], theta, r)

    def tempered(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
                 beta: np.ndarray) -> None:
        self.fam.draw(x, theta, rng, np.asarray(beta, np.float64))


def fused_parts(fused: FusedModel) -> list[list[FusedPart]]:
    """The fused model's families as block parts, in its block order."""
    return [[FusedPart(f) for f in block] for block in fused.blocks]


def fused_step(parts: list[list[FusedPart]], x: np.ndarray, theta: np.ndarray,
               rng: np.random.Generator, clamp: np.ndarray | None = None) -> np.ndarray:
    """A sweep function (the drivers' signature) over fused parts: `FusedModel.sweep` over
    the parts given (cluster moves may have taken some families), clamped cells put back."""
    for block in parts:
        for part in block:
            part.update(x, theta, rng)
        write_block(x, (), block, clamp)
    return x
