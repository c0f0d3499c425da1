"""Units of distribution: chain groups and particle groups, each with its own random stream.

A run's chains (AIS particles) are split into groups whose sizes depend only on the run (the
chain count and the model's size), never on the number of workers; each group is driven by
its own `numpy.random.SeedSequence`, spawned from the run's seed. Running the groups one after
another in this process or as Ray tasks on any number of workers gives the same draws, bit for
bit. A run of one group (small models, the default 100 AIS particles) uses the seed directly,
as ebmlang always has.
"""

from __future__ import annotations

import numpy as np

GROUP_CELLS = 1 << 14   # a chain group holds at least this many state cells (or is one chain)
PARTICLE_GROUP = 512    # AIS particles per group at most


def split(n: int, size: int) -> list[int]:
    """Sizes of ceil(n / size) groups of n items, as equal as can be (larger ones first)."""
    k = -(-n // max(1, size))
    return [n // k + (i < n % k) for i in range(k)]


def chain_groups(model, chains: int) -> list[int]:
    """Chains per group: enough chains that a group holds GROUP_CELLS state cells."""
    return split(chains, -(-GROUP_CELLS // max(1, model.checked.n_state)))


def particle_groups(particles: int) -> list[int]:
    return split(particles, PARTICLE_GROUP)


def seeds(seed, n: int) -> list:
    """The groups' seeds: the seed itself for one group, else n children of SeedSequence(seed)."""
    if n == 1:
        return [seed]
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n)


def rows(values, sizes: list[int]) -> list:
    """Per-chain rows (one shared row, or one per chain; None) cut into the groups' rows."""
    if values is None:
        return [None] * len(sizes)
    values = np.atleast_2d(np.asarray(values, float))
    if values.shape[0] == 1:
        return [values] * len(sizes)
    ends = np.cumsum(sizes)
    return [values[e - s:e] for s, e in zip(sizes, ends)]


def local(fn, model, jobs: list[dict]) -> list:
    """Run the jobs here, in order: what a Ray runner does on its workers."""
    return [fn(model, **kw) for kw in jobs]
