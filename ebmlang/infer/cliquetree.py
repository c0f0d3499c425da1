"""Every variable's exact marginal from one elimination order: the bucket tree that
elimination builds, calibrated by two passes.

Eliminating v combines v's bucket (the tables that read v and are left when v's turn comes)
and sums v out; the result goes to the bucket of the first-eliminated variable it reads, its
parent. The buckets form a tree (a clique tree: bucket v's cluster is v and the variables of
its result). The upward pass is elimination itself, keeping every message; it gives log Z.
The downward pass walks the order backwards: a bucket's message to a child is its tables, its
own downward message and its other children's messages, summed down to the child's
separator. A bucket's marginal is the same sum down to its variable. Each bucket is read
1 + (its children) times, so all marginals cost a small multiple of one log Z, not one
elimination per variable.

As in `elimination.sum_out`, a bucket's product is never built when it is large: the bucket
variable's values are taken a chunk at a time (every separator and marginal read from a
bucket contains its variable), so memory stays bounded by the tables produced.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ebmlang.backends.numeric import logsumexp
from ebmlang.errors import UserError
from ebmlang.infer.elimination import BUCKET_CHUNK, _combine, sum_out


def calibrate(tables: dict[tuple, np.ndarray], order: list[int], sizes: dict[int, int],
              scopes=None) -> tuple[float, dict[int, np.ndarray]]:
    """(log of the sum of exp(sum of the tables) over every variable in `order`, each
    variable's marginal probabilities). Every variable of every table must be in `order`.
    `scopes` (sorted tuples of variables, each the scope of some table): their joint
    marginals, axes in scope order, are put into that dict, read from the bucket of each
    scope's first-eliminated variable (whose cluster holds the whole scope)."""
    log_z, buckets, rest = _upward(tables, order, sizes)
    if log_z == -math.inf:
        raise UserError("every state has probability 0 (the evidence is impossible): no "
                        "marginals")
    wanted = defaultdict(list)
    rank = {v: k for k, v in enumerate(order)}
    for scope in scopes or ():
        wanted[min(scope, key=rank.__getitem__)].append(scope)
    down: dict[int, np.ndarray] = {}
    out = {}
    for v in reversed(order):
        facs = buckets.pop(v)
        if not facs:                      # read by no factor: uniform
            out[v] = np.full(sizes[v], 1.0 / sizes[v])
            for scope in wanted.pop(v, ()):
                scopes[scope] = out[v]    # a table over more would be in this bucket
            continue
        base = [(s, t) for s, t, _ in facs]
        if v in down:
            base.append((rest[v], down.pop(v)))
        logm = _reduce(base, (v,), v, sizes)
        out[v] = _normalized(logm)
        for scope in wanted.pop(v, ()):
            if not set(scope) <= {v, *rest[v]}:
                raise ValueError(f"scope {scope} is not in the cluster of bucket {v}")
            scopes[scope] = out[v] if len(scope) == 1 else \
                _normalized(_reduce(base, scope, v, sizes))
        for k, (s, _, child) in enumerate(facs):
            if child is not None:
                others = base[:k] + base[k + 1:]
                msg = _reduce(others, rest[child], v, sizes) if others else \
                    np.zeros([sizes[u] for u in rest[child]])
                with np.errstate(invalid="ignore"):
                    top = np.max(msg)
                down[child] = msg - top if np.isfinite(top) else msg
    return log_z, out


def _upward(tables, order, sizes):
    """Elimination keeping its messages: (log Z, bucket v -> [(scope, table, child bucket
    or None)], v -> the scope of v's message)."""
    store = {k: (s, t, None) for k, (s, t) in enumerate(tables.items())}
    where: dict[int, set[int]] = defaultdict(set)
    for key, (scope, _, _) in store.items():
        for u in scope:
            where[u].add(key)
    buckets, rest, total, fresh = {}, {}, 0.0, len(store)
    for v in order:
        keys = sorted(where.pop(v, set()))
        facs = [store.pop(k) for k in keys]
        buckets[v] = facs
        if not facs:
            rest[v] = ()
            total += math.log(sizes[v])
            continue
        scope, table, _ = sum_out([(s, t) for s, t, _ in facs], v, sizes)
        rest[v] = scope
        for u in scope:
            where[u] -= set(keys)
        if not scope:
            total += float(table)
            continue
        store[fresh] = (scope, table, v)
        for u in scope:
            where[u].add(fresh)
        fresh += 1
    if store:
        raise ValueError(f"tables over variables not in the order: {sorted(store)[:5]}")
    return total, buckets, rest


def _reduce(factors, keep: tuple, v: int, sizes: dict[int, int]) -> np.ndarray:
    """log-sum-exp of the sum of the factors down to the variables `keep` (sorted, holding
    v), axes in that order; taken over chunks of v's values when the product is large."""
    keep = tuple(sorted(keep))
    scope = tuple(sorted(set(keep).union(*(s for s, _ in factors))))
    others = math.prod(sizes[u] for u in scope if u != v)
    has_v = any(v in s for s, _ in factors)
    step = max(1, BUCKET_CHUNK // max(others, 1)) if has_v else sizes[v]
    parts = []
    for lo in range(0, sizes[v], step):
        hi = min(lo + step, sizes[v])
        part = factors if (lo, hi) == (0, sizes[v]) else [
            (s, t[(slice(None),) * s.index(v) + (slice(lo, hi),)] if v in s else t)
            for s, t in factors]
        got, table = _combine(part, extra=scope)
        drop = tuple(a for a, u in enumerate(got) if u not in keep)
        with np.errstate(divide="ignore"):
            parts.append(logsumexp(table, axis=drop) if drop else table)
    table = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=keep.index(v))
    return np.broadcast_to(table, [sizes[u] for u in keep])


def _normalized(logm: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.exp(logm - logsumexp(logm))
    return p / p.sum()
