"""What a fit returns: the params, the per-epoch history and the method, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
