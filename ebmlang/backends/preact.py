"""Gibbs with pre-activations kept up to date: models whose every term is g(a) or w * g(a), a
an affine sum of one finite family's variables (the free-energy RBM's
softplus(c[j] + sum(i) W[i, j] * v[i]), a small tanh network, plain biases b[i] * v[i]).

Per chain the kernel holds a[g] for every ground term g. The local log-potential of x_p at a
value u is sum over the terms g reading x_p of coef[g] * f_g(a[g] + w * (u - x_p)), O(terms
reading x_p) per site instead of re-evaluating every read of every such term; after a change
each a[g] moves by w * (new - old). The a[g] are recomputed from scratch at the start of every
call (one sweep), which bounds floating-point drift to one sweep's updates. The sites are
visited in the family's order, a systematic scan (the same stationary distribution as the
generic kernel's colour order, different draws).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from ebmlang.backends.lanes import seed_words
from ebmlang.backends.numba_kernels import _draw, _seed, _sigmoid, _softplus, _uniform
from ebmlang.frontend import ast as A

FUNCS = {None: 0, "softplus": 1, "tanh": 2, "sigmoid": 3, "exp": 4}


class _NotAffine(Exception):
    pass


def _summands(e, sign, out):
    if isinstance(e, A.BinOp) and e.op in ("+", "-"):
        _summands(e.left, sign, out)
        _summands(e.right, sign if e.op == "+" else -sign, out)
    elif isinstance(e, A.Unary) and e.op == "-":
        _summands(e.operand, -sign, out)
    else:
        out.append((sign, e))
    return out


def _const(e, preads, theta_pos):
    """(number, param read index or None) of a variable-free factor, or raise."""
    if isinstance(e, A.Num):
        return e.value, None
    if e in preads and not theta_pos[preads[e]].dynamic:
        return 1.0, preads[e]
    raise _NotAffine


def _term_form(t):
    """(coef, func, const summands, weighted reads) of a term, or raise _NotAffine."""
    preads = {p.node: k for k, p in enumerate(t.preads)}
    reads = {r.node: k for k, r in enumerate(t.reads)}
    body, coef, func = t.body, (1.0, None), None
    if isinstance(body, A.BinOp) and body.op == "*":
        for c, g in ((body.left, body.right), (body.right, body.left)):
            if isinstance(g, A.Call) and g.func in FUNCS and len(g.args) == 1:
                coef, body = _const(c, preads, t.preads), g
                break
    if isinstance(body, A.Call) and body.func in FUNCS and len(body.args) == 1:
        func, body = body.func, body.args[0]
    consts, weighted, seen = [], [], set()
    for sign, s in _summands(body, 1.0, []):
        if s in reads:
            var, w = s, (1.0, None)
        elif isinstance(s, A.BinOp) and s.op == "*" and (s.left in reads or s.right in reads):
            var, other = (s.left, s.right) if s.left in reads else (s.right, s.left)
            w = _const(other, preads, t.preads)
        else:
            consts.append((sign,) + _const(s, preads, t.preads))
            continue
        if var in seen:
            raise _NotAffine
        seen.add(var)
        weighted.append((reads[var], sign * w[0], w[1]))
    if len(seen) != len(t.reads):
        raise _NotAffine
    return coef, func, consts, weighted


def why_not(model) -> str | None:
    """None when the model runs on this kernel, else why not (said by `ebmlang check`)."""
    fams = [f for f in model.vars.values() if f.kind != "input" and f.sampled]
    if len(fams) != 1 or len(fams) != len(model.vars):
        return "it has more than one variable family"
    f = fams[0]
    if not f.domain.finite or model.methods[f.name][0] != "gibbs":
        return f"{f.name} is not drawn by Gibbs over a finite domain"
    for t in model.terms:
        try:
            _term_form(t)
        except _NotAffine:
            return f"{t.owner} is not g(affine sum of variables) for g one of softplus, tanh, " \
                   "sigmoid, exp, or an affine sum"
    if not any(_term_form(t)[1] for t in model.terms):
        return "no term applies a function to a sum"
    return None


class PreactPart:
    """The whole family as one block part: `update` sweeps it in place; what the drivers read
    of a part (family, ids, method, counts) as on the fused parts."""

    method = "gibbs"
    adapt = False

    def __init__(self, model):
        self.model = model
        self.family = next(iter(model.vars))
        fam = model.vars[self.family]
        self.ids = np.arange(fam.offset, fam.offset + fam.space.size)
        self.values = np.asarray(fam.domain.values, np.float64)
        self.accepted = self.proposed = 0
        self.terms = [(t, _term_form(t)) for t in model.terms if t.size]
        self._ground(fam)

    def _ground(self, fam) -> None:
        fcode, g_var, g_term = [], [], []
        start = 0
        self.starts = []
        for t, (_, func, _, weighted) in self.terms:
            n = t.size
            self.starts.append(start)
            fcode.append(np.full(n, FUNCS[func], np.int64))
            for k, _, _ in weighted:
                g_var.append(t.reads[k].ids.astype(np.int64))
                g_term.append(start + np.arange(n))
            start += n
        self.n_ground = start
        self.fcode = np.concatenate(fcode)
        var = np.concatenate(g_var)
        g = np.concatenate(g_term)
        order = np.argsort(var - fam.offset, kind="stable")
        self.by_var = order
        self.v_ptr = np.searchsorted((var - fam.offset)[order], np.arange(len(self.ids) + 1))
        self.v_g, self.e_var, self.e_g = g[order], var, g

    def _weights(self, theta):
        """(coef, c0, w per incidence entry) at theta."""
        coef = np.empty(self.n_ground)
        c0 = np.zeros(self.n_ground)
        w = []
        for (t, ((cn, cp), _, consts, weighted)), s in zip(self.terms, self.starts):
            sl = slice(s, s + t.size)
            coef[sl] = t.sign * cn * (theta[t.preads[cp].pos] if cp is not None else 1.0)
            for sign, num, p in consts:
                c0[sl] += sign * num * (theta[t.preads[p].pos] if p is not None else 1.0)
            for _, num, p in weighted:
                w.append(np.broadcast_to(num * (theta[t.preads[p].pos] if p is not None else 1.0),
                                         (t.size,)))
        return coef, c0, np.concatenate(w)

    def update(self, x, theta, rng) -> None:
        self.tempered(x, theta, rng, np.ones(x.shape[0]))

    def tempered(self, x, theta, rng, beta) -> None:
        coef, c0, w = self._weights(theta)
        chains = x.shape[0]
        _sweep(x, seed_words(rng, chains), np.asarray(beta, np.float64),
               self.ids, self.values, self.fcode, coef, c0, self.e_g, self.e_var, w,
               self.v_ptr, self.v_g, w[self.by_var])


def preact_step(parts, x, theta, rng, clamp=None):
    """The sweep function: the generic compiled sweep when cells are clamped."""
    if clamp is not None:
        from ebmlang.backends.numba_backend import gibbs_step
        return gibbs_step(parts[0][0].model.parts("numba"), x, theta, rng, clamp)
    for block in parts:
        for part in block:
            part.update(x, theta, rng)
    return x


@njit(inline="always")
def _f(code, z):
    if code == 0:
        return z
    if code == 1:
        return _softplus(z)
    if code == 2:
        return np.tanh(z)
    if code == 3:
        return _sigmoid(z)
    return np.exp(z)


@njit(cache=True, error_model="numpy")
def _sweep(x, seeds, beta, ids, values, fcode, coef, c0, e_g, e_var, e_w, v_ptr, v_g, v_w):
    """Every index unsigned: numba tests a signed index for negative wrap-around per read."""
    K = values.shape[0]
    for c in range(x.shape[0]):
        s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
        a = c0.copy()
        for e in range(e_g.shape[0]):
            a[uint64(e_g[e])] += e_w[e] * x[c, uint64(e_var[e])]
        logits = np.empty(K)
        for p in range(uint64(ids.shape[0])):
            at = uint64(ids[p])
            lo, hi = uint64(v_ptr[p]), uint64(v_ptr[p + uint64(1)])
            old = x[c, at]
            for k in range(K):
                d = values[k] - old
                s = 0.0
                for e in range(lo, hi):
                    g = uint64(v_g[e])
                    s += coef[g] * _f(fcode[g], a[g] + v_w[e] * d)
                logits[k] = beta[c] * s
            u, s0, s1 = _uniform(s0, s1)
            new = values[uint64(_draw(logits, u))]
            if new != old:
                d = new - old
                for e in range(lo, hi):
                    a[uint64(v_g[e])] += v_w[e] * d
                x[c, at] = new
