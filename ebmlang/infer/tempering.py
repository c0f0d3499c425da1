"""Parallel tempering (replica exchange): R replicas of every chain at inverse temperatures
1 = b_0 > b_1 > ... > b_{R-1} = b_min, each sampling p_b(x) proportional to exp(b F(x)), F the
whole log-potential (inputs and clamped cells stay in, as constants). After every sweep,
neighbours k and k + 1 of the same chain (the even pairs k after one sweep, the odd ones after
the next) swap states with probability
min(1, exp((b_k - b_{k+1}) (F(x_{k+1}) - F(x_k)))); only the b = 1 replicas' draws are kept.

Layout: the replicas are extra chains, level-major: row k * C + c holds chain c at level k, so
the rows of one level are contiguous (a compiled table part runs each level as one slice with
its own table) and the kept chains are rows :C.

The ladder starts geometric and, during burn-in only, moves toward equal swap rates between
neighbours (Vousden, Farr and Mandel 2016: a gap in log b widens where its swaps are accepted
more often than the average, with both ends fixed here); `freeze` ends that, so the kept chain
is a fixed Markov chain.

The hook a sweep kind provides: `sweep(x, theta, rng, clamp, beta)`, updating x
(chains, n_state) in place so that chain c leaves p_{beta[c]} invariant (clamped cells kept).
`tempered_sweep` is the one for block parts: numpy parts by `tempered.tempered_update`, compiled
parts by `compiled_update` (tables built at each level's beta, or the generated `tgibbs_f`); a
part object of another kind joins it by providing `tempered(x, theta, rng, beta)` (in place).
"""

from __future__ import annotations

import numpy as np

from ebmlang.errors import UserError
from ebmlang.backends.runtime import PartKernel, write_block
from ebmlang.backends.tempered import tempered_update

DEFAULT_MIN = 0.1          # the hottest replica's inverse temperature unless given
ADAPT_GAIN = 1.0           # the first window's step in log gap per unit of swap rate
LADDER_EVERY = 25          # PCD: steps between ladder adaptations (sample: with its MH scales)


def check_options(replicas, b_min) -> None:
    """A user error unless replicas is an integer >= 1 and 0 < b_min < 1."""
    if int(replicas) != replicas or replicas < 1:
        raise UserError(f"tempering must be an integer >= 1 (replicas), got {replicas}")
    if b_min is not None and not 0.0 < b_min < 1.0:
        raise UserError(f"the hottest inverse temperature must be in (0, 1), got {b_min}")


def geometric(replicas: int, b_min: float) -> np.ndarray:
    """1 = b_0 > ... > b_{R-1} = b_min, evenly spaced in log b."""
    return np.geomspace(1.0, b_min, replicas)


# ---------------------------------------------------------------- sweeps at a beta per chain

def tempered_sweep(parts, x, theta, rng, clamp, beta, count=None, update=None) -> None:
    """One sweep of the block parts with chain c on beta[c] * log p: every part of a block from
    the same state, clamped cells put back. `count`: the chains whose MH proposals count in
    the parts' acceptance (None: all). MH steps of real variables scale by 1 / sqrt(beta).
    `update(part, x, theta, rng, beta)`: the new values of a numpy part, in place of
    `tempered.tempered_update` (AIS's moves, which mix in the base of real variables)."""
    spread = 1.0 / np.sqrt(beta)
    for block in parts:
        new = []
        for part in block:
            if isinstance(part, PartKernel):
                new.append((part.ids, update(part, x, theta, rng, beta) if update else
                            tempered_update(part, x, theta, rng, beta,
                                            True if count is None else count, spread)))
            elif hasattr(part, "tempered"):
                part.tempered(x, theta, rng, beta)
            else:
                compiled_update(part, x, theta, rng, beta)
        write_block(x, new, block, clamp)


def annealing_parts(model, backend: str | None = None, clamped: bool = False):
    """The block parts AIS and annealing sweep at a beta: the sampling choice of `backend`
    (`backends.choice.sweep_parts`), with the compiled block parts in place of the
    pre-activation scan when cells are clamped (the scan would read a clamped neighbour's
    drawn value before it is put back; `preact_step` falls back the same way)."""
    from ebmlang.backends.choice import sweep_parts
    from ebmlang.backends.preact import PreactPart
    parts, _ = sweep_parts(model, backend)
    if clamped and any(isinstance(p, PreactPart) for block in parts for p in block):
        return model.parts("numba")
    return parts


def levels(beta: np.ndarray) -> list[tuple[slice, float]]:
    """The runs of consecutive chains that share one beta, as (rows, beta)."""
    cuts = [0, *(np.flatnonzero(np.diff(beta)) + 1), len(beta)]
    return [(slice(a, b), float(beta[a])) for a, b in zip(cuts[:-1], cuts[1:])]


def compiled_update(part, x, theta, rng, beta) -> None:
    """A `numba_backend.CompiledPart`'s heat-bath update at beta[c] in chain c, in place. A
    tabulated part runs each level's rows (a view of x) with that level's table, built by the
    generated `table_f` at its beta and kept until the params or the ladder change; an untabled
    one runs the generated `tgibbs_f`, which scales the logits per chain."""
    from ebmlang.backends.numba_backend import PARALLEL_WORK
    chains = x.shape[0]
    seeds = rng.bit_generator.random_raw((chains, 2))
    if part.table is None:
        name = "ptgibbs_" if chains > 1 and chains * len(part.ids) >= PARALLEL_WORK else "tgibbs_"
        getattr(part.module, name + part.family)(x, theta, seeds, np.ascontiguousarray(beta),
                                                 *part._args)
        return
    part.table.refresh(part._build, theta, part.values, part.inc)
    runs = _LEVELS.get(beta.tobytes())
    if runs is None:
        if len(_LEVELS) > 64:
            _LEVELS.clear()
        runs = _LEVELS.setdefault(beta.tobytes(), levels(beta))
    tables = _tables(part, theta, [b for _, b in runs])
    for rows, b in runs:
        n = rows.stop - rows.start
        fn = part._fns[n > 1 and n * len(part.ids) >= PARALLEL_WORK]
        fn(x[rows], theta, seeds[rows], *part._args[:-1], tables[b])


_LEVELS: dict[bytes, list] = {}     # levels(beta) by beta's bytes: a ladder is met every sweep


def _tables(part, theta, betas: list[float]) -> dict[float, np.ndarray]:
    """The part's table at each beta (beta 1: its own), rebuilt when the params change; the
    tables of betas no longer asked for are dropped."""
    key = theta.tobytes()
    held = getattr(part, "tempered_tables", {})
    out = {}
    for b in betas:
        if b == 1.0:
            out[b] = part._args[-1]
            continue
        if b in held and held[b][0] == key:
            out[b] = held[b][1]
            continue
        cdf = np.empty_like(part.table.cdf)
        part.table.build(part._build, theta, part.values, part.inc, cdf, b)
        out[b] = cdf
    part.tempered_tables = {b: (key, c) for b, c in out.items() if b != 1.0}
    return out


# ---------------------------------------------------------------- the replicas

def swap_energy(model, compiled: bool):
    """F of every row, as the swaps need it: compiled (`numba_energy`, the numpy terms only
    where it prints no loop) unless the numpy backend, the reference, was asked for."""
    if not compiled:
        return model.log_potential
    from ebmlang.backends.numba_energy import CompiledEnergy
    return CompiledEnergy(model)


class Replicas:
    """The replicas of C chains: their states (R * C, n_state, level-major), the ladder, the
    swaps and their counts. `step` has a sweep function's signature (parts, x, theta, rng,
    clamp) so that a driver runs it where it would run one sweep."""

    def __init__(self, model, x: np.ndarray, clamp, replicas: int, b_min, sweeps,
                 compiled: bool = False):
        check_options(replicas, b_min)
        self.model, self.C, self.R = model, x.shape[0], int(replicas)
        self.energy, self.compiled = swap_energy(model, compiled), compiled
        self.x = np.tile(x, (self.R, 1))
        self.clamp = None if clamp is None else np.tile(clamp, (self.R, 1))
        self.ladder = geometric(self.R, DEFAULT_MIN if b_min is None else b_min)
        self.sweeps = list(sweeps)
        self.frozen = False
        self.windows = 0
        self.steps = 0                           # persistent steps run (PCD)
        self.parity = 1                          # the first sweep swaps the even pairs
        self.tried = np.zeros(self.R - 1)
        self.accepted = np.zeros(self.R - 1)

    def beta(self, chains: int | None = None) -> np.ndarray:
        """The inverse temperature of every row (chains per level: C unless given)."""
        return np.repeat(self.ladder, self.C if chains is None else chains)

    def step(self, parts, x, theta, rng, clamp=None) -> np.ndarray:
        """Every sweep kind on every replica at its beta, then the neighbour swaps; x holds
        R levels of x.shape[0] / R chains."""
        chains = x.shape[0] // self.R
        beta = self.beta(chains)
        for sweep in self.sweeps:
            sweep(x, theta, rng, clamp, beta)
        self.swap(x, rng, chains)
        return x

    def swap(self, x: np.ndarray, rng, chains: int) -> None:
        """Propose swapping levels k and k + 1 of every chain, for the even pairs k on one
        sweep and the odd ones on the next (deterministic even-odd swaps, Okabe et al. 2001,
        Syed et al. 2022: a replica then travels the ladder in about 2R sweeps, not R^2). The
        pairs of one sweep are disjoint, each swap an MH move on the product of the levels'
        targets, so every sweep leaves it invariant. Decided and exchanged by the compiled
        `numba_swaps.swap_levels` when F is compiled, else by numpy (`swap_numpy`)."""
        F = np.asarray(self.energy(x), np.float64).reshape(self.R, chains)
        log_u = np.log(rng.random((self.R - 1, chains)))
        gaps = self.ladder[:-1] - self.ladder[1:]
        self.parity ^= 1
        if self.compiled and x.dtype == np.float64 and x.flags.c_contiguous:
            from ebmlang.backends.numba_swaps import swap_levels
            swap_levels(x, F, log_u, gaps, self.parity, chains, self.tried, self.accepted)
        else:
            swap_numpy(x, F, log_u, gaps, self.parity, chains, self.tried, self.accepted)

    def persistent(self, rows, sweeps: int, rng, theta) -> np.ndarray:
        """PCD's model phase: `sweeps` steps of the replicas of chains `rows` (None: all), the
        ladder adapted every LADDER_EVERY steps (the model moves as it learns: it is never
        frozen); the b = 1 states of those chains, (len(rows), n_state)."""
        n = self.x.shape[1]
        x = self.x if rows is None else self.x.reshape(self.R, self.C, n)[:, rows].reshape(-1, n)
        for _ in range(sweeps):
            self.step(None, x, theta, rng)
            self.steps += 1
            if self.steps % LADDER_EVERY == 0:
                self.adapt()
        if rows is not None:
            self.x.reshape(self.R, self.C, n)[:, rows] = x.reshape(self.R, -1, n)
        return x[:len(x) // self.R]

    def adapt(self) -> None:
        """Move the ladder toward equal swap rates from the last window's (burn-in only)."""
        if self.frozen or self.R < 3 or not self.tried.all():
            self._reset()
            return
        rates = self.accepted / self.tried
        gaps = -np.diff(np.log(self.ladder))
        gain = ADAPT_GAIN / (1.0 + 0.1 * self.windows)
        gaps = gaps * np.exp(gain * (rates - rates.mean()))
        gaps *= -np.log(self.ladder[-1]) / gaps.sum()
        self.ladder = np.exp(-np.concatenate([[0.0], np.cumsum(gaps)]))
        self.ladder[0] = 1.0
        self.windows += 1
        self._reset()

    def freeze(self) -> None:
        """End the adaptation (at the end of burn-in) and count swaps from here on."""
        self.frozen = True
        self._reset()

    def _reset(self) -> None:
        self.tried[:] = 0
        self.accepted[:] = 0

    def rates(self) -> np.ndarray:
        """Swap acceptance of each neighbour pair since the ladder froze."""
        with np.errstate(invalid="ignore"):
            return self.accepted / self.tried

    def count_mask(self, chains: int | None = None) -> np.ndarray:
        """The rows of the b = 1 level (whose MH proposals count in the acceptance)."""
        c = self.C if chains is None else chains
        return np.arange(self.R * c) < c


def swap_numpy(x, F, log_u, gaps, first: int, chains: int, tried, accepted) -> None:
    """`numba_swaps.swap_levels` in numpy (the reference): the pairs k = first, first + 2, ...
    of levels, chain c's states swapped when log_u[k, c] < gaps[k] (F[k + 1, c] - F[k, c])."""
    with np.errstate(invalid="ignore", over="ignore"):
        F = np.where(np.isnan(F), -np.inf, F)
        k = np.arange(first, len(F) - 1, 2)
        yes = log_u[k] < gaps[k, None] * (F[k + 1] - F[k])            # (pairs, chains)
    tried[k] += chains
    accepted[k] += yes.sum(axis=1)
    a = (k[:, None] * chains + np.arange(chains))[yes]              # the lower level's rows
    if len(a):
        rows = np.concatenate([a, a + chains])
        x[rows] = x[np.concatenate([a + chains, a])]


def block_sweep(parts, replicas: Replicas, moves=None):
    """The sweep kind for block parts (numpy or compiled), as the hook takes it; with `moves`
    (`cluster_moves.ClusterMoves`), one cluster move of every group first, each replica at its
    beta (bonds 1 - exp(-beta K), cluster values from beta times the unary), then the parts
    the cluster moves do not replace."""
    def sweep(x, theta, rng, clamp, beta):
        kept = parts
        if moves is not None:
            kept = moves.gibbs_parts(parts, moves.sweep(x, theta, rng, clamp, beta))
        tempered_sweep(kept, x, theta, rng, clamp, beta, replicas.count_mask(len(x) // replicas.R))
    return sweep


def start(model, parts, x, clamp, replicas: int, b_min, burn_in: int = 0,
          compiled: bool = True) -> Replicas:
    """Replicas of the chains x (every level starts from x) sweeping the block parts, after
    one cluster move of every group where cluster moves apply; `compiled`: F for the swaps
    by the compiled energy (False: the numpy terms)."""
    from ebmlang.infer.cluster_moves import cluster_moves
    r = Replicas(model, x, clamp, replicas, b_min, [], compiled)
    r.sweeps.append(block_sweep(parts, r, cluster_moves(model, burn_in)))
    return r
