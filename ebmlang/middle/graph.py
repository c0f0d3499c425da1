"""Phase 4: the factor graph, Markov blankets and blocks.

Family level: a networkx graph whose nodes are variable families and factor terms, each edge
carrying the index map of one read (`s[i, (j + 1) % L]`). Ground level: numpy arrays of the
pairs of variables that share a factor instance. Blocks are sets of variables that share no
factor, so one Gibbs step can update a whole block at once: families that never meet themselves
are coloured at the family level (the RBM's {v} and {h}); a family that meets itself is split by
a colouring of its ground graph, a structured one when an index parity works (the Ising
checkerboard), otherwise networkx's greedy colouring.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ebmlang.frontend.check import CheckedModel
from ebmlang.errors import UserError
from ebmlang.middle.lower import Term, id_dtype
from ebmlang.frontend.printing import expr_text

MAX_GREEDY = 2_000_000  # ground variables of one family we colour greedily


@dataclass
class BlockPart:
    family: str
    ids: np.ndarray          # global state positions updated in this block


@dataclass
class Block:
    parts: list[BlockPart]
    label: str

    @property
    def size(self) -> int:
        return sum(len(p.ids) for p in self.parts)


class Graph:
    """The family graph (networkx, built on first use), the blocks, and the ground neighbour
    pairs on demand. It keeps the checked model and terms it came from, not functions of them,
    so a compiled model can be stored whole (see `ebmlang.model`) and loaded without networkx."""

    def __init__(self, model: CheckedModel, terms: list[Term], family_of: np.ndarray,
                 blocks: list[Block], colouring: dict[str, str],
                 blankets: dict[str, tuple[int, int]]):
        self.blankets = blankets        # family -> (smallest, largest) ground blanket size
        self.family_of = family_of      # (n_state,) family number of each ground variable
        self.blocks = blocks
        self.colouring = colouring      # family -> how it was coloured
        self._model, self._terms = model, terms
        self._nx = None
        self._edges = None

    @property
    def nx(self):
        """The networkx MultiGraph of variable families and factor terms, each edge one read."""
        if self._nx is None:
            self._nx = family_graph(self._model, self._terms)
        return self._nx

    @property
    def edges(self) -> np.ndarray:
        """(E, 2) unique unordered pairs of sampled ground variables that share a factor
        instance. Built again when first asked for after compiling, not kept from it: a
        million-spin lattice's 2 million pairs would outweigh every other ground array."""
        if self._edges is None:
            self._edges = _ground_edges(self._model, self._terms)
        return self._edges

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _nx=None, _edges=None)


def build_graph(model: CheckedModel, terms: list[Term]) -> Graph:
    fams = list(model.vars)
    family_of = np.empty(model.n_state, np.int16 if len(fams) < 2**15 else np.int64)
    for k, f in enumerate(model.vars.values()):
        family_of[f.offset:f.offset + f.space.size] = k
    edges = _ground_edges(model, terms)
    blocks, colouring = _blocks(model, edges, family_of, fams)
    return Graph(model, terms, family_of, blocks, colouring, blanket_sizes(edges, model))


def family_graph(model: CheckedModel, terms: list[Term]):
    import networkx as nx
    g = nx.MultiGraph()
    for f in model.vars.values():
        g.add_node(("var", f.name), kind=f.kind, domain=f.domain.text, size=f.space.size)
    for t in terms:
        node = ("factor", t.owner, t.number)
        g.add_node(node, size=t.size, sign=t.sign)
        for r in t.reads:
            g.add_edge(node, ("var", r.family), read=expr_text(r.node))
    return g


def _ground_edges(model: CheckedModel, terms: list[Term]) -> np.ndarray:
    sampled = np.zeros(model.n_state, bool)
    for f in model.vars.values():
        if f.sampled:
            sampled[f.offset:f.offset + f.space.size] = True
    keys = []
    n = np.int64(model.n_state)
    for t in terms:
        ids = [r.ids for r in t.reads if sampled[r.ids[0]]] if t.size else []
        if len(ids) > WIDE:
            keys += _wide_keys(np.stack(ids, axis=1), n)
            continue
        for a, b in itertools.combinations(ids, 2):
            keep = a != b
            a, b = a[keep], b[keep]
            keys.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    # one int64 key per unordered pair: sorting keys is much faster than np.unique(axis=0)
    key = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    if not key.size:  # no pairs, or only a variable read twice by one instance
        return np.zeros((0, 2), np.int64)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.column_stack([key // n, key % n])


WIDE = 8            # reads per instance above which instances reading the same set are merged
PAIR_CHUNK = 1 << 22


def _wide_keys(rows: np.ndarray, n: np.int64) -> list[np.ndarray]:
    """The pair keys of instances (rows of ground ids) that each read many variables, once per
    distinct set of ids: the 500 hidden units of the free-energy RBM all read the same 784
    visibles, one clique of 306,936 pairs instead of 500 copies of it."""
    rows = np.unique(np.sort(rows, axis=1), axis=0).astype(np.int64)
    a, b = np.triu_indices(rows.shape[1], 1)
    out = []
    step = max(1, PAIR_CHUNK // max(1, len(a)))
    for k in range(0, len(rows), step):
        lo, hi = rows[k:k + step][:, a].ravel(), rows[k:k + step][:, b].ravel()
        keep = lo != hi
        out.append(lo[keep] * n + hi[keep])     # rows are sorted: lo <= hi
    return out


def blanket_sizes(edges: np.ndarray, model: CheckedModel) -> dict[str, tuple[int, int]]:
    """Smallest and largest ground Markov blanket (sampled neighbours) in each family."""
    deg = np.bincount(edges.ravel(), minlength=model.n_state)
    out = {}
    for f in model.vars.values():
        d = deg[f.offset:f.offset + f.space.size]
        out[f.name] = (int(d.min()), int(d.max())) if len(d) else (0, 0)
    return out


def _structured(space, local_edges) -> tuple[np.ndarray, str] | None:
    """A parity colouring of the family's index tuples, if one separates all neighbours."""
    tup = space.tuples
    names = space.names
    candidates = []
    if tup.shape[1]:
        candidates.append((tup.sum(axis=1) % 2, f"({' + '.join(names)}) % 2" if len(names) > 1
                           else f"{names[0]} % 2"))
        for k in range(tup.shape[1]):
            candidates.append((tup[:, k] % 2, f"{names[k]} % 2"))
        if tup.shape[1] > 1:
            candidates.append((tup.sum(axis=1) % 3, f"({' + '.join(names)}) % 3"))
    for colour, text in candidates:
        if np.all(colour[local_edges[:, 0]] != colour[local_edges[:, 1]]):
            return colour, text
    return None


def _greedy(n: int, local_edges: np.ndarray, name: str) -> np.ndarray:
    if n > MAX_GREEDY:
        raise UserError(f"'{name}' has {n:,} variables that meet each other irregularly; "
                        f"colouring more than {MAX_GREEDY:,} is not supported")
    if len(local_edges) == n * (n - 1) // 2:    # a clique (edges are unique): one colour each
        return np.arange(n, dtype=np.int64)
    import networkx as nx
    h = nx.Graph()
    h.add_nodes_from(range(n))
    h.add_edges_from(local_edges.tolist())
    col = nx.greedy_color(h, strategy="largest_first")
    return np.array([col[i] for i in range(n)], np.int64)


def _blocks(model, edges, family_of, fams):
    fam_idx = {f: k for k, f in enumerate(fams)}
    ef = family_of[edges] if len(edges) else np.zeros((0, 2), np.int64)
    same = ef[:, 0] == ef[:, 1] if len(edges) else np.zeros(0, bool)
    sampled = [f for f in fams if model.vars[f].sampled]
    selfish = {fams[k] for k in np.unique(ef[same, 0])}
    import networkx as nx
    fg = nx.Graph()
    fg.add_nodes_from(f for f in sampled if f not in selfish)
    for a, b in np.unique(ef[~same], axis=0) if len(ef) else []:
        if fams[a] in fg and fams[b] in fg:
            fg.add_edge(fams[a], fams[b])
    blocks, colouring = [], {}
    if len(fg):
        col = nx.greedy_color(fg, strategy="largest_first")
        groups: dict[int, list[str]] = {}
        for f in sampled:
            if f in col:
                groups.setdefault(col[f], []).append(f)
        for c in sorted(groups):
            parts = [_part(model, f, None) for f in groups[c]]
            blocks.append(Block(parts, "{" + ", ".join(groups[c]) + "}"))
            for f in groups[c]:
                colouring[f] = "whole family (no factor links two of its variables)"
    for f in sampled:
        if f not in selfish:
            continue
        fam = model.vars[f]
        local = edges[same & (ef[:, 0] == fam_idx[f])] - fam.offset
        found = _structured(fam.space, local)
        if found is not None:
            colour, text = found
        else:
            colour = _greedy(fam.space.size, local, f)
            text = "greedy colouring of its ground graph"
        ncol = int(colour.max()) + 1
        colouring[f] = f"{ncol} colours, {text}"
        for c in range(ncol):
            rows = np.flatnonzero(colour == c)
            blocks.append(Block([_part(model, f, rows)], f"{f} colour {c}"))
    return blocks, colouring


def _part(model, f, rows):
    fam = model.vars[f]
    if rows is None:
        rows = np.arange(fam.space.size)
    return BlockPart(f, (fam.offset + rows).astype(id_dtype(model.n_state)))
