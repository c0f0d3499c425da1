"""Exact means of the `stat`s from the calibrated clique tree.

A stat is a sum of ground terms, each reading a few variables, so E[stat] is the sum over its
terms of E[term] = sum over the term's scope of P(scope) * value. Each term's table over its
scope is built as `elimination.ground_factors` builds the factors' (clamped variables
substituted); a scope no factor table covers gets a zero table, so the elimination puts it
into one bucket's cluster, and `cliquetree.calibrate` reads its joint marginal there. The
zero tables can widen the elimination: `cost` says by how much before anything is built.
"""

from __future__ import annotations

import numpy as np

from ebmlang.infer.elimination import _cost, interaction_graph
from ebmlang.infer.ground_tables import count_text, term_tables


def stat_terms(model, x0: np.ndarray, clamp_index: dict[int, int]) -> list[tuple]:
    """(stat name, entry in the stat's flat space, scope, table) of every ground stat term,
    with the clamped variables (id -> value index) substituted."""
    out = []
    for kernel in model.stat_kernels:
        t = kernel.term
        if not t.size:
            continue
        for row, scope, table in term_tables(model, kernel, x0):
            if any(u in clamp_index for u in scope):
                table = np.asarray(table[tuple(clamp_index.get(u, slice(None)) for u in scope)])
                scope = tuple(u for u in scope if u not in clamp_index)
            entry = row if t.outer_rows is None else int(t.outer_rows[row])
            out.append((t.owner, entry, scope, table))
    return out


def cover(tables: dict[tuple, np.ndarray], terms, sizes: dict[int, int]):
    """(the tables with a zero table over every term scope none has, the scopes added)."""
    extra = sorted({s for _, _, s, _ in terms if s and s not in tables})
    out = dict(tables)
    for s in extra:
        out[s] = np.zeros([sizes[u] for u in s])
    return out, extra


def cost(model, order: list[int], extra) -> tuple[int, int]:
    """(largest table, all buckets' products) of the elimination in `order` once the scopes
    `extra` are tables too."""
    from ebmlang.infer.elimination import sampled_sizes
    g = interaction_graph(model).copy()
    for s in extra:
        g.add_edges_from((a, b) for k, a in enumerate(s) for b in s[k + 1:])
    _, largest, work, _, _ = _cost(g, [v for v in order if v in g], sampled_sizes(model))
    return largest, work


def means(model, terms, joints: dict[tuple, np.ndarray]) -> dict[str, np.ndarray]:
    """name -> E[stat] (shaped as `Model.stat_values` shapes one state's values) from each
    term scope's joint marginal."""
    acc = {name: np.zeros(s.space.size) for name, s in model.checked.stats.items()}
    for name, entry, scope, table in terms:
        if not scope:
            acc[name][entry] += float(table)
            continue
        p = joints[scope]
        with np.errstate(invalid="ignore"):
            acc[name][entry] += float(np.sum(np.where(p > 0, table, 0.0) * p))
    out = {}
    for name, s in model.checked.stats.items():
        arr = acc[name]
        out[name] = np.asarray(arr[0]) if s.index is None else (
            arr.reshape(s.space.shape) if s.space.dense else arr)
    return out


def too_costly(largest: int, work: int) -> str:
    return (f"the stats' terms would widen the clique tree to a largest table of "
            f"{count_text(largest)} entries ({count_text(work)} in all)")
