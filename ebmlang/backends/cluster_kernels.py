"""Compiled cluster moves (numba, nopython): Swendsen-Wang sweeps and Wolff single-cluster steps
on one group of finite-domain variables, in place on the state x (chains, n_state).

The group's sites are given by their state ids `sid` (n,) and their domain values `vals`
(n, k): a site's label is the position of its value in its row of `vals`. A bond joins two
sites with probability p = 1 - exp(-beta K) when their labels agree; it is given as the
threshold thr = ceil(p 2^53) (uint64), met when the top 53 bits r of a draw are below it (r <
thr exactly when r / 2^53 < p). `h[c, i, l]` is the unary log-potential of site i at label l
(times beta); a site with fixed[c, i] (clamped) keeps its value, and so does every cluster
that holds one. Arrays with a leading axis of 1 are shared by every chain; h or fixed with no
sites (shape (1, 0, k), (1, 0)) mean no unary terms, nothing clamped. Each chain draws from
its own xoroshiro128+ generator seeded from two words of the caller's numpy Generator
(`numba_kernels._seed`) and keeps nothing between chains, so the chains are swept in blocks,
each block with its own row of the caller's work arrays, in parallel (`pswendsen_wang`,
`pwolff`) with the same draws as one after another, whatever the number of threads.

Where the time goes (a sweep at L = 64 is ~9 ns a site, Gibbs's ~3.6): a branch on a coin
of p ~ 1/2 is mispredicted half the time, so bonds and cluster growth are decided without
one; every index is unsigned, so numba emits no negative-index wraparound; the work arrays
belong to the caller (no allocation per sweep).
"""

import math

from numba import njit, prange

from ebmlang.backends.numba_kernels import _bits53, _draw, _seed, _uniform


@njit(inline="always")
def _label(x, c, sid, vals, i):
    """The label of site i's value in chain c (0 for a value not in its row)."""
    v = x[c, sid[i]]
    lab = 0
    for j in range(vals.shape[1]):
        if vals[i, j] == v:
            lab = j
    return lab


@njit(cache=True, error_model="numpy")
def _labels(x, c, sid, vals, lab):
    """The label of every site's value in chain c."""
    for i in range(sid.shape[0]):
        lab[i] = _label(x, c, sid, vals, i)


@njit(inline="always")
def _root(parent, i):
    """The root of i, and i pointed straight at it (the walk itself writes nothing)."""
    r = parent[i]
    while parent[r] != r:
        r = parent[r]
    parent[i] = r
    return r


@njit(cache=True, error_model="numpy")
def _open_bonds(c, x, sid, vals, lo, hi, xlo, xhi, thr, lab, parent, opened, s0, s1):
    """Every site its own cluster, and chain c's open bonds in `opened[:m]`: a bond opens
    when its ends agree and r < thr (r / 2^53 < p exactly when r < ceil(p 2^53)), decided
    without a branch (a branch on a coin of p ~ 1/2 costs more than the draw). The ends
    agree when their values do (xlo, xhi: their state ids, when every site has the same
    domain), else when their labels do."""
    n = vals.shape[0]
    for i in range(n):
        parent[i] = i
    tc = c if thr.shape[0] > 1 else 0
    m = 0
    if xlo.shape[0]:
        for e in range(lo.shape[0]):
            r, s0, s1 = _bits53(s0, s1)
            opened[m] = e
            m += (x[c, xlo[e]] == x[c, xhi[e]]) & (r < thr[tc, e])
        return m, s0, s1
    _labels(x, c, sid, vals, lab)
    for e in range(lo.shape[0]):
        r, s0, s1 = _bits53(s0, s1)
        opened[m] = e
        m += (lab[lo[e]] == lab[hi[e]]) & (r < thr[tc, e])
    return m, s0, s1


@njit(cache=True, error_model="numpy")
def _join(lo, hi, opened, m, parent):
    """Union of the open bonds, the larger root under the smaller (so parent[i] <= i): with
    the bonds in order of their larger end, that end is mostly a root or one step from it."""
    for q in range(m):
        e = opened[q]
        rb = _root(parent, hi[e])
        ra = _root(parent, lo[e])
        parent[max(ra, rb)] = min(ra, rb)


@njit(cache=True, error_model="numpy")
def _sw_chain(c, x, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent, lab, opened, field,
              hold, s0, s1):
    """One sweep of chain c; h of shape (1, 0, k) means no unary terms (uniform draws)."""
    n, k = vals.shape
    m, s0, s1 = _open_bonds(c, x, sid, vals, lo, hi, xlo, xhi, thr, lab, parent, opened, s0, s1)
    _join(lo, hi, opened, m, parent)
    if h.shape[1] == 0 and fixed.shape[1] == 0:     # no unary terms, nothing clamped
        for i in range(n):                   # one pass: roots are the least index of their
            r = parent[parent[i]]            # cluster (parent[i] <= i), so parent[i]'s root
            parent[i] = r                    # is known and drawn when i comes
            if r == i:
                u, s0, s1 = _uniform(s0, s1)
                lab[i] = min(int(u * k), k - 1)
            x[c, sid[i]] = vals[i, lab[r]]
        return
    for i in range(n):                       # every site points at its cluster's root
        parent[i] = parent[parent[i]]
    _field_draws(c, x, sid, vals, h, fixed, parent, lab, field, hold, s0, s1)


@njit(cache=True, error_model="numpy")
def _field_draws(c, x, sid, vals, h, fixed, parent, lab, field, hold, s0, s1):
    """A new label per cluster from its summed unary terms (held if it holds a clamped site)."""
    n, k = vals.shape
    hc = c if h.shape[0] > 1 else 0
    fc = c if fixed.shape[0] > 1 else 0
    for i in range(n):
        if parent[i] == i:
            hold[i] = False
            for j in range(k):
                field[i, j] = 0.0
    for i in range(n):                       # every cluster's summed unary terms, at its root
        r = parent[i]
        if h.shape[1]:
            for j in range(k):
                field[r, j] += h[hc, i, j]
        if fixed.shape[1] and fixed[fc, i]:
            hold[r] = True
    for i in range(n):                       # a new label per cluster, drawn at its root
        if parent[i] == i:
            if hold[i]:                      # the label it has
                lab[i] = _label(x, c, sid, vals, i)
                continue
            u, s0, s1 = _uniform(s0, s1)
            lab[i] = _draw(field[i], u)
    for i in range(n):
        x[c, sid[i]] = vals[i, lab[parent[i]]]


@njit(cache=True, error_model="numpy")
def _sw_block(b, x, seeds, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent, lab, opened,
              field, hold):
    """Block b of the chains (`_block`) swept one after another with row b of the work
    arrays."""
    start, stop = _block(b, parent.shape[0], x.shape[0])
    for c in range(start, stop):
        s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
        _sw_chain(c, x, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent[b], lab[b],
                  opened[b], field[b], hold[b], s0, s1)


@njit(inline="always")
def _block(b, blocks, chains):
    """Chains [start, stop) of block b of `blocks` (consecutive, sizes differing by one at
    most): which block sweeps a chain changes no draw, each chain has its own generator."""
    return b * chains // blocks, (b + 1) * chains // blocks


@njit(cache=True, error_model="numpy")
def swendsen_wang(x, seeds, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent, lab, opened,
                  field, hold):
    """One Swendsen-Wang sweep of every chain, in place. The bonds join sites lo[e] < hi[e],
    in order of hi; xlo, xhi are their state ids (or empty: compare labels); thr[c, e] =
    ceil(p_e 2^53) (uint64); parent, lab (B, n), opened (B, bonds), field (B, n, k) and hold
    (B, n) are the caller's work arrays, kept between sweeps, one row per block of chains
    (B blocks, swept one after another here, in parallel by `pswendsen_wang`)."""
    for b in range(parent.shape[0]):
        _sw_block(b, x, seeds, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent, lab, opened,
                  field, hold)


@njit(cache=True, error_model="numpy", parallel=True)
def pswendsen_wang(x, seeds, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent, lab, opened,
                   field, hold):
    """`swendsen_wang` with the blocks of chains in parallel (the same draws)."""
    for b in prange(parent.shape[0]):
        _sw_block(b, x, seeds, sid, vals, lo, hi, xlo, xhi, thr, h, fixed, parent, lab, opened,
                  field, hold)


@njit(cache=True, error_model="numpy")
def _grow(c, lab, seed, new, nb_ptr, nb_site, thr, members, s0, s1):
    """The cluster grown from `seed` (its sites in members[:size], their labels set to `new`
    as they join, so a member no longer has the old label): a neighbour of a member joins
    with its bond's probability (r < thr[c, q], per adjacency entry q) when it has the old
    label, decided without a branch; so every neighbour is written at members[size], joined
    or not, and members needs n + 1 entries (the last for a cluster of every site)."""
    tc = c if thr.shape[0] > 1 else 0
    old = lab[seed]
    lab[seed] = new
    members[0] = seed
    size, head = 1, 0
    while head < size:
        i = members[head]
        head += 1
        for q in range(nb_ptr[i], nb_ptr[i + 1]):
            j = nb_site[q]
            r, s0, s1 = _bits53(s0, s1)
            take = (lab[j] == old) & (r < thr[tc, q])
            lab[j] = new if take else lab[j]
            members[size] = j
            size += take
    return size, s0, s1


@njit(cache=True, error_model="numpy")
def _wolff_chain(c, x, sid, vals, nb_ptr, nb_site, thr, h, fixed, steps, lab, members, s0, s1):
    """`steps` Wolff steps on chain c: (sites in the clusters grown, steps accepted)."""
    n, k = vals.shape
    hc = c if h.shape[0] > 1 else 0
    fc = c if fixed.shape[0] > 1 else 0
    _labels(x, c, sid, vals, lab)
    grown = accepted = 0
    for step in range(steps):
        u, s0, s1 = _uniform(s0, s1)
        seed = min(int(u * n), n - 1)
        old = lab[seed]
        u, s0, s1 = _uniform(s0, s1)
        new = (old + 1 + min(int(u * (k - 1)), k - 2)) % k      # uniformly one of the others
        size, s0, s1 = _grow(c, lab, seed, new, nb_ptr, nb_site, thr, members, s0, s1)
        grown += size
        held, delta = False, 0.0
        for m in range(size if fixed.shape[1] else 0):
            held |= fixed[fc, members[m]]
        for m in range(size if h.shape[1] else 0):
            delta += h[hc, members[m], new] - h[hc, members[m], old]
        if not held:
            u, s0, s1 = _uniform(s0, s1)
        if not held and (delta >= 0.0 or u < math.exp(delta)):
            accepted += 1
            for m in range(size):
                x[c, sid[members[m]]] = vals[members[m], new]
        else:                                # rejected: the labels back
            for m in range(size):
                lab[members[m]] = old
    return grown, accepted


@njit(cache=True, error_model="numpy")
def _wolff_block(b, x, seeds, sid, vals, nb_ptr, nb_site, thr, h, fixed, steps, lab, members,
                 counts):
    """Block b of the chains (`_block`) with row b of the work arrays."""
    start, stop = _block(b, lab.shape[0], x.shape[0])
    for c in range(start, stop):
        s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
        counts[c, 0], counts[c, 1] = _wolff_chain(c, x, sid, vals, nb_ptr, nb_site, thr, h,
                                                  fixed, steps[c], lab[b], members[b], s0, s1)


@njit(cache=True, error_model="numpy")
def wolff(x, seeds, sid, vals, nb_ptr, nb_site, thr, h, fixed, steps, lab, members, counts):
    """steps[c] Wolff single-cluster steps on every chain c, in place; counts[c] = (sites in
    its clusters grown, steps accepted). The adjacency (CSR nb_ptr, nb_site) and thr[c, q] =
    ceil(p 2^53) per entry; lab (B, n) and members (B, n + 1) are the caller's work arrays,
    one row per block of chains (in parallel in `pwolff`)."""
    for b in range(lab.shape[0]):
        _wolff_block(b, x, seeds, sid, vals, nb_ptr, nb_site, thr, h, fixed, steps, lab,
                     members, counts)


@njit(cache=True, error_model="numpy", parallel=True)
def pwolff(x, seeds, sid, vals, nb_ptr, nb_site, thr, h, fixed, steps, lab, members, counts):
    """`wolff` with the blocks of chains in parallel (the same draws and counts)."""
    for b in prange(lab.shape[0]):
        _wolff_block(b, x, seeds, sid, vals, nb_ptr, nb_site, thr, h, fixed, steps, lab,
                     members, counts)
