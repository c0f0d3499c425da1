"""A run's chains in one sweep loop: the start of a run split into chain groups (each group's
initial state drawn from its own Generator, as it would be run alone), the group copies of
the parts that keep state, the summary of the groups' HMC moves, and where kept draws go.

With `backends.lanes.Lanes` in place of the Generator, the sweep functions run every chain at
once in the compiled kernels and group by group in the rest, so the draws of each group are
bit for bit those of `sample(chains=n_g, seed=seed_g)`, what a Ray task runs (`infer.groups`).
"""

from __future__ import annotations

import numpy as np

from ebmlang.backends.lanes import Lanes


def group_start(model, sizes: list[int], seed, inputs, clamp, init_state):
    """(Lanes, the state (chains, n_state), the clamp or None): each group's start drawn by
    `init_state(model, n_g, rng_g, inputs_g)` from its spawned seed, clamped cells set."""
    from ebmlang.infer import groups
    init_state(model, sum(sizes), np.random.default_rng(0), inputs)   # input errors, once
    rngs = [np.random.default_rng(s) for s in groups.seeds(seed, len(sizes))]
    xs = [init_state(model, n, r, i) for n, r, i in zip(sizes, rngs, groups.rows(inputs, sizes))]
    x = np.concatenate(xs)
    if clamp is not None:
        clamp = np.concatenate([np.broadcast_to(c, (n, x.shape[1]))
                                for n, c in zip(sizes, groups.rows(clamp, sizes))])
        x = np.where(np.isnan(clamp), x, clamp)
    return Lanes(sizes, rngs), x, clamp


def counted_parts(parts, lanes: Lanes | None) -> list[list]:
    """The parts whose scales and counts the driver adapts and reads: the parts, or every
    chain group's copies of them."""
    if lanes is None:
        return parts
    return [[c for c in lanes.copies() if hasattr(c, "proposed")]]


def gradient_summary(move, lanes: Lanes | None):
    """The HMC / MALA move `Samples` reports: the move, or the chain groups' moves as one."""
    if move is None or lanes is None:
        return move
    return GroupMoves(lanes.copies(move), lanes.sizes)


class GroupMoves:
    """The chain groups' gradient moves, read as one (`hmc.gradient_rows`): acceptance and step
    size the chain-weighted means over the groups (each adapts its own step size), the
    divergences summed."""

    def __init__(self, moves, sizes):
        self.moves, w = moves, np.asarray(sizes, float) / sum(sizes)
        first = moves[0]
        self.grad, self.kind, self.steps = first.grad, first.kind, first.steps
        self.eps = float(np.dot(w, [m.eps for m in moves]))
        self.acceptance = float(np.dot(w, [m.acceptance for m in moves]))
        self.divergent = sum(m.divergent for m in moves)


class Kept:
    """Where kept draws go: into the array of all of them (keep), and to the watchers a block
    at a time (from a bounded buffer when the draws are not kept). `compiled` (the numba
    backend runs), with enough chains x cells for threads: a draw is copied by a compiled
    loop, chains in parallel (`backends.numba_store`)."""

    def __init__(self, chains, draws, n, dtype, keep: bool, watch, block: int,
                 compiled: bool = False):
        self.block = block
        self.all = np.empty((chains, draws, n), dtype) if keep else None
        self.buf = self.all if keep else np.empty((chains, min(draws, self.block), n), dtype)
        self.watch, self.kept, self.done = list(watch), 0, 0
        self._store = None
        if compiled and chains > 1:
            from ebmlang.backends.numba_backend import PARALLEL_WORK
            if chains * n >= PARALLEL_WORK:
                from ebmlang.backends.numba_store import store_rows
                self._store = store_rows

    def add(self, x: np.ndarray) -> None:
        k = self.kept if self.all is not None else self.kept - self.done
        if self._store is not None:
            self._store(x, self.buf, k)
        else:
            self.buf[:, k] = x
        self.kept += 1
        if self.kept - self.done == self.block:
            self.flush()

    def flush(self) -> None:
        """Hand the block drawn since the last flush to the watchers (if any), and free the
        bounded buffer for the next one: without watchers a block is simply dropped."""
        if self.kept == self.done:
            return
        xs = self.buf[:, self.done:self.kept] if self.all is not None else \
            self.buf[:, :self.kept - self.done]
        for fn in self.watch:
            fn(self.done, xs)
        self.done = self.kept
