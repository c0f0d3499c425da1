"""What a fit returns: the params, the per-epoch history and the method, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ebmlang.errors import UserError


@dataclass
class FitResult:
    params: dict
    history: list = field(default_factory=list)
    method: str = "pcd"

    def __repr__(self) -> str:
        from ebmlang.reprs import fit_repr
        return fit_repr(self)

    def _repr_html_(self) -> str:
        from ebmlang.reprs import fit_html
        return fit_html(self)

    def to_meta(self, model) -> dict:
        return {"model": model.name, "method": self.method, "history": _finite(self.history)}


class Diverged(UserError):
    """A fit stopped because its params became non-finite; `result` holds the last finite ones."""


def param_at(model, pos: int) -> str:
    """The ground name of params position `pos`."""
    for p in model.checked.params.values():
        if p.offset <= pos < p.offset + p.size:
            idx = np.unravel_index(pos - p.offset, p.space.shape) if p.space.shape else ()
            return p.name + (f"[{', '.join(str(int(i)) for i in idx)}]" if idx else "")
    return f"#{pos}"


def checked_step(model, opts, optimizer, theta, gap, epoch, b, history, method=None,
                 fix=None, stopping=None) -> None:
    """One optimizer step with its safeguard: a param that becomes non-finite stops the fit
    with the params restored to their last finite values. `fix(good, theta)` runs between the
    step and the check (fit keeps a Gaussian conditional proper there); `stopping()` before
    the error is raised."""
    good = theta.copy()
    theta += optimizer.step(gap - opts.weight_decay * theta if opts.weight_decay else gap)
    if fix is not None:
        fix(good, theta)
    if not np.isfinite(theta).all():
        if stopping is not None:
            stopping()
        bad = int(np.flatnonzero(~np.isfinite(theta))[0])
        theta[:] = good
        err = Diverged(f"the fit diverged: param {param_at(model, bad)} became "
                       f"non-finite at epoch {epoch}, batch {b // opts.batch_size + 1}; "
                       "the params are left at their last finite values (try a smaller --lr)")
        err.result = FitResult(model.params.to_dict(), history, method or opts.method)
        raise err


def param_gaps(model, gap: np.ndarray) -> dict[str, float]:
    """The mean |data - model| moment gap per param family (the fit line's `gap`)."""
    return {p.name: float(np.mean(np.abs(gap[p.offset:p.offset + p.size])))
            for p in model.checked.params.values()}


def _finite(value):
    """JSON-safe copy: non-finite numbers become None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value
