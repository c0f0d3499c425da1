"""Variables summed out exactly (the RBM's hidden units given the visibles): free energies
and conditional expectations, for scores, exact log Z and the learners' data phase."""

from __future__ import annotations

import numpy as np

from ebmlang.backends.numeric import logsumexp, softmax
from ebmlang.backends.runtime import PartKernel, build_part, local_logits


class SummedOut:
    """Variables summed out exactly: they must be conditionally independent given the rest
    (no factor instance reads two of them), as the hidden units of an RBM are."""

    def __init__(self, model, ids: np.ndarray):
        self.model = model
        n_state = model.checked.n_state
        inside = np.zeros(n_state, bool)
        inside[ids] = True
        self.parts: list[PartKernel] = []
        for f in model.vars.values():
            mine = np.flatnonzero(inside[f.offset:f.offset + f.space.size]) + f.offset
            if len(mine):
                self.parts.append(build_part(mine, f.name, f.domain.values, model.kernels, n_state))
        self.untouched = []
        for k in model.kernels:
            t = k.term
            if not t.size:
                continue
            hit = np.zeros(t.size, bool)
            for r in t.reads:
                hit |= inside[r.ids]
            self.untouched.append((k, np.flatnonzero(~hit)))

    @staticmethod
    def independent(model, ids: np.ndarray) -> bool:
        """True when the variables `ids` can be summed out by enumeration, one at a time:
        each has a finite domain (a real latent is sampled instead) and no factor instance
        reads two of them."""
        inside = np.zeros(model.checked.n_state, bool)
        inside[ids] = True
        for f in model.vars.values():
            if not f.domain.finite and inside[f.offset:f.offset + f.space.size].any():
                return False
        edges = model.graph.edges
        return not np.any(inside[edges[:, 0]] & inside[edges[:, 1]]) if len(edges) else True

    def log_marginal(self, x: np.ndarray) -> np.ndarray:
        """log sum over the summed-out variables of exp F(x), per row (minus the free energy)."""
        theta = self.model.params.theta
        out = np.zeros(x.shape[0])
        for k, rows in self.untouched:
            if len(rows):
                out += k.values(x, theta, rows).sum(axis=1)
        for part in self.parts:
            out += logsumexp(local_logits(part, x, theta), axis=-1).sum(axis=1)
        return out

    def expected_stats(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum_c weights[c] * E[dF/dtheta | everything not summed out] at x_c."""
        theta = self.model.params.theta
        out = np.zeros(self.model.checked.n_theta)
        w = np.asarray(weights, float)[:, None]
        for k, rows in self.untouched:
            if len(rows) and k.term.preads:
                k.add_gradient(out, x, theta, w, rows)
        for part in self.parts:
            p = softmax(local_logits(part, x, theta))
            mean = p @ part.values
            for tc in part.touches:
                if not tc.kernel.term.preads:
                    continue
                if tc.dense:  # linear in the summed-out value: use its expectation
                    tc.kernel.dense.add_gradient(out, x, theta, w, {part.family: mean})
                    continue
                for v, value in enumerate(part.values):
                    tc.kernel.add_gradient(out, x, theta, w * p[:, tc.target, v], tc.rows,
                                           (tc.masks, value))
        return out
