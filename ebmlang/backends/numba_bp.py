"""numba kernels of loopy belief propagation (sum-product in log space) on a flat factor graph.

The layout (built by `ebmlang.infer.bp`): factors of two or more variables, their log tables
concatenated in `tab` (factor a at tab[tab_off[a]:tab_off[a+1]], C order over its scope); one
edge per (factor, position), edges of factor a at edge_off[a]:edge_off[a+1], with the variable
`evar`, the table stride `estride` and the domain size `esize` of that position; `vedge_off` /
`vedges` list the edges of each variable. Messages factor -> variable are rows m[e] of log
probabilities (normalized, padded with -inf past the domain size); variable -> factor messages
are computed when needed as belief minus the incoming message. A row of m holds the log
message in m[e, :D] and its probabilities in m[e, D:], so a change costs no exp. Where the incoming message is
-inf the outgoing one is set to -inf: the factor already rules those values out, so their value
does not matter, and no -inf - -inf (NaN) arises. Zeros stay zeros under damping in log space.
Compiled once per installation (numba's on-disk cache).
"""

import math

import numpy as np
from numba import njit, uint64

NEG = -np.inf


@njit(cache=True, error_model="numpy", inline="always")
def belief(v, unary, m, vedge_off, vedges, b):
    """b[v] = unary[v] + the sum of the messages into v (unnormalized log)."""
    for x in range(b.shape[1]):
        b[v, x] = unary[v, x]
    for j in range(vedge_off[v], vedge_off[v + 1]):
        e = uint64(vedges[j])
        for x in range(b.shape[1]):
            b[v, x] += m[e, x]


@njit(cache=True, error_model="numpy", inline="always")
def _incoming(a, skip, edge_off, evar, esize, b, m, n):
    """n[q] = variable -> factor message into position q of factor a (all but `skip`)."""
    e0 = edge_off[a]
    for q in range(edge_off[a + 1] - e0):
        if q == skip:
            continue
        e = uint64(e0 + q)
        v = uint64(evar[e])
        for x in range(esize[e]):
            n[q, x] = NEG if m[e, x] == NEG else b[v, x] - m[e, x]


@njit(cache=True, error_model="numpy", inline="always")
def message(a, p, alpha, tab, tab_off, edge_off, evar, estride, esize, b, m, n, s, outs, r):
    """The new (damped, normalized) message of factor a to its position p, into outs[r]; returns
    its largest change in probability from m[edge]."""
    _incoming(a, p, edge_off, evar, esize, b, m, n)
    ep = uint64(edge_off[a] + p)
    dp = esize[ep]
    D = outs.shape[1] // 2
    for x in range(D):
        outs[r, x] = NEG
        outs[r, D + x] = 0.0
    if edge_off[a + 1] - edge_off[a] == 2:
        _pair(a, p, tab, tab_off, edge_off, estride, esize, n, s, outs, r)
    else:
        _any(a, p, tab, tab_off, edge_off, estride, esize, n, s, outs, r)
    if alpha > 0.0:
        for x in range(dp):
            old = m[ep, x]
            outs[r, x] = NEG if (old == NEG or outs[r, x] == NEG) else alpha * old + (1 - alpha) * outs[r, x]
    total = _normalize(outs, r, dp, s)
    change = 0.0
    for x in range(dp):
        outs[r, D + x] = s[x] / total
        change = max(change, abs(outs[r, D + x] - m[ep, D + x]))
    return change


@njit(cache=True, error_model="numpy", inline="always")
def _pair(a, p, tab, tab_off, edge_off, estride, esize, n, s, outs, r):
    """outs[r, x] = log sum_y exp(table[x, y] + n[q, y]) for a factor of two variables."""
    ep, eq = uint64(edge_off[a] + p), uint64(edge_off[a] + 1 - p)
    sp, sq, dq, t0 = uint64(estride[ep]), uint64(estride[eq]), uint64(esize[eq]), uint64(tab_off[a])
    for x in range(uint64(esize[ep])):
        top = NEG
        for y in range(dq):
            s[y] = tab[t0 + x * sp + y * sq] + n[1 - p, y]
            top = max(top, s[y])
        if top == NEG:
            continue
        total = 0.0
        for y in range(dq):
            total += _exp0(s[y] - top)
        outs[r, x] = top + math.log(total)


@njit(cache=True, error_model="numpy", inline="always")
def _any(a, p, tab, tab_off, edge_off, estride, esize, n, s, outs, r):
    """The same for a factor of any number of variables: one pass over its table, a running
    log-sum-exp per value of position p (out = the max so far, s = the sum scaled by it)."""
    e0 = uint64(edge_off[a])
    k = uint64(edge_off[a + 1]) - e0
    dp, sp, t0 = uint64(esize[e0 + p]), uint64(estride[e0 + p]), uint64(tab_off[a])
    for x in range(dp):
        s[x] = 0.0
    for t in range(uint64(tab_off[a + 1]) - t0):
        val = tab[t0 + t]
        if val == NEG:
            continue
        for q in range(k):
            if q != p:
                val += n[q, (t // uint64(estride[e0 + q])) % uint64(esize[e0 + q])]
        if val == NEG:
            continue
        x = (t // sp) % dp
        if val > outs[r, x]:
            s[x] = s[x] * math.exp(outs[r, x] - val) + 1.0
            outs[r, x] = val
        else:
            s[x] += math.exp(val - outs[r, x])
    for x in range(dp):
        if s[x] > 0.0:
            outs[r, x] += math.log(s[x])


@njit(cache=True, error_model="numpy", inline="always")
def _exp0(d):
    """exp(d), without calling exp for the maximum's own d = 0."""
    return 1.0 if d == 0.0 else math.exp(d)


@njit(cache=True, error_model="numpy", inline="always")
def _normalize(rows, r, d, w):
    """Shift rows[r] (log) to sum to one in probability; w[x] / (the returned total) are the
    probabilities. A row with every value ruled out is left as it is (total inf: w / total 0)."""
    top = NEG
    for x in range(d):
        top = max(top, rows[r, x])
    if top == NEG:
        for x in range(d):
            w[x] = 0.0
        return np.inf
    total = 0.0
    for x in range(d):
        w[x] = _exp0(rows[r, x] - top)
        total += w[x]
    shift = top + math.log(total)
    for x in range(d):
        rows[r, x] -= shift
    return total


@njit(cache=True, error_model="numpy")
def sweep(alpha, unary, tab, tab_off, edge_off, evar, estride, esize, vedge_off, vedges,
          b, m, new, n, s):
    """One flooding iteration: every message from the old ones; returns the largest change."""
    for v in range(unary.shape[0]):
        belief(v, unary, m, vedge_off, vedges, b)
    worst = 0.0
    for a in range(len(edge_off) - 1):
        for p in range(edge_off[a + 1] - edge_off[a]):
            e = edge_off[a] + p
            worst = max(worst, message(a, p, alpha, tab, tab_off, edge_off, evar, estride,
                                       esize, b, m, n, s, new, e))
    m[:] = new
    return worst


@njit(cache=True, error_model="numpy")
def flood(iters, tol, alpha, unary, tab, tab_off, edge_off, evar, estride, esize, vedge_off,
          vedges, m):
    """Up to `iters` flooding iterations, stopping below tol (tol < 0: never); returns
    (iterations, last largest change)."""
    V, D = unary.shape
    b = np.empty((V, D))
    new = np.full(m.shape, NEG)
    n = np.full((max(1, _arity(edge_off)), D), NEG)
    s = np.zeros(D)
    worst = np.inf
    it = 0
    while it < iters:
        worst = sweep(alpha, unary, tab, tab_off, edge_off, evar, estride, esize, vedge_off,
                      vedges, b, m, new, n, s)
        it += 1
        if worst < tol:
            break
    return it, worst


@njit(cache=True, error_model="numpy")
def _arity(edge_off):
    k = 0
    for a in range(len(edge_off) - 1):
        k = max(k, edge_off[a + 1] - edge_off[a])
    return k


# ---------------------------------------------------------------- residual schedule

@njit(cache=True, error_model="numpy")
def _up(heap, pos, key, i):
    while i > 0:
        parent = (i - 1) // 2
        if key[heap[parent]] >= key[heap[i]]:
            break
        heap[parent], heap[i] = heap[i], heap[parent]
        pos[heap[parent]], pos[heap[i]] = parent, i
        i = parent


@njit(cache=True, error_model="numpy")
def _down(heap, pos, key, i):
    size = len(heap)
    while True:
        best, l, r = i, 2 * i + 1, 2 * i + 2
        if l < size and key[heap[l]] > key[heap[best]]:
            best = l
        if r < size and key[heap[r]] > key[heap[best]]:
            best = r
        if best == i:
            break
        heap[best], heap[i] = heap[i], heap[best]
        pos[heap[best]], pos[heap[i]] = best, i
        i = best


@njit(cache=True, error_model="numpy")
def residual(max_updates, tol, alpha, unary, tab, tab_off, edge_off, evar, efac, estride,
             esize, vedge_off, vedges, m):
    """Residual BP (Elidan, McGraw and Koller 2006): commit the pending message whose change is
    largest, then recompute the pending messages that read it, until every pending change is
    below tol or `max_updates` messages were committed; returns (updates, largest change)."""
    V, D = unary.shape
    E = m.shape[0]
    b = np.empty((V, D))
    for v in range(V):
        belief(v, unary, m, vedge_off, vedges, b)
    cand = np.full(m.shape, NEG)
    res = np.zeros(E)
    n = np.full((max(1, _arity(edge_off)), D), NEG)
    s = np.zeros(D)
    for e in range(E):
        a = efac[e]
        res[e] = message(a, e - edge_off[a], alpha, tab, tab_off, edge_off, evar, estride,
                         esize, b, m, n, s, cand, e)
    heap = np.arange(E)
    pos = np.arange(E)
    for i in range(E // 2, -1, -1):
        _down(heap, pos, res, i)
    done = 0
    while done < max_updates and E > 0 and res[heap[0]] >= tol:
        e = heap[0]
        m[e] = cand[e]
        done += 1
        v = evar[e]
        belief(v, unary, m, vedge_off, vedges, b)
        for j in range(vedge_off[v], vedge_off[v + 1]):
            f = vedges[j]                           # f == e: only e itself (damping); the
            a = efac[f]                             # other messages of e's factor skip m[e]
            for g in range(edge_off[a], edge_off[a + 1]):
                if (g == f) != (f == e):
                    continue
                res[g] = message(a, g - edge_off[a], alpha, tab, tab_off, edge_off, evar,
                                 estride, esize, b, m, n, s, cand, g)
                _up(heap, pos, res, pos[g])
                _down(heap, pos, res, pos[g])
    return done, res[heap[0]] if E > 0 else 0.0


# ---------------------------------------------------------------- the Bethe free energy

@njit(cache=True, error_model="numpy")
def bethe_factors(tab, tab_off, edge_off, evar, estride, esize, b, m, D):
    """The sum over factors of E_{b_a}[log psi_a] + H(b_a), the factor beliefs b_a from the
    messages into each factor."""
    n = np.full((max(1, _arity(edge_off)), D), NEG)
    total = 0.0
    for a in range(len(edge_off) - 1):
        _incoming(a, -1, edge_off, evar, esize, b, m, n)
        e0, k, t0 = edge_off[a], edge_off[a + 1] - edge_off[a], tab_off[a]
        size = tab_off[a + 1] - t0
        top = NEG
        for t in range(size):
            top = max(top, _joint(tab[t0 + t], t, e0, k, estride, esize, n))
        if top == NEG:
            continue
        z = 0.0
        for t in range(size):
            z += math.exp(_joint(tab[t0 + t], t, e0, k, estride, esize, n) - top)
        lse = top + math.log(z)
        for t in range(size):
            val = _joint(tab[t0 + t], t, e0, k, estride, esize, n)
            if val == NEG:
                continue
            incoming = val - tab[t0 + t]
            total += math.exp(val - lse) * (lse - incoming)   # log psi - log b_a
    return total


@njit(cache=True, error_model="numpy", inline="always")
def _joint(val, t, e0, k, estride, esize, n):
    if val == NEG:
        return NEG
    for q in range(k):
        val += n[q, (t // estride[e0 + q]) % esize[e0 + q]]
    return val
