"""`fit --method sm`: score matching (Hyvarinen 2005) for models whose sampled families are all
real and fully observed. It needs no Z and no chains: it minimizes

    J(theta) = mean over data rows of  sum_i [ 0.5 (dF/dx_i)^2 + d^2F/dx_i^2 ]

with F the log-potential. Per term, sympy derives d(body)/d(read k), the second derivatives
d^2(body)/d(read k)d(read l) (their sum over the reads of one variable is that variable's
Laplacian entry) and the derivatives of both in every param read; they are printed as numpy
(`backends.xgrad`'s printer), evaluated on all rows at once, and J with its exact gradient
goes to L-BFGS. J is quadratic in params that enter linearly (the Gaussian MRF), so there the
minimum is the closed-form estimator. A term whose body is not twice differentiable in x
(abs, min, max, comparisons, a step) is refused, naming its factor.
"""

from __future__ import annotations

import numpy as np

from ebmlang.errors import UserError

_ROUGH = ("DiracDelta", "Heaviside", "sign", "Abs", "Piecewise", "Min", "Max", "Derivative",
          "Subs", "floor", "ceiling", "Ind")


def _rough(expr) -> bool:
    import sympy as sp
    return any(type(e).__name__ in _ROUGH for e in sp.preorder_traversal(expr))


class _TermSM:
    """One term's generated derivatives: g[k], dg[k][q], h[(k, l)], dh[(k, l)][q]."""

    def __init__(self, model, kernel, families, span_of):
        from ebmlang.middle.derivatives import diff, term_expr, term_symbols
        import sympy as sp
        from ebmlang.backends.codegen import PRELUDE, _Printer, _deriv_printer, load_module
        t = kernel.term
        consts = model.checked.consts
        self.kernel = kernel
        self.reads = [k for k, r in enumerate(t.reads) if r.family in families]
        self.pairs = [(k, l) for k in self.reads for l in self.reads if k <= l]
        v, p, _ = term_symbols(t)
        body = term_expr(t, consts) * int(t.sign)
        g = [diff(body, v[k]) for k in self.reads]
        h = [diff(diff(body, v[k]), v[l]) for k, l in self.pairs]
        for e in g + h:
            if _rough(e):
                raise UserError(f"score matching needs every factor twice differentiable in "
                                f"x; '{t.owner}' is not (its x-derivatives contain "
                                "abs, min, max, a comparison or a step)", span_of(t.owner))
        dg = [[diff(e, s) for s in p] for e in g]
        dh = [[diff(e, s) for s in p] for e in h]
        pr = _Printer(t, consts)
        names = {f"V{k}": f"V[{k}]" for k in range(len(t.reads))}
        names.update({f"I{k}": f"I[{k}]" for k in range(len(t.names))})
        names.update({f"P{k}": pr._param(q.node) for k, q in enumerate(t.preads)})
        pt = _deriv_printer()(names).doprint
        # the g, dg, h and dh of a tanh unit share most of their subexpressions: computed once
        shared, flat = sp.cse(g + [e for r in dg for e in r] + h + [e for r in dh for e in r],
                              symbols=sp.numbered_symbols("_s"), optimizations=None)
        it = iter(flat)

        def lst(es):
            return "[" + ", ".join(f"({pt(next(it))})" for _ in es) + "]"
        ret = (f"    return ({lst(g)}, [{', '.join(lst(r) for r in dg)}], {lst(h)}, "
               f"[{', '.join(lst(r) for r in dh)}])")
        src = "\n".join([PRELUDE, "def sm(V, P, I, theta):"] +
                        [f"    {sym.name} = {pt(e)}" for sym, e in shared] + [ret, ""])
        self.fn = load_module(src)["sm"]


class ScoreMatching:
    """J(theta) and dJ/dtheta on the data rows x (rows, n_state). With `noise` = sigma > 0,
    denoising score matching (Vincent 2011) instead: each row is copied COPIES times with
    N(0, sigma^2) added to its sampled variables (drawn once, from `rng`), and
    J = mean 0.5 |dF/dx(x~) + (x~ - x) / sigma^2|^2, score matching of the data density
    smoothed by the noise: no second derivatives, and well-separated modes that plain score
    matching cannot weigh against each other are joined by the smoothing. `weight_decay`
    adds 0.5 * weight_decay * |theta|^2."""

    def __init__(self, model, x: np.ndarray, noise: float = 0.0, weight_decay: float = 0.0,
                 rng=None):
        fams = {f.name for f in model.vars.values() if f.sampled}
        for f in fams:
            if model.vars[f].domain.finite:
                raise UserError(f"score matching is for real variables; '{f}' is "
                                f"{model.vars[f].domain}: use pcd or pl")
        if not (noise >= 0 and np.isfinite(noise)):
            raise UserError(f"the score-matching noise must be a number >= 0, got {noise}")
        self.model, self.noise, self.decay = model, float(noise), float(weight_decay)
        self.x, self.target = x, 0.0
        if noise > 0:
            ids = model.state_ids()
            self.x = np.repeat(x, COPIES, axis=0)
            eps = np.zeros_like(self.x)
            eps[:, ids] = noise * (rng or np.random.default_rng(0)).standard_normal(
                (len(self.x), len(ids)))
            self.x = self.x + eps
            self.target = eps / noise ** 2        # J = 0.5 |G + target|^2
        spans = {d.name: d.span for d in model.checked.factors}
        self.terms = [_TermSM(model, k, fams, spans.get)
                      for k in model.kernels if k.term.size and
                      any(r.family in fams for r in k.term.reads)]
        for ts in self.terms:
            if any(q.dynamic for q in ts.kernel.term.preads):
                raise UserError(f"score matching does not take params indexed by variables "
                                f"('{ts.kernel.term.owner}')")
        self.last = (None, None)

    def __call__(self, theta: np.ndarray):
        x, rows = self.x, self.x.shape[0]
        G = np.zeros(x.shape)
        lap = 0.0
        parts = []
        for ts in self.terms:
            V, P, I = ts.kernel.args(x, theta)
            g, dg, h, dh = ts.fn(V, P, I, theta)
            t = ts.kernel.term
            for k, e in zip(ts.reads, g):
                np.add.at(G, (slice(None), t.reads[k].ids), np.broadcast_to(e, (rows, t.size)))
            parts.append((ts, V, dg, h, dh))
        G += self.target
        grad = self.decay * theta
        n = len(theta)
        for ts, V, dg, h, dh in parts:
            t = ts.kernel.term
            for (k, l), e, de in zip(ts.pairs, h, dh) if not self.noise else ():
                same = t.reads[k].ids == t.reads[l].ids
                if not same.any():
                    continue
                mult = (1.0 if k == l else 2.0) * same
                lap += float((np.broadcast_to(e, (rows, t.size)) * mult).sum())
                for q, d in enumerate(de):
                    w = (np.broadcast_to(d, (rows, t.size)) * mult).sum(axis=0)
                    grad += np.bincount(t.preads[q].pos, weights=w, minlength=n) / rows
            for k, de in zip(ts.reads, dg):
                gk = G[:, t.reads[k].ids]
                for q, d in enumerate(de):
                    w = (gk * np.broadcast_to(d, (rows, t.size))).sum(axis=0)
                    grad += np.bincount(t.preads[q].pos, weights=w, minlength=n) / rows
        value = (0.5 * float((G * G).sum()) + lap) / rows + 0.5 * self.decay * float(theta @ theta)
        self.last = (theta.copy(), value)
        return value, grad

    def value(self, theta: np.ndarray) -> float:
        """J at theta: the last evaluation's when it was at theta (L-BFGS's callback)."""
        at, value = self.last
        return value if at is not None and np.array_equal(at, theta) else self(theta)[0]


COPIES = 10     # noisy copies of each row for denoising score matching


def fit_sm(model, data, opts):
    """Minimize J by L-BFGS from the model's params; the history is J per iteration."""
    from scipy.optimize import minimize
    from ebmlang.learn.result import FitResult
    ids = model.state_ids()
    if np.isnan(data.x[:, ids]).any():
        raise UserError("score matching needs every variable observed in every row (no "
                        "latent families, no empty cells)")
    sm = ScoreMatching(model, data.x, opts.noise, opts.weight_decay,
                       np.random.default_rng(opts.seed))
    history = []

    def record(theta):
        history.append({"epoch": len(history) + 1, "metric": "DSM" if opts.noise else "SM",
                        "value": sm.value(theta)})
        if opts.progress is not None:
            opts.progress(history[-1], opts)
    res = minimize(sm, model.params.theta.copy(), jac=True, method="L-BFGS-B",
                   callback=record, options={"maxiter": 25 * opts.epochs, "gtol": 1e-10})
    if not np.all(np.isfinite(res.x)):
        raise UserError("score matching diverged: J is unbounded below at these params")
    model.params.theta[:] = res.x
    return FitResult(model.params.to_dict(), history, "sm")
