"""Chain groups inside one sweep: `Lanes` stands where a sweep takes its numpy Generator when a
run's chains are split into groups (`infer.groups`), each group with its own Generator.

Every kernel is written so that chain group g, run inside the whole state, draws exactly the
random numbers it would draw run alone from its own Generator (so local runs and Ray runs of
the groups agree bit for bit):

- the compiled kernels (table, direct, pre-activation, cluster) seed one xoroshiro128+ per
  chain from two words of the caller's Generator: `seed_words` takes each group's chains'
  words from that group's Generator, and the kernel runs once over every chain (in parallel;
  Wolff's chains each make their group's own copy's count of steps);
- every other part kind (numpy parts, MH, the fused matrix-product sweep, HMC, cluster moves
  of a model with inputs) runs once per group on that group's rows of the state (a view),
  with that group's Generator and, where it keeps state across sweeps (MH scales and counts,
  HMC step sizes, Wolff step counts), that group's own copy of it (`Lanes.own`).
"""

from __future__ import annotations

import copy

import numpy as np


class Lanes:
    """The chain groups of one run: group k holds rows `rows[k]` of the state and draws from
    `rngs[k]`. Group copies of stateful parts are kept by (object, group)."""

    def __init__(self, sizes, rngs, keys=None, owned=None):
        self.sizes, self.rngs = [int(n) for n in sizes], list(rngs)
        self.keys = list(range(len(self.sizes))) if keys is None else keys
        self._owned = {} if owned is None else owned
        ends = np.cumsum([0] + self.sizes)
        self.rows = [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]

    @property
    def chains(self) -> int:
        return sum(self.sizes)

    def __iter__(self):
        """(group number, its rows of the state, its Generator) for each group."""
        return iter(zip(range(len(self.sizes)), self.rows, self.rngs))

    def words(self) -> np.ndarray:
        """(chains, 2) uint64: each chain's seed words, from its group's Generator."""
        return np.concatenate([r.bit_generator.random_raw((n, 2))
                               for n, r in zip(self.sizes, self.rngs)])

    def only(self, k: int) -> Lanes:
        """Group k alone (rows from 0), sharing the group copies."""
        return Lanes([self.sizes[k]], [self.rngs[k]], [self.keys[k]], self._owned)

    def own(self, obj, k: int, make=copy.copy):
        """Group k's own copy of `obj` (made by `make(obj)` on first use)."""
        key = (id(obj), self.keys[k])
        if key not in self._owned:
            self._owned[key] = (obj, make(obj))     # obj held: its id stays unique
        return self._owned[key][1]

    def copies(self, obj=None) -> list:
        """Every group's copy of `obj` (None: of every object), in group order."""
        return [c for (i, _), (o, c) in sorted(self._owned.items(), key=lambda kv: kv[0][1])
                if obj is None or o is obj]


def seed_words(rng, chains: int) -> np.ndarray:
    """(chains, 2) uint64 seed words for the per-chain generators of a compiled kernel: from
    the Generator, or from each group's Generator (`Lanes`)."""
    if isinstance(rng, Lanes):
        assert rng.chains == chains, "the state's chains are not the groups' chains"
        return rng.words()
    return rng.bit_generator.random_raw((chains, 2))


def each_group(rng):
    """(group copy maker or None, rows, Generator) per group: for a plain Generator, once over
    every row."""
    if not isinstance(rng, Lanes):
        yield None, slice(None), rng
        return
    for k, rows, r in rng:
        yield (lambda obj, make=copy.copy, k=k: rng.own(obj, k, make)), rows, r


def per_group_values(fn, part, x, theta, rng, *args) -> np.ndarray:
    """fn(part, x, theta, rng, *args) -> new values (chains, m) of a part, computed for each
    group on its rows with its Generator and its copy of the part."""
    if not isinstance(rng, Lanes):
        return fn(part, x, theta, rng, *args)
    return np.concatenate([fn(rng.own(part, k), x[rows], theta, r, *args) for k, rows, r in rng])
