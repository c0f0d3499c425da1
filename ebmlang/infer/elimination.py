"""Variable elimination on the ground factor graph: log Z exactly for finite models of small
treewidth, without enumerating every state.

Each ground factor instance becomes a table of its log-potential over the distinct sampled
variables it reads (inputs are fixed at their given values). Instances over the same variables
are added into one table. networkx's treewidth heuristics give a tree decomposition of the
interaction graph; peeling its leaves gives an elimination order whose largest intermediate
table is known before any arithmetic is done, so a model too wide is refused up front. Tables
are combined by broadcasting over named axes and summed out with log-sum-exp, so nothing
overflows.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ebmlang.errors import UserError
from ebmlang.backends.numeric import logsumexp
from ebmlang.infer.ground_tables import MAX_TABLE, count_text, ground_factors

BUCKET_CHUNK = 1 << 23    # entries of a bucket's product built at once: a larger one is summed
                          # out over chunks of the eliminated variable's values
MAX_MESSAGES = 1 << 29    # `auto` marginals: the clique tree keeps at most this (4 GiB) of messages
MAX_WORK = 1 << 31        # `auto` eliminates when all tables together stay below this (~20 s)
SCREEN_WIDTH = 40         # `auto` plans no order when greedy min-degree is wider than this
MAX_FILL_IN_VARS = 1000   # above this, the faster min-degree heuristic plans the order
MAX_PLAN_VARS = 20_000    # above this, no elimination order is planned at all


@dataclass
class Plan:
    """An elimination order and what it costs, known before any table is built."""

    order: list[int]          # ground variable ids, first eliminated first
    width: int                # largest (variable + its neighbours at elimination) - 1
    largest: int              # entries of the largest table produced (a bucket's sum)
    heuristic: str            # "min-fill" or "min-degree"
    work: int = 0             # entries of all the buckets' products together (never all built)
    product: int = 1          # entries of the largest bucket product (summed out in chunks)
    messages: int = 0         # entries of all the tables produced (the clique tree keeps them)

    @property
    def feasible(self) -> bool:
        return self.largest <= MAX_TABLE

    @property
    def quick(self) -> bool:
        """Feasible, and cheap enough for `auto` to prefer it to an estimate."""
        return self.feasible and self.work <= MAX_WORK

    def describe(self) -> str:
        return (f"elimination width {self.width} ({self.heuristic} heuristic), largest table "
                f"{count_text(self.largest)} entries ({memory_text(self.largest)})")

    def refusal(self) -> str:
        return (f"variable elimination would produce a table of {count_text(self.largest)} "
                f"entries, {memory_text(self.largest)} (elimination width {self.width} with the "
                f"{self.heuristic} heuristic; at most {count_text(MAX_TABLE)} entries, "
                f"{memory_text(MAX_TABLE)}): use --method ais")


def memory_text(entries: int) -> str:
    """The memory of a table of float64 entries, for a message."""
    size = 8 * entries
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}" if size < 1000 * (1 << 40) else \
                f"about 10^{math.floor(math.log10(size))} bytes"
    return f"{size:,} bytes"


# ---------------------------------------------------------------- planning

def sampled_sizes(model) -> dict[int, int]:
    """Domain size of every sampled ground variable, by id; UserError for a real domain."""
    sizes = {}
    for f in model.vars.values():
        if not f.sampled:
            continue
        if not f.domain.finite:
            raise UserError(f"variable elimination needs finite domains: '{f.name}' is "
                            f"{f.domain.text}")
        sizes.update(dict.fromkeys(range(f.offset, f.offset + f.space.size), f.domain.size))
    return sizes


def interaction_graph(model) -> nx.Graph:
    """Sampled ground variables, joined when some factor instance reads both."""
    g = nx.Graph()
    g.add_nodes_from(sampled_sizes(model))
    g.add_edges_from(map(tuple, model.graph.edges.tolist()))
    return g


def wider_than(g: nx.Graph, limit: int) -> bool:
    """True when greedy min-degree elimination meets a variable with more than `limit`
    neighbours. It stops there, so a wide model is recognized quickly (networkx's heuristics
    take 20 s on a 128 x 128 torus); `auto` asks this before planning."""
    adj = {v: set(g[v]) for v in g}
    heap = [(len(n), v) for v, n in adj.items()]
    heapq.heapify(heap)
    while heap:
        d, v = heapq.heappop(heap)
        if v not in adj or d != len(adj[v]):
            continue
        if d > limit:
            return True
        nbrs = adj.pop(v)
        for u in nbrs:
            adj[u].discard(v)
            adj[u] |= nbrs - {u}
            heapq.heappush(heap, (len(adj[u]), u))
    return False


def plan(model) -> Plan:
    """An elimination order from networkx's min-fill (or, for big graphs, min-degree)
    heuristic, with its width and largest table."""
    from networkx.algorithms.approximation import (
        treewidth_min_degree,
        treewidth_min_fill_in,
    )
    sizes = sampled_sizes(model)
    if len(sizes) > MAX_PLAN_VARS:
        raise UserError(f"variable elimination plans orders for at most {MAX_PLAN_VARS:,} "
                        f"variables; this model has {len(sizes):,}: use --method ais")
    g = interaction_graph(model)
    small = len(sizes) <= MAX_FILL_IN_VARS
    heuristic = treewidth_min_fill_in if small else treewidth_min_degree
    _, tree = heuristic(g)
    candidates = [(_peel(tree), "min-fill" if small else "min-degree")]
    if small:  # greedy orders that weigh domain sizes: often much better on mixed domains
        candidates += [(_greedy_order(g, sizes, fill), name)
                       for fill, name in ((True, "weighted min-fill"), (False, "min-weight"))]
    # the model's own variable order: row by row on a lattice, where greedy orders do worse
    candidates.append((sorted(g), "index order"))
    best = None
    for order, name in candidates:
        width, largest, work, product, messages = _cost(g, order, sizes)
        if best is None or (largest, work) < (best.largest, best.work):
            best = Plan(order, width, largest, name, work, product, messages)
    return best


def _greedy_order(g: nx.Graph, sizes: dict[int, int], fill: bool) -> list[int]:
    """Eliminate, one at a time, the variable whose elimination adds the fewest fill edges
    (`fill`) or builds the smallest table, breaking ties by the other criterion."""
    adj = {v: set(g[v]) for v in g}
    logsize = {v: math.log2(sizes[v]) for v in adj}
    order = []
    while adj:
        def cost(v):
            nbrs = adj[v]
            weight = logsize[v] + sum(logsize[u] for u in nbrs)
            missing = sum(1 for a in nbrs for b in nbrs if a < b and b not in adj[a])
            return (missing, weight) if fill else (weight, missing)
        v = min(adj, key=cost)
        nbrs = adj.pop(v)
        for u in nbrs:
            adj[u].discard(v)
            adj[u] |= nbrs - {u}
        order.append(v)
    return order


def _peel(tree: nx.Graph) -> list[int]:
    """An elimination order from a tree decomposition: remove a leaf bag, eliminating its
    variables that its neighbour lacks (by the running intersection property they occur in no
    other bag, so their neighbours all lie in the leaf)."""
    tree = tree.copy()
    order, done = [], set()
    stack = [b for b in tree if tree.degree(b) <= 1]
    while stack:
        bag = stack.pop()
        if bag not in tree or tree.degree(bag) > 1:
            continue
        parent = next(iter(tree[bag]), frozenset())
        for v in sorted(bag - parent - done):
            order.append(v)
            done.add(v)
        tree.remove_node(bag)
        if parent and tree.degree(parent) <= 1:
            stack.append(parent)
    return order


def _cost(g: nx.Graph, order: list[int], sizes: dict[int, int]) -> tuple[int, ...]:
    """(width, largest table produced, all buckets' products, largest product, all tables
    produced) of eliminating in `order`, by simulating the fill-in."""
    adj = {v: set(g[v]) for v in g}
    width, largest, work, product, messages = 0, 1, 0, 1, 0
    for v in order:
        nbrs = adj.pop(v)
        out = 1
        for u in nbrs:
            out *= sizes[u]
            adj[u].discard(v)
            adj[u] |= nbrs - {u}
        width = max(width, len(nbrs))
        largest = max(largest, out)
        product = max(product, out * sizes[v])
        work += out * sizes[v]
        messages += out
    return width, largest, work, product, messages


# ---------------------------------------------------------------- elimination

def eliminate(tables: dict[tuple, np.ndarray], order: list[int], sizes: dict[int, int]) -> float:
    """log of the sum over every variable in `order` of exp(sum of the tables)."""
    return _run(tables, order, sizes, maximizing=False)[0]


def _run(tables, order, sizes, maximizing: bool):
    """Eliminate the variables in `order`: log-sum-exp them out, or max them out keeping
    each step's argmax (var, the rest of its scope, argmax table) for the traceback."""
    store = dict(enumerate(tables.items()))
    where: dict[int, set[int]] = defaultdict(set)
    for key, (scope, _) in store.items():
        for v in scope:
            where[v].add(key)
    total, fresh, steps = 0.0, len(store), []
    for v in order:
        keys = where.pop(v, set())
        if not keys:
            total += 0.0 if maximizing else float(np.log(sizes[v]))
            steps.append((v, (), np.zeros((), np.int64)))
            continue
        factors = [store.pop(k) for k in sorted(keys)]
        rest, table, arg = sum_out(factors, v, sizes, maximizing)
        for u in rest:
            where[u] -= keys
        if maximizing:
            steps.append((v, rest, arg))
        if not rest:
            total += float(table)
            continue
        store[fresh] = (rest, table)
        for u in rest:
            where[u].add(fresh)
        fresh += 1
    total += sum(float(table) for scope, table in store.values() if not scope)
    return total, steps


def sum_out(factors, v: int, sizes: dict[int, int], maximizing: bool = False):
    """(the other variables, log-sum-exp (or max) over v of the sum of the factors, the argmax
    or None). A product of more than BUCKET_CHUNK entries is never built: v's values are taken
    a chunk at a time and folded into a running log-sum-exp (or max), so memory is bounded by
    the table produced."""
    rest = tuple(sorted(set().union(*(s for s, _ in factors)) - {v}))
    out = math.prod(sizes[u] for u in rest)
    step = max(1, BUCKET_CHUNK // max(out, 1))
    acc = arg = None
    for lo in range(0, sizes[v], step):
        hi = min(lo + step, sizes[v])
        if (lo, hi) == (0, sizes[v]):
            part = factors
        else:
            part = [(s, t[(slice(None),) * s.index(v) + (slice(lo, hi),)] if v in s else t)
                    for s, t in factors]
        scope, table = _combine(part, extra=(v,))
        axis = scope.index(v)
        if maximizing:
            best, where = np.max(table, axis=axis), np.argmax(table, axis=axis) + lo
            if acc is None:
                acc, arg = best, where
            else:
                better = best > acc
                acc, arg = np.where(better, best, acc), np.where(better, where, arg)
            continue
        with np.errstate(divide="ignore"):          # every combination impossible: log 0
            table = logsumexp(table, axis=axis)
            acc = table if acc is None else np.logaddexp(acc, table)
    return rest, acc, arg


def _combine(factors: list[tuple[tuple, np.ndarray]], extra=()) -> tuple[tuple, np.ndarray]:
    """The sum of log-tables over the union of their (sorted) scopes (and the variables
    `extra`, of size 1 where no table has them), by broadcasting."""
    scope = tuple(sorted(set(extra).union(*(s for s, _ in factors))))
    shape = [1] * len(scope)
    pos = {v: a for a, v in enumerate(scope)}
    for s, table in factors:
        for v, d in zip(s, table.shape):
            shape[pos[v]] = d
    out = np.zeros(shape)
    for s, table in factors:
        view = [1] * len(scope)
        for v, d in zip(s, table.shape):
            view[pos[v]] = d
        out += table.reshape(view)
    return scope, out


def log_partition_ve(model, x0: np.ndarray, the_plan: Plan | None = None) -> tuple[float, Plan]:
    """log Z by variable elimination, conditioned on the inputs in x0 (1, n_state)."""
    the_plan = the_plan or plan(model)
    if not the_plan.feasible:
        raise UserError(the_plan.refusal())
    tables, const = ground_factors(model, x0)
    return const + eliminate(tables, the_plan.order, sampled_sizes(model)), the_plan


def maximize(tables: dict[tuple, np.ndarray], order: list[int],
             sizes: dict[int, int]) -> tuple[float, dict[int, int]]:
    """Max-product elimination: (the maximum over every variable in `order` of the sum of the
    tables, a maximizing assignment var -> value index), by storing each step's argmax and
    tracing back in reverse order. The exact MAP where elimination is feasible."""
    total, steps = _run(tables, order, sizes, maximizing=True)
    assignment: dict[int, int] = {}
    for v, rest, arg in reversed(steps):
        assignment[v] = int(arg[tuple(assignment[u] for u in rest)])
    return total, assignment
