"""Hand-written numba helpers that every generated kernel imports: the scalar functions the
scalar printer emits (`_b`, `_sq`, `_sigmoid`, ...), the per-chain xoroshiro128+ generator, the
categorical draw with the log-sum-exp shift, and `tabled`, the update by table that needs no
family-specific code. Compiled once per installation (numba's on-disk cache), not per model.
"""

import math

import numpy as np
from numba import njit, prange, uint64


@njit(inline="always")
def _b(c):
    """A truth value as 1.0 or 0.0."""
    return 1.0 if c else 0.0


@njit(inline="always")
def _sq(x):
    return x * x


@njit(inline="always")
def _i(x):
    """A variable's value used as an index."""
    return int(np.rint(x))


@njit(inline="always")
def _sigmoid(x):
    return 0.5 * (1.0 + math.tanh(0.5 * x))


@njit(inline="always")
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit(inline="always")
def _min(a, b):
    """numpy.minimum: NaN if either is NaN."""
    return a if (a <= b or a != a) else b


@njit(inline="always")
def _max(a, b):
    return a if (a >= b or a != a) else b


@njit(inline="always")
def _rotl(x, k):
    return (x << uint64(k)) | (x >> uint64(64 - k))


@njit(inline="always")
def _splitmix(z):
    z = z + uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@njit(inline="always")
def _seed(a, b):
    """A xoroshiro128+ state from two words drawn from the caller's numpy Generator."""
    s0 = _splitmix(a)
    s1 = _splitmix(b ^ s0)
    if s0 == uint64(0) and s1 == uint64(0):
        s1 = uint64(1)
    return s0, s1


@njit(inline="always")
def _bits53(s0, s1):
    """xoroshiro128+'s top 53 bits as an integer r (the uniform u = r / 2^53), next state."""
    r = s0 + s1
    s1 = s1 ^ s0
    s0 = _rotl(s0, 24) ^ s1 ^ (s1 << uint64(16))
    s1 = _rotl(s1, 37)
    return r >> uint64(11), s0, s1


@njit(inline="always")
def _uniform(s0, s1):
    """xoroshiro128+: a double in [0, 1) from the top 53 bits, and the next state."""
    r, s0, s1 = _bits53(s0, s1)
    return r * (1.0 / 9007199254740992.0), s0, s1


@njit(inline="always")
def _width(ptr):
    w = 0
    for a in range(ptr.shape[0] - 1):
        w = max(w, ptr[a + 1] - ptr[a])
    return w


@njit(cache=True, error_model="numpy")
def _draw(logits, u):
    """Index of a draw from softmax(logits) with the log-sum-exp shift (logits is overwritten);
    all weights zero or NaN: a uniform draw, as the numpy backend does."""
    K = logits.shape[0]
    if K == 2:                            # one exp: p0 = 1 / (1 + exp(l1 - l0))
        d = logits[1] - logits[0]
        if d == d:
            return 1 if u * (1.0 + math.exp(d)) >= 1.0 else 0
    total = _weights(logits)
    if not total > 0.0:
        return min(int(u * K), K - 1)
    t = u * total
    acc = 0.0
    for k in range(K - 1):
        acc += logits[k]
        if t < acc:
            return k
    return K - 1


@njit(cache=True, error_model="numpy")
def _weights(logits):
    """exp(logits - max) in place, with the log-sum-exp shift and NaN as 0; their sum."""
    K = logits.shape[0]
    top = -np.inf
    for k in range(K):
        top = max(top, logits[k])
    if not np.isfinite(top):
        top = 0.0
    total = 0.0
    for k in range(K):
        w = math.exp(logits[k] - top)
        w = 0.0 if w != w else w
        logits[k] = w
        total += w
    return total


@njit(cache=True, error_model="numpy")
def _cdf(logits, cdf, at):
    """Cumulative probabilities of softmax(logits) into cdf[at:at + K] (logits overwritten)."""
    K = logits.shape[0]
    total = _weights(logits)
    acc = 0.0
    for k in range(K):
        acc += logits[k]
        cdf[at + k] = acc / total if total > 0.0 else (k + 1.0) / K


@njit(cache=True, error_model="numpy")
def _tabled_chain(c, x, ids, values, pat, rel, coef, wid, cst, pbase, cdf, seeds):
    """Without branches on the state (spins are random: a branch per neighbour would be
    mispredicted half the time): the code is a weighted sum, the draw counts the cumulative
    probabilities below u. Every index unsigned (a negative offset wraps modulo 2^64 to the
    same id), as in the generated table kernels (numba_tables)."""
    s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
    K = uint64(values.shape[0])
    for a in range(uint64(ids.shape[0])):
        p = uint64(pat[a])
        at = uint64(ids[a])
        code = cst[p]
        for e in range(uint64(wid[p])):
            code += coef[p, e] * x[c, at + uint64(rel[p, e])]
        t = uint64(pbase[p]) + uint64(code) * K
        u, s0, s1 = _uniform(s0, s1)
        k = uint64(0)
        for j in range(K - uint64(1)):
            k += uint64(u >= cdf[t + j])
        x[c, at] = values[k]


@njit(cache=True, error_model="numpy")
def tabled(x, theta, seeds, ids, values, pat, rel, coef, wid, cst, pbase, cdf):
    """A heat-bath update of every variable ids[a], in place, by table (see numba_tables);
    theta is not read (the table holds the params)."""
    for c in range(x.shape[0]):
        _tabled_chain(c, x, ids, values, pat, rel, coef, wid, cst, pbase, cdf, seeds)


@njit(cache=True, error_model="numpy", parallel=True)
def ptabled(x, theta, seeds, ids, values, pat, rel, coef, wid, cst, pbase, cdf):
    for c in prange(x.shape[0]):
        _tabled_chain(c, x, ids, values, pat, rel, coef, wid, cst, pbase, cdf, seeds)
