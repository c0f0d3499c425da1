"""The PCD gap of a binary RBM in a handful of in-place matrix products.

`FusedModel` serves any model whose terms are contractions, through generic per-term plans;
for a minibatch of 10 rows most of its time is Python dispatch and fresh arrays (bench/RESULTS.md,
"PCD epoch: where the time goes"). `BipartitePCD` is the same update specialised to the shape
most fits have: two 0/1 families in two blocks, visible then hidden, joined by one weight
matrix `W[i, j] * v[i] * h[j]`, with bias terms `b[i] * v[i]` on either, the hidden family
summed out in the data phase, one sweep per update (k = 1). Per minibatch it makes:

- the chains' visible draw: `h_c @ W^T + b`, one logistic test per variable;
- one product `[v_data; v_chains] @ W + c` for both the data phase's hidden means and the
  chains' hidden draw (the sweep draws v before h, so the chains' new v is ready);
- the whole gap `E_data - E_model` of W as one product `[v_data; v_c]^T [h_mean / B; -h_c / C]`,
  and of each bias as one row-weighted sum, into a preallocated buffer.

The random numbers are the ones `FusedModel.sweep` draws, in the same order, against the same
probabilities (`_Family._p1`'s formula), so the chains and params equal the generic fused path's
up to rounding in the products (tested to 1e-12). Every state and field lives in buffers made
once per fit; the chains are copied back to the caller's state array by `write_chains`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ebmlang.backends.fused import FusedModel

# |gap| <= 1 for every param: each statistic is an average of products of values and
# conditional means in [0, 1], and the gap is the difference of two such averages.
GAP_BOUND = 1.0


def _p1(f: np.ndarray) -> None:
    """`_Family._p1` for a 0/1 family, in place: the probability of value 1 given field f,
    1/2 where the field is undefined."""
    f *= 0.5
    np.tanh(f, out=f)
    f += 1.0
    f *= 0.5
    if np.isnan(f.sum()):
        f[np.isnan(f)] = 0.5


class BipartitePCD:
    """Buffers and plan of the specialised update; `build` gives None where it does not apply
    (the fit then runs the generic fused phases)."""

    def __init__(self, vis, hid, w_offset: int, vbias: list[int], hbias: list[int]):
        self.vis, self.hid = vis, hid
        self.w = slice(w_offset, w_offset + vis.size * hid.size)
        self.vbias = [slice(o, o + vis.size) for o in vbias]
        self.hbias = [slice(o, o + hid.size) for o in hbias]
        self.weights: dict[int, np.ndarray] = {}
        self.last_b, self.last_w = 0, None           # the last minibatch size's weights

    @staticmethod
    def build(fused: FusedModel | None, model, summed: list[str]) -> BipartitePCD | None:
        """The plan where the model is a binary RBM as described above, else None."""
        if fused is None or len(fused.blocks) != 2 or any(len(b) != 1 for b in fused.blocks):
            return None
        vis, hid = fused.blocks[0][0], fused.blocks[1][0]
        if not (vis.unit and hid.unit) or summed != [hid.name] or \
                model.vars[vis.name].kind != "var" or \
                len(model.vars[vis.name].space.shape) != 1 or \
                len(model.vars[hid.name].space.shape) != 1:
            return None
        weight, vbias, hbias, params = None, [], [], []
        for d in fused.terms:
            if d.coef != 1.0 or d.operands[0].kind != "param" or \
                    any(o.kind != "var" for o in d.operands[1:]):
                return None
            p, reads = d.operands[0], [o.family for o in d.operands[1:]]
            params.append(p.offset)
            if reads == [vis.name, hid.name] and p.subs == d.operands[1].subs + d.operands[2].subs:
                if weight is not None:
                    return None
                weight = p.offset
            elif reads == [vis.name] and p.subs == d.operands[1].subs:
                vbias.append(p.offset)
            elif reads == [hid.name] and p.subs == d.operands[1].subs:
                hbias.append(p.offset)
            else:
                return None
        if weight is None or len(set(params)) != len(params):
            return None
        return BipartitePCD(vis, hid, weight, vbias, hbias)

    def start(self, rows: np.ndarray, chains: np.ndarray, batch: int, n_theta: int) -> None:
        """Buffers for minibatches of up to `batch` rows of the data `rows` (full states) and
        the persistent `chains` (full states, read here, written back by `write_chains`).
        Row layout of the stacked states: [unused | minibatch (B rows, ending at `batch`) |
        chains (C rows)], so any minibatch size stacks contiguously with the chains."""
        vis, hid = self.vis, self.hid
        c = chains.shape[0]
        self.top = batch
        self.data = np.ascontiguousarray(rows[:, vis.offset:vis.offset + vis.size])
        self.v = np.zeros((batch + c, vis.size))
        self.h = np.zeros((batch + c, hid.size))
        self.scaled = np.zeros((batch + c, hid.size))
        self.v[batch:] = chains[:, vis.offset:vis.offset + vis.size]
        self.h[batch:] = chains[:, hid.offset:hid.offset + hid.size]
        self.uv, self.uh = np.empty((c, vis.size)), np.empty((c, hid.size))
        self.gap_out = np.zeros(n_theta)

    def _weights(self, b: int) -> np.ndarray:
        """(B + C, 1): 1/B for the minibatch's rows, -1/C for the chains'."""
        w = self.weights.get(b)
        if w is None:
            c = self.v.shape[0] - self.top
            w = self.weights[b] = np.concatenate([np.full(b, 1.0 / b), np.full(c, -1.0 / c)])[:, None]
        self.last_b, self.last_w = b, w
        return w

    def gap(self, batch: np.ndarray, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One PCD update's gap E_data[dF/dtheta] - E_model[dF/dtheta] (a buffer reused by the
        next call), after one Gibbs sweep of the chains in place."""
        nv, nh, top = self.vis.size, self.hid.size, self.top
        W = theta[self.w].reshape(nv, nh)
        vc, hc = self.v[top:], self.h[top:]
        np.matmul(hc, W.T, out=vc)                   # the chains' visible field
        for sl in self.vbias:
            vc += theta[sl]
        _p1(vc)
        rng.random(out=self.uv)
        np.less(self.uv, vc, out=vc)
        first = top - len(batch)
        vs, hs = self.v[first:], self.h[first:]
        self.data.take(batch, axis=0, out=self.v[first:top], mode="clip")
        np.matmul(vs, W, out=hs)                     # hidden fields: data rows, then chains
        for sl in self.hbias:
            hs += theta[sl]
        _p1(hs)                                      # the data rows' hidden means
        rng.random(out=self.uh)
        np.less(self.uh, hc, out=hc)                 # the chains' hidden draw
        w = self.last_w if len(batch) == self.last_b else self._weights(len(batch))
        out, scaled = self.gap_out, self.scaled[first:]
        np.multiply(hs, w, out=scaled)
        np.matmul(vs.T, scaled, out=out[self.w].reshape(nv, nh))
        for sl in self.vbias:
            np.matmul(w[:, 0], vs, out=out[sl])
        for sl in self.hbias:
            np.matmul(w[:, 0], hs, out=out[sl])
        return out

    def write_chains(self, chains: np.ndarray) -> None:
        """Copy the persistent chains' states into `chains` (full states)."""
        vis, hid, top = self.vis, self.hid, self.top
        chains[:, vis.offset:vis.offset + vis.size] = self.v[top:]
        chains[:, hid.offset:hid.offset + hid.size] = self.h[top:]


@njit(cache=True, error_model="numpy")
def sgd_step_sum(theta, gap, lr, total):
    """theta += lr * gap and total += gap in one pass over the params: the same roundings as
    numpy's `theta += gap * lr; total += gap` (no fused multiply-add: numba's default)."""
    for i in range(theta.shape[0]):
        g = gap[i]
        theta[i] += g * lr
        total[i] += g
