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

        def lst(es):
            return "[" + ", ".join(f"({pt(e)})" for e in es) + "]"
        src = "\n".join([PRELUDE, "def sm(V, P, I, theta):",
                         f"    return ({lst(g)}, [{', '.join(lst(r) for r in dg)}], {lst(h)}, "
                         f"[{', '.join(lst(r) for r in dh)}])", ""])
        self.fn = load_module(src)["sm"]


class ScoreMatching:
    """J(theta) and dJ/dtheta on the data rows x (rows, n_state)."""

    def __init__(self, model, x: np.ndarray):
        self.model, self.x = model, x
        fams = {f.name for f in model.vars.values() if f.sampled}
        for f in fams:
            if model.vars[f].domain.finite:
                raise UserError(f"score matching is for real variables; '{f}' is "
                                f"{model.vars[f].domain}: use pcd or pl")
        spans = {d.name: d.span for d in model.checked.factors}
        self.terms = [_TermSM(model, k, fams, spans.get)
                      for k in model.kernels if k.term.size and
                      any(r.family in fams for r in k.term.reads)]
        for ts in self.terms:
            if any(q.dynamic for q in ts.kernel.term.preads):
                raise UserError(f"score matching does not take params indexed by variables "
                                f"('{ts.kernel.term.owner}')")

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
        grad = np.zeros_like(theta)
        n = len(theta)
        for ts, V, dg, h, dh in parts:
            t = ts.kernel.term
            for (k, l), e, de in zip(ts.pairs, h, dh):
                same = t.reads[k].ids == t.reads[l].ids
                if not same.any():
                    continue
                mult = (1.0 if k == l else 2.0) * same
                lap += float((np.broadcast_to(e, (rows, t.size)) * mult).sum())
                for q, d in enumerate(de):
                    w = (np.broadcast_to(d, (rows, t.size)) * mult).sum(axis=0)
                    grad += np.bincount(t.preads[q].pos, weights=w, minlength=n)
            for k, de in zip(ts.reads, dg):
                gk = G[:, t.reads[k].ids]
                for q, d in enumerate(de):
                    w = (gk * np.broadcast_to(d, (rows, t.size))).sum(axis=0)
                    grad += np.bincount(t.preads[q].pos, weights=w, minlength=n)
        return (0.5 * float((G * G).sum()) + lap) / rows, grad / rows


def fit_sm(model, data, opts):
    """Minimize J by L-BFGS from the model's params; the history is J per iteration."""
    from scipy.optimize import minimize
    from ebmlang.learn.result import FitResult
    ids = model.state_ids()
    if np.isnan(data.x[:, ids]).any():
        raise UserError("score matching needs every variable observed in every row (no "
                        "latent families, no empty cells)")
    sm = ScoreMatching(model, data.x)
    history = []

    def record(theta):
        history.append({"epoch": len(history) + 1, "metric": "SM", "value": sm(theta)[0]})
        if opts.progress is not None:
            opts.progress(history[-1], opts)
    res = minimize(sm, model.params.theta.copy(), jac=True, method="L-BFGS-B",
                   callback=record, options={"maxiter": 25 * opts.epochs, "gtol": 1e-10})
    if not np.all(np.isfinite(res.x)):
        raise UserError("score matching diverged: J is unbounded below at these params")
    model.params.theta[:] = res.x
    return FitResult(model.params.to_dict(), history, "sm")
