"""Compiled cluster moves (numba, nopython): Swendsen-Wang sweeps and Wolff single-cluster steps
on one group of finite-domain variables, in place on the state x (chains, n_state).

The group's sites are given by their state ids `sid` (n,) and their domain values `vals`
(n, k): a site's label is the position of its value in its row of `vals`. Bonds join the
pairs (ea[e], eb[e]) with probability pbond[c, e] = 1 - exp(-beta K_e) when their labels
agree; `h[c, i, l]` is the unary log-potential of site i at label l (times beta); a site with
fixed[c, i] (clamped) keeps its value, and so does every cluster that holds one. Arrays with
a leading axis of 1 are shared by every chain; h or fixed with no sites (shape (1, 0, k), (1,
0)) mean no unary terms, nothing clamped. Each chain draws from its own xoroshiro128+
generator seeded from two words of the caller's numpy Generator (`numba_kernels._seed`).
"""

import math

import numpy as np
from numba import njit

from ebmlang.backends.numba_kernels import _draw, _seed, _uniform


@njit(cache=True, inline="always")
def _find(parent, i):
    """The root of i, halving the path on the way (union-find)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, error_model="numpy")
def _labels(x, c, sid, vals, lab):
    """The label of every site's value in chain c."""
    k = vals.shape[1]
    for i in range(sid.shape[0]):
        v = x[c, sid[i]]
        lab[i] = 0
        for j in range(k):
            if vals[i, j] == v:
                lab[i] = j


@njit(cache=True, error_model="numpy")
def _sw_chain(c, x, seeds, sid, vals, ea, eb, pbond, h, fixed, parent, lab, field, hold):
    """One sweep of chain c; h of shape (1, 0, k) means no unary terms (uniform draws)."""
    s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
    n, k = vals.shape
    pc = c if pbond.shape[0] > 1 else 0
    hc = c if h.shape[0] > 1 else 0
    fc = c if fixed.shape[0] > 1 else 0
    _labels(x, c, sid, vals, lab)
    for i in range(n):
        parent[i] = i
    for e in range(ea.shape[0]):
        a, b = ea[e], eb[e]
        if lab[a] != lab[b]:
            continue
        u, s0, s1 = _uniform(s0, s1)
        if u < pbond[pc, e]:
            ra, rb = _find(parent, a), _find(parent, b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    for i in range(n):                       # every site points at its cluster's root: roots
        parent[i] = parent[parent[i]]        # are the least index, parent[i] <= i always
    if h.shape[1] == 0 and fixed.shape[1] == 0:     # no unary terms, nothing clamped
        for i in range(n):
            if parent[i] == i:
                u, s0, s1 = _uniform(s0, s1)
                lab[i] = min(int(u * k), k - 1)
            x[c, sid[i]] = vals[i, lab[parent[i]]]
        return
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
        if parent[i] == i and not hold[i]:
            u, s0, s1 = _uniform(s0, s1)
            lab[i] = _draw(field[i], u)
    for i in range(n):
        x[c, sid[i]] = vals[i, lab[parent[i]]]


@njit(cache=True, error_model="numpy")
def swendsen_wang(x, seeds, sid, vals, ea, eb, pbond, h, fixed):
    """One Swendsen-Wang sweep of every chain, in place."""
    n, k = vals.shape
    parent = np.empty(n, np.int64)
    lab = np.empty(n, np.int64)
    field = np.empty((n, k))
    hold = np.empty(n, np.bool_)
    for c in range(x.shape[0]):
        _sw_chain(c, x, seeds, sid, vals, ea, eb, pbond, h, fixed, parent, lab, field, hold)


@njit(cache=True, error_model="numpy")
def _wolff_chain(c, x, seeds, sid, vals, nb_ptr, nb_site, nb_edge, pbond, h, fixed, steps,
                 lab, mark, members):
    """`steps` Wolff steps on chain c: (sites in the clusters grown, steps accepted)."""
    s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
    n, k = vals.shape
    pc = c if pbond.shape[0] > 1 else 0
    hc = c if h.shape[0] > 1 else 0
    fc = c if fixed.shape[0] > 1 else 0
    _labels(x, c, sid, vals, lab)
    grown = 0
    accepted = 0
    for step in range(steps):
        u, s0, s1 = _uniform(s0, s1)
        seed = min(int(u * n), n - 1)
        old = lab[seed]
        u, s0, s1 = _uniform(s0, s1)
        new = (old + 1 + min(int(u * (k - 1)), k - 2)) % k      # uniformly one of the others
        stamp = step + 1
        mark[seed] = stamp
        members[0] = seed
        size, head = 1, 0
        unary = h.shape[1] > 0
        held = fixed.shape[1] > 0 and fixed[fc, seed]
        delta = h[hc, seed, new] - h[hc, seed, old] if unary else 0.0
        while head < size:
            i = members[head]
            head += 1
            for q in range(nb_ptr[i], nb_ptr[i + 1]):
                j = nb_site[q]
                if mark[j] == stamp or lab[j] != old:
                    continue
                u, s0, s1 = _uniform(s0, s1)
                if u < pbond[pc, nb_edge[q]]:
                    mark[j] = stamp
                    members[size] = j
                    size += 1
                    if fixed.shape[1] and fixed[fc, j]:
                        held = True
                    if unary:
                        delta += h[hc, j, new] - h[hc, j, old]
        grown += size
        if held:
            continue
        u, s0, s1 = _uniform(s0, s1)
        if delta >= 0.0 or u < math.exp(delta):
            accepted += 1
            for m in range(size):
                lab[members[m]] = new
                x[c, sid[members[m]]] = vals[members[m], new]
    return grown, accepted


@njit(cache=True, error_model="numpy")
def wolff(x, seeds, sid, vals, nb_ptr, nb_site, nb_edge, pbond, h, fixed, steps):
    """`steps` Wolff single-cluster steps on every chain, in place; returns (sites in the
    clusters grown, steps accepted), summed over chains."""
    n = vals.shape[0]
    lab = np.empty(n, np.int64)
    mark = np.zeros(n, np.int64)
    members = np.empty(n, np.int64)
    grown = 0
    accepted = 0
    for c in range(x.shape[0]):
        mark[:] = 0
        g, a = _wolff_chain(c, x, seeds, sid, vals, nb_ptr, nb_site, nb_edge, pbond, h, fixed,
                            steps, lab, mark, members)
        grown += g
        accepted += a
    return grown, accepted
