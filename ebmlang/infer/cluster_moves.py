"""Cluster moves at run time: the ground arrays of each group of `cluster.plan`, K and the
unary terms evaluated from the compiled term kernels, and the sweep that drives the numba
kernels of `cluster_kernels`.

Per group: the sites (state ids and their domain values), the pair instances (ea, eb) with
K per instance, and the unary log-potential U[c, site, label]: the unary terms, plus the
unary parts split off the pairs (f(a, 0) - K [a == 0] for the first read, likewise for the
second). K and the static unary parts depend only on the params and the inputs: they are
evaluated again only when those change. Terms that also read variables outside the group
(`plan.dynamic`) are evaluated on every sweep, at the current state.

At an inverse temperature beta (per chain), the bond probability is 1 - exp(-beta K) and
the unary terms are multiplied by beta: a sweep at beta leaves exp(beta F) invariant, which is
what a tempering driver needs (`ClusterMoves.sweep(..., beta=...)`).
"""

from __future__ import annotations

import copy

import numpy as np
from numba import get_num_threads

from ebmlang.backends import cluster_kernels as ck
from ebmlang.backends.numba_backend import PARALLEL_WORK
from ebmlang.backends.lanes import Lanes, seed_words
from ebmlang.infer.cluster import METHODS, GroupPlan, pair_tables, plan, term_values
from ebmlang.middle.lower import id_dtype

NO_CLAMP = np.zeros((1, 0), np.bool_)
CHUNK = 1 << 18          # instances evaluated at once while tabulating
TOL = 1e-9               # relative slack of the pair decomposition and of K >= 0


class Group:
    """One group's ground arrays and its move (Swendsen-Wang sweep or Wolff steps)."""

    def __init__(self, model, gp: GroupPlan, burn_in: int = 0):
        self.model, self.plan = model, gp
        fams = [model.vars[f] for f in gp.families]
        ids = id_dtype(model.checked.n_state)      # int32 below 2^31: half the memory
        self.sid = np.concatenate([np.arange(f.offset, f.offset + f.space.size, dtype=ids)
                                   for f in fams])
        rows = [np.broadcast_to(f.domain.values, (f.space.size, f.domain.size)) for f in fams]
        self.vals = rows[0] if len(rows) == 1 else np.concatenate(rows)   # (sites, labels)
        self.where = np.full(model.checked.n_state, -1, ids)
        self.where[self.sid] = np.arange(len(self.sid), dtype=ids)
        self.pairs = []     # (term, reads, rows joining two sites or None: all, first pair)
        self.selfs = []     # (term, reads, rows whose two reads are one site)
        ea, eb, at = [np.zeros(0, ids)], [np.zeros(0, ids)], 0
        for form in gp.pairs:
            t = model.terms[form.term]
            a, b = (self.where[t.reads[k].ids] for k in form.reads)
            two = np.flatnonzero(a != b)
            self.pairs.append((form.term, form.reads, None if len(two) == t.size else two, at))
            if len(two) < t.size:
                self.selfs.append((form.term, form.reads, np.flatnonzero(a == b)))
                a, b = a[two], b[two]
            ea.append(a)
            eb.append(b)
            at += len(two)
        self.ea, self.eb = np.concatenate(ea).astype(ids), np.concatenate(eb).astype(ids)
        self.inputs = model.state_ids(("input",))
        self.key = None
        self.K = self.U = None
        self.frustrated: str | None = None
        self.steps, self.burn_in, self.calls = 1, burn_in, 0
        self._grown = self._tried = 0
        self.kvals = np.ascontiguousarray(self.vals)
        self.works: dict[int, tuple] = {}      # blocks of chains -> the kernel's work arrays
        if gp.method == "wolff":
            self._neighbours()
        else:
            self._bond_order()

    @property
    def families(self) -> tuple[str, ...]:
        return self.plan.families

    def _bond_order(self) -> None:
        """The bonds for Swendsen-Wang as (lo, hi) with lo < hi, in order of hi then lo (the
        union-find's cheap order, `cluster_kernels._join`), and its work arrays. Every index
        the kernel reads is unsigned (`_index_type`): numba then checks for no negative one,
        a fifth of the sweep."""
        lo, hi = np.minimum(self.ea, self.eb), np.maximum(self.ea, self.eb)
        self.order = np.lexsort((lo, hi))
        n, k = self.vals.shape
        u = _index_type(max(self.model.checked.n_state, len(lo)))
        self.lo, self.hi, self.usid = lo[self.order].astype(u), hi[self.order].astype(u), \
            self.sid.astype(u)
        one = bool(np.all(self.vals == self.vals[:1]))     # one domain: compare values
        none = np.zeros(0, u)
        self.ends = (self.usid[self.lo], self.usid[self.hi]) if one else (none, none)
        self.shapes = (((n,), u), ((n,), u), ((len(lo),), u), ((n, k), np.float64),
                       ((n,), np.bool_))

    def _neighbours(self) -> None:
        """CSR adjacency of the sites for Wolff (unsigned, as in `_bond_order`): neighbour
        site and pair number, and the work arrays."""
        n, E = len(self.sid), len(self.ea)
        u = _index_type(max(self.model.checked.n_state, 2 * E + 1))
        src = np.concatenate([self.ea, self.eb])
        order = np.argsort(src, kind="stable")
        self.nb_site = np.concatenate([self.eb, self.ea])[order].astype(u)
        self.nb_edge = np.concatenate([np.arange(E), np.arange(E)])[order]
        self.nb_ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(u)
        self.usid = self.sid.astype(u)
        self.shapes = (((n,), u), ((n + 1,), u))    # members: + 1 for `_grow`'s last write

    # ------------------------------------------------------------ K and the static unary terms
    def refresh(self, x: np.ndarray, theta: np.ndarray) -> None:
        """K and the static unary terms, again when the params or the inputs changed."""
        key, same = self._key(x, theta)
        if key == self.key:
            return
        self.key, self._pb = key, None
        xs = x[:1] if same else x
        self.K, self.U, self.frustrated = self._tabulate(xs, theta)
        self.field = self.U is not None and bool(np.any(self.U != self.U[:, :, :1]))
        self._none = np.zeros((1, 0, self.vals.shape[1]))
        if not self.field and not self.plan.dynamic:
            self.U = None                  # label-independent: no unary terms to keep

    def _key(self, x: np.ndarray, theta: np.ndarray) -> tuple[tuple, bool]:
        """What K and the static unary terms depend on, as bytes (cheap to compare on every
        sweep): the params, and the inputs (one row when every chain has the same)."""
        if len(self.inputs) == 0:
            return (theta.tobytes(),), True
        xin = x[:, self.inputs]
        same = bool(np.all(xin == xin[:1]))
        xin = xin[:1] if same else xin
        return (theta.tobytes(), xin.shape, xin.tobytes()), same

    def _tabulate(self, xs, theta):
        model, n, k = self.model, len(self.sid), self.vals.shape[1]
        U = np.zeros((xs.shape[0], n, k))
        Ks, bad = [], None
        for n_t, reads, rows, at in self.pairs:
            t = model.terms[n_t]
            count = t.size if rows is None else len(rows)
            for s in range(0, count, CHUNK):
                r = np.arange(s, min(s + CHUNK, count)) if rows is None else rows[s:s + CHUNK]
                ea, eb = self.ea[at + s:at + s + len(r)], self.eb[at + s:at + s + len(r)]
                K, (ua, wb), residual = pair_tables(model, n_t, reads, xs, theta, r)
                if residual > TOL:
                    bad = f"{t.owner}: not a weight on equality plus unary parts at these params"
                    return None, None, bad
                neg = K < -TOL * (1 + np.abs(K))
                if neg.any() and bad is None:
                    c, e = np.argwhere(neg)[0]
                    bad = (f"{t.label(int(r[e]))} has K = {K[c, e]:.4g} < 0 (frustrated)")
                if bad is not None:      # frustrated: no move, so no unary terms either
                    return None, None, bad
                _add(U, ea, ua)
                _add(U, eb, wb)
                Ks.append(np.maximum(K, 0.0))
        for n_t, reads, rows in self.selfs:
            t, kernel = model.terms[n_t], model.kernels[n_t]
            vals = self.vals[self.where[t.reads[reads[0]].ids[rows]]]
            cols = np.stack([term_values(kernel, xs, theta, rows, [(reads[0], vals[:, j]),
                                                             (reads[1], vals[:, j])])
                             for j in range(k)], -1)
            _add(U, self.where[t.reads[reads[0]].ids[rows]], cols)
        for term, read in self.plan.unary:
            U += self._unary(term, read, xs, theta)
        K = np.concatenate(Ks, axis=1) if Ks else np.zeros((xs.shape[0], 0))
        return np.ascontiguousarray(K), U, bad

    def _unary(self, n: int, read: int, x, theta) -> np.ndarray:
        """(chains, sites, labels): term n's value with its one group read at each label."""
        t = self.model.terms[n]
        kernel = self.model.kernels[n]
        out = np.zeros((x.shape[0], len(self.sid), self.vals.shape[1]))
        site = self.where[t.reads[read].ids]
        for s in range(0, t.size, CHUNK):
            rows = np.arange(s, min(s + CHUNK, t.size))
            vals = self.vals[site[rows]]
            cols = np.stack([term_values(kernel, x, theta, rows, [(read, vals[:, j])])
                             for j in range(vals.shape[1])], -1)
            _add(out, site[rows], cols)
        return out

    # ------------------------------------------------------------ the move
    def move(self, x, theta, rng, fixed, beta, owners=None) -> None:
        """One sweep (Swendsen-Wang) or `steps` single-cluster steps (Wolff), in place.
        `owners`: for chain groups (rng a Lanes), each group's copy of this group, whose Wolff
        step count its chains take and adapt (as the group run alone would)."""
        h = self.U if self.field or self.plan.dynamic else self._none
        if self.plan.dynamic:
            h = h + sum(self._unary(n, r, x, theta) for n, r in self.plan.dynamic)
        b = np.asarray(beta, float).reshape(-1)
        if h.shape[1] and not np.all(b == 1.0):
            h = h * b[:, None, None]
        pbond = self._bonds(b)
        seeds = seed_words(rng, x.shape[0])
        h, chains = np.ascontiguousarray(h), x.shape[0]
        par = chains > 1 and chains * len(self.sid) >= PARALLEL_WORK
        work = self._work(min(chains, get_num_threads()) if par else 1)
        if self.plan.method == "swendsen_wang":
            (ck.pswendsen_wang if par else ck.swendsen_wang)(
                x, seeds, self.usid, self.kvals, self.lo, self.hi, *self.ends, pbond, h, fixed,
                *work)
            return
        owners, rows = ([self], [slice(None)]) if owners is None else (owners, rng.rows)
        steps = np.concatenate([np.full(len(x[r]), o.steps) for o, r in zip(owners, rows)])
        counts = np.empty((chains, 2), np.int64)     # per chain: sites grown, steps accepted
        (ck.pwolff if par else ck.wolff)(
            x, seeds, self.usid, self.kvals, self.nb_ptr, self.nb_site, pbond, h, fixed, steps,
            *work, counts)
        for o, r in zip(owners, rows):
            o._adapt(int(counts[r, 0].sum()), len(counts[r]))

    def _work(self, blocks: int) -> tuple:
        """The kernel's work arrays for `blocks` blocks of chains, one row each, kept between
        sweeps (a block a thread when chains x sites >= PARALLEL_WORK, as for Gibbs)."""
        if blocks not in self.works:
            self.works[blocks] = tuple(np.empty((blocks,) + shape, t) for shape, t in self.shapes)
        return self.works[blocks]

    def _bonds(self, b: np.ndarray) -> np.ndarray:
        """ceil(p 2^53) as uint64 with p = 1 - exp(-beta K), (1 or chains, bonds) in the
        kernel's order (Swendsen-Wang's bond order, Wolff's adjacency entries), kept until
        beta or K change: u < p exactly when the 53-bit integer r of u = r / 2^53 is below
        it, so the same draws with no float per bond."""
        key = b.tobytes()
        if self._pb is None or self._pb[0] != key:
            p = -np.expm1(-b[:, None] * self.K)
            p = p[:, self.order if self.plan.method == "swendsen_wang" else self.nb_edge]
            p = np.ceil(p * 2.0 ** 53).astype(np.uint64)
            self._pb = (key, np.ascontiguousarray(p))
        return self._pb[1]

    def _adapt(self, grown: int, chains: int) -> None:
        """During burn-in: Wolff steps per sweep toward one site visited per site of the
        group on average (frozen after, so the kept chain is a fixed Markov chain)."""
        self.calls += 1
        if self.calls > self.burn_in:
            return
        self._grown += grown
        self._tried += self.steps * chains
        mean = self._grown / max(self._tried, 1)
        self.steps = int(min(max(1, round(len(self.sid) / max(mean, 1.0))), len(self.sid)))


def _index_type(count: int):
    """The unsigned integer type for indices below `count`."""
    return np.uint32 if count < 2 ** 32 else np.uint64


def _add(U: np.ndarray, sites: np.ndarray, vals: np.ndarray) -> None:
    """U[c, sites[r], :] += vals[c, r, :], with repeated sites summed."""
    c, n, k = U.shape
    for j in range(k):
        for ch in range(c):
            U[ch, :, j] += np.bincount(sites, weights=vals[ch if vals.shape[0] > 1 else 0, :, j],
                                       minlength=n)


class ClusterMoves:
    """Every group's move, driven once per sweep (see the module docstring)."""

    def __init__(self, model, burn_in: int = 0):
        self.model = model
        self.groups = [Group(model, gp, burn_in) for gp in plan(model).groups]
        self._gibbs = {}
        self.inputs = bool(len(model.state_ids(("input",))))
        self.stateless = all(g.plan.method == "swendsen_wang" for g in self.groups)

    def sweep(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
              clamp: np.ndarray | None = None, beta=1.0, copies=None) -> frozenset:
        """One cluster move of every group, in place on x (chains, n_state); `clamp` (NaN where
        free) holds cells fixed; `beta` is a number or one per chain; `copies`: with chain
        groups (rng a Lanes), each group's copy of these moves (its Wolff step counts). Returns
        the families moved by cluster moves alone (explicit groups not frustrated): they need
        no Gibbs sweep."""
        alone = set()
        for j, g in enumerate(self.groups):
            g.refresh(x, theta)
            if g.frustrated is not None:
                continue
            fixed = NO_CLAMP if clamp is None else np.ascontiguousarray(~np.isnan(clamp[:, g.sid]))
            g.move(x, theta, rng, fixed, beta, None if copies is None else
                   [c.groups[j] for c in copies])
            if g.plan.explicit:
                alone.update(g.families)
        return frozenset(alone)

    def gibbs_parts(self, parts: list[list], alone: frozenset) -> list[list]:
        """The block parts without those of the families in `alone`, blocks left empty dropped
        (the parts themselves when `alone` is empty)."""
        if not alone:
            return parts
        key = (id(parts), alone)
        if key not in self._gibbs:
            kept = [[p for p in block if p.family not in alone] for block in parts]
            self._gibbs[key] = (parts, [b for b in kept if b])
        return self._gibbs[key][1]


def cluster_moves(model, burn_in: int = 0) -> ClusterMoves | None:
    """The model's cluster moves, or None when no family qualifies (`cluster.plan`)."""
    return ClusterMoves(model, burn_in) if plan(model).groups else None


def with_cluster_moves(model, step, burn_in: int = 0):
    """A sweep function like `step` (parts, x, theta, rng, clamp) that first makes one cluster
    move of every group, then a Gibbs sweep of the parts the cluster moves do not replace."""
    moves = cluster_moves(model, burn_in)
    if moves is None:
        return step

    def sweep(parts, x, theta, rng, clamp=None):
        if isinstance(rng, Lanes):
            return _by_groups(moves, step, parts, x, theta, rng, clamp)
        alone = moves.sweep(x, theta, rng, clamp)
        step(moves.gibbs_parts(parts, alone), x, theta, rng, clamp)
        return x
    sweep.moves = moves
    return sweep


def _by_groups(moves, step, parts, x, theta, lanes, clamp):
    """`with_cluster_moves`' sweep for chain groups (`backends.lanes`). Without inputs, one
    kernel call per cluster group over every chain, each chain seeded from its chain group's
    Generator and making its chain group's own (adapted) count of Wolff steps, the only state
    a sweep keeps (K, the unary terms and frustration are the same for every chain).
    Otherwise each chain group's cluster moves on its rows, from its Generator, with its own
    copy of their state; then one Gibbs sweep of every chain, or one per chain group where
    their cluster moves replaced different families (a group frustrated by its inputs)."""
    if not moves.inputs:
        copies = None if moves.stateless else [lanes.own(moves, k, _copy_moves)
                                               for k, _, _ in lanes]
        alone = moves.sweep(x, theta, lanes, clamp, copies=copies)
        step(moves.gibbs_parts(parts, alone), x, theta, lanes, clamp)
        return x
    alone = [lanes.own(moves, k, _copy_moves).sweep(x[rows], theta, r, _rows(clamp, rows))
             for k, rows, r in lanes]
    if len(set(alone)) == 1:
        step(moves.gibbs_parts(parts, alone[0]), x, theta, lanes, clamp)
        return x
    for k, rows, _ in lanes:
        step(moves.gibbs_parts(parts, alone[k]), x[rows], theta, lanes.only(k), _rows(clamp, rows))
    return x


def _rows(clamp, rows):
    return None if clamp is None else clamp[rows]


def _copy_moves(moves: ClusterMoves) -> ClusterMoves:
    """A copy with its own groups' state (the ground arrays and work arrays shared)."""
    out = copy.copy(moves)
    out.groups = [copy.copy(g) for g in moves.groups]
    return out


def frustration(model) -> dict[str, str]:
    """Family -> why its group falls back to Gibbs at the current params (K < 0 somewhere),
    for groups whose K does not depend on inputs; for `ebmlang check` (kept per params)."""
    theta = model.params.theta
    known = getattr(model, "_cluster_frustration", None)
    if known is not None and np.array_equal(known[0], theta):
        return known[1]
    out = {}
    inputs = len(model.state_ids(("input",)))
    for gp in plan(model).groups:
        reads_input = any(not model.vars[r.family].sampled for f in gp.pairs
                          for r in model.terms[f.term].reads)
        if reads_input and inputs:
            continue
        g = Group(model, gp)
        g.refresh(np.zeros((1, model.checked.n_state)), model.params.theta)
        if g.frustrated is not None:
            out.update({f: g.frustrated for f in gp.families})
    model._cluster_frustration = (theta.copy(), out)
    return out


# ---------------------------------------------------------------- what check and conditionals say

def family_text(model, family: str) -> str | None:
    """How cluster moves treat a finite family, for `ebmlang check` and `conditionals`."""
    p = plan(model)
    for g in p.groups:
        if family in g.families:
            name = METHODS[g.method]
            with_ = ", ".join(f for f in g.families if f != family)
            group = f" (a group with {with_})" if with_ else ""
            ks = ", ".join(f"{model.terms[f.term].owner} K = {f.k_text}" for f in g.pairs)
            how = {f.how for f in g.pairs}
            ks = f"pairs {ks} ({', '.join(sorted(how))})" if ks else "no pairs"
            stuck = frustration(model).get(family)
            if stuck is not None:
                return f"Gibbs, exact; {name} falls back to Gibbs at these params: {stuck}" \
                    f"{group}; {ks}"
            what = f"{name} cluster moves alone (sampler statement)" if g.explicit else \
                f"Gibbs, exact, and one {name} sweep with each (the default where they apply)"
            return f"{what}{group}; {ks}; Gibbs alone wherever K < 0 (frustrated)"
    if family in p.why_not and model.vars[family].domain.finite:
        return f"Gibbs, exact; no cluster moves: {p.why_not[family]}"
    return None
