"""Loopy belief propagation: approximate marginals and a Bethe estimate of log Z for finite
models too wide to eliminate.

Sum-product on the factor graph of the ground log tables (`elimination.ground_factors`), in log
space. Tables of one variable are folded into that variable and send no messages. Damping is
geometric, in log space, on the factor -> variable messages:

    log m  <-  damping * log m_old + (1 - damping) * log m_new,   then renormalized,

as PGMax does; it keeps a hard zero (-inf) a zero, and needs no exp/log round trip. A message's
change is measured in probability (L-infinity); BP has converged when the largest change is
below `tol`. Schedules: "parallel" (flooding: every message from the old ones) and "residual"
(Elidan, McGraw and Koller 2006: always the message that would change most; an iteration is
as many message updates as there are messages). On a tree BP is exact; on a loopy graph its
marginals and log Z are approximations, and `converged` says whether they are even a fixed point.

The Bethe estimate, with b_a the factor beliefs, b_i the variable beliefs, u_i the folded unary
log tables and d_i the number of tables of two or more variables that read i:

    log Z ~ sum_a (E_{b_a}[log psi_a] + H(b_a)) + sum_i (E_{b_i}[u_i] + (1 - d_i) H(b_i)).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ebmlang.errors import UserError

SCHEDULES = ("parallel", "residual")


class BPResult(NamedTuple):
    """What loopy BP found; the marginals and log_z are approximate unless the graph is a tree."""

    marginals: dict[int, np.ndarray]    # var id -> probabilities over its states
    log_z: float                        # Bethe estimate of log Z (without ground_factors' constant)
    iterations: int
    converged: bool
    max_residual: float                 # largest message change (probability) at the end


class Graph(NamedTuple):
    """The flat factor graph the kernels of `ebmlang.backends.numba_bp` read."""

    ids: list[int]              # var ids, in row order
    unary: np.ndarray           # (V, D) folded one-variable log tables, -inf past a domain
    tab: np.ndarray             # every larger table, flattened and concatenated
    tab_off: np.ndarray         # (A + 1,)
    edge_off: np.ndarray        # (A + 1,) edges of factor a
    evar: np.ndarray            # (E,) row of the edge's variable
    efac: np.ndarray            # (E,) its factor
    estride: np.ndarray         # (E,) its stride in the flat table
    esize: np.ndarray           # (E,) its domain size
    vedge_off: np.ndarray       # (V + 1,) edges of variable v ...
    vedges: np.ndarray          # ... listed here
    sizes: np.ndarray           # (V,)


def loopy_bp(tables: dict[tuple, np.ndarray], sizes: dict[int, int], *, damping: float = 0.5,
             max_iter: int = 1000, tol: float = 1e-6, schedule: str = "residual") -> BPResult:
    """Loopy sum-product BP on `tables` ({sorted var ids: log table}) over the variables of
    `sizes` ({var id: number of states})."""
    if schedule not in SCHEDULES:
        raise UserError(f"unknown BP schedule '{schedule}'; use one of {', '.join(SCHEDULES)}")
    if not 0.0 <= damping < 1.0:
        raise UserError(f"BP damping must be in [0, 1); got {damping}")
    if max_iter < 0:
        raise UserError(f"BP needs max_iter >= 0; got {max_iter}")
    g = build(tables, sizes)
    m = initial_messages(g)
    iterations, worst = run(g, m, damping, max_iter, tol, schedule)
    return finish(g, m, iterations, worst, tol)


def build(tables: dict[tuple, np.ndarray], sizes: dict[int, int]) -> Graph:
    """The flat graph of `tables`: one-variable tables folded into `unary`, the rest as factors."""
    ids = sorted(sizes)
    row = {v: r for r, v in enumerate(ids)}
    size = np.array([sizes[v] for v in ids], np.int64)
    D = int(size.max()) if len(ids) else 1
    unary = np.where(np.arange(D)[None, :] < size[:, None], 0.0, -np.inf)
    flats, tab_off, evar, estride, esize, edge_off = [], [0], [], [], [], [0]
    for scope, table in tables.items():
        table = np.ascontiguousarray(table, np.float64)
        if len(scope) == 1:
            unary[row[scope[0]], :table.shape[0]] += table
            continue
        if len(scope) == 0:
            continue
        flats.append(table.ravel())
        tab_off.append(tab_off[-1] + table.size)
        strides = np.array(table.strides) // table.itemsize
        evar += [row[v] for v in scope]
        estride += [int(s) for s in strides]
        esize += list(table.shape)
        edge_off.append(len(evar))
    evar = np.array(evar, np.int64)
    order = np.argsort(evar, kind="stable")
    counts = np.bincount(evar, minlength=len(ids))
    edge_off = np.array(edge_off, np.int64)
    efac = np.repeat(np.arange(len(edge_off) - 1), np.diff(edge_off))
    tab = np.concatenate(flats) if flats else np.zeros(0)
    return Graph(ids, unary, tab, np.array(tab_off, np.int64), edge_off, evar, efac,
                 np.array(estride, np.int64), np.array(esize, np.int64),
                 np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                 order.astype(np.int64), size)


def initial_messages(g: Graph) -> np.ndarray:
    """Uniform messages, (E, 2D): log probabilities (-inf past each domain), then the
    probabilities."""
    D = g.unary.shape[1]
    d = g.esize[:, None]
    inside = np.arange(D)[None, :] < d
    return np.hstack([np.where(inside, -np.log(d), -np.inf), np.where(inside, 1.0 / d, 0.0)])


def run(g: Graph, m: np.ndarray, damping: float, max_iter: int, tol: float,
        schedule: str) -> tuple[int, float]:
    """Update the messages m in place; (iterations, the largest change left)."""
    from ebmlang.backends import numba_bp
    E = m.shape[0]
    if E == 0:
        return 0, 0.0
    pairs = pairwise(g) if schedule == "parallel" else None
    if pairs is not None:
        return flood_pairs(g, m, pairs, damping, max_iter, tol)
    if schedule == "parallel":
        it, worst = numba_bp.flood(max_iter, tol, damping, g.unary, g.tab, g.tab_off,
                                   g.edge_off, g.evar, g.estride, g.esize, g.vedge_off,
                                   g.vedges, m)
        return int(it), float(worst)
    done, worst = numba_bp.residual(max_iter * E, tol, damping, g.unary, g.tab, g.tab_off,
                                    g.edge_off, g.evar, g.efac, g.estride, g.esize,
                                    g.vedge_off, g.vedges, m)
    return int(math.ceil(done / E)), float(worst)


# Every ratio stays within exp(+-RATIO_BOUND) (a bound of the fast kernel's overflow margin).
RATIO_BOUND = 600.0


def pairwise(g: Graph):
    """(unary ratios, psi) when `numba_bp_pairs` applies to g (binary variables, factors of two
    variables, finite tables whose log ranges keep every ratio within exp(+-RATIO_BOUND)),
    else None. A message's log ratio is bounded by its factor's log range R_f, a belief's by
    |u_1 - u_0| plus the R_f of its factors, a cavity's by that plus R_f."""
    if not len(g.ids) or np.any(g.sizes != 2) or np.any(np.diff(g.edge_off) != 2):
        return None
    if not (np.all(np.isfinite(g.unary)) and np.all(np.isfinite(g.tab))):
        return None
    e0 = g.edge_off[:-1]
    x, y = np.divmod(np.arange(4), 2)
    t = g.tab[g.tab_off[:-1, None] + x[None, :] * g.estride[e0, None]
              + y[None, :] * g.estride[e0 + 1, None]]          # (F, 4): T[x_u, x_w], C order
    spread = t.max(axis=1) - t.min(axis=1)
    du = g.unary[:, 1] - g.unary[:, 0]
    bound = np.abs(du) + np.bincount(g.evar, np.repeat(spread, 2), minlength=len(g.ids))
    if bound.max() + 2 * spread.max(initial=0.0) > RATIO_BOUND:
        return None
    return np.exp(du), np.exp(t - t.max(axis=1, keepdims=True))


def flood_pairs(g: Graph, m: np.ndarray, pairs, damping: float, max_iter: int,
                tol: float) -> tuple[int, float]:
    """The flooding schedule by `numba_bp_pairs`, from and back into the messages m."""
    from ebmlang.backends.numba_bp_pairs import flood_pairs as kernel
    bu, psi = pairs
    d = m[:, 1] - m[:, 0]                       # log ratios, edges (u, w) of each factor
    r = np.exp(d)
    p = r / (1.0 + r)
    ru, rw, pu, pw = (np.ascontiguousarray(a) for a in (r[0::2], r[1::2], p[0::2], p[1::2]))
    it, worst = kernel(max_iter, tol, damping, bu, g.evar[0::2].copy(), g.evar[1::2].copy(),
                       psi, ru, rw, pu, pw)
    r[0::2], r[1::2] = ru, rw
    d = np.log(r)
    m[:, 0], m[:, 1] = -np.logaddexp(0.0, d), -np.logaddexp(0.0, -d)
    m[:, 2], m[:, 3] = 1.0 / (1.0 + r), r / (1.0 + r)
    return int(it), float(worst)


def beliefs(g: Graph, m: np.ndarray) -> np.ndarray:
    """(V, D) unnormalized log beliefs of the variables."""
    from ebmlang.backends import numba_bp
    b = np.empty_like(g.unary)
    for v in range(len(g.ids)):
        numba_bp.belief(v, g.unary, m, g.vedge_off, g.vedges, b)
    return b


def finish(g: Graph, m: np.ndarray, iterations: int, worst: float, tol: float) -> BPResult:
    """Marginals and the Bethe log Z from the messages."""
    from ebmlang.backends import numba_bp
    from ebmlang.backends.numeric import logsumexp
    b = beliefs(g, m)
    with np.errstate(divide="ignore"):        # a variable with every value ruled out
        top = logsumexp(b, axis=1)
    if np.any(top == -np.inf):
        v = g.ids[int(np.flatnonzero(top == -np.inf)[0])]
        raise UserError(f"belief propagation finds no possible value of variable {v}: the "
                        "model gives every state probability 0")
    logp = b - top[:, None]
    p = np.exp(logp)
    finite = p > 0
    ent = -np.sum(p * np.where(finite, logp, 0.0), axis=1)
    energy = np.sum(p * np.where(finite, g.unary, 0.0), axis=1)
    degree = np.diff(g.vedge_off)
    log_z = float(np.sum(energy + (1 - degree) * ent))
    log_z += float(numba_bp.bethe_factors(g.tab, g.tab_off, g.edge_off, g.evar, g.estride,
                                          g.esize, b, m, g.unary.shape[1]))
    marginals = {v: p[r, :g.sizes[r]] for r, v in enumerate(g.ids)}
    return BPResult(marginals, log_z, iterations, bool(worst < tol), float(worst))
