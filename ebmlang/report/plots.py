"""Pictures (optional: needs matplotlib, `pip install 'ebmlang[plot]'`): a grid of draws for
2-D families and traces of the stats and the energy after `sample`; learning curves and
moment gaps after `fit`. Written atomically as PNG (or any format matplotlib knows)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ebmlang.errors import UserError


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None
    return plt


def _save(fig, path: str) -> None:
    from ebmlang.io.csvio import atomic_write_bytes
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")
    except ValueError as exc:
        raise UserError(f"cannot write a picture as '.{fmt}': {exc}") from None
    atomic_write_bytes(path, buf.getvalue())


def plot_samples(samples, path: str) -> None:
    """Draws of each 2-D family (the last draw of up to 8 chains) and traces of every stat
    and of the energy, one line per chain."""
    from ebmlang.report.text import as_trace
    plt = _pyplot()
    trace = as_trace(samples)
    model = trace.model
    grids = [f for f in model.vars.values() if f.sampled and f.space.ndim == 2 and f.space.dense]
    series = {"energy": trace.energy, **trace.series}
    shown = min(trace.chains, 8)
    rows = len(grids) + len(series)
    fig, axes = plt.subplots(rows, max(shown, 1), figsize=(2.2 * max(shown, 1), 2.2 * rows),
                             squeeze=False)
    for r, f in enumerate(grids):
        last = trace.last[:, f.offset:f.offset + f.space.size].reshape((-1,) + f.space.shape)
        for c in range(axes.shape[1]):
            ax = axes[r, c]
            if c < shown:
                ax.imshow(last[c], cmap="gray", interpolation="nearest")
                ax.set_title(f"{f.name}, chain {c}", fontsize=8)
            ax.axis("off")
    for r, (name, x) in enumerate(series.items(), start=len(grids)):
        for c in range(1, axes.shape[1]):
            fig.delaxes(axes[r, c])
        ax = axes[r, 0]
        ax.set_position(_wide(axes, r))
        for chain in x:
            ax.plot(chain, lw=0.6)
        ax.set_title(f"trace of {name}", fontsize=8)
        ax.set_xlabel("draw", fontsize=8)
    _save(fig, path)
    plt.close(fig)


def _wide(axes, r):
    """A bounding box spanning the whole row r of an axes grid."""
    left = axes[r, 0].get_position()
    right = axes[r, -1].get_position()
    from matplotlib.transforms import Bbox
    return Bbox.from_extents(left.x0, left.y0, right.x1, left.y1)


def plot_fit(history: list[dict], path: str) -> None:
    """The metric per epoch (learning curve) and each param family's mean moment gap."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [h["epoch"] for h in history]
    values = [h.get("value") for h in history]
    if any(v is not None for v in values):
        left.plot(epochs, [np.nan if v is None else v for v in values], marker="o", ms=3)
        left.set_ylabel(history[0].get("metric") or "metric")
    left.set_xlabel("epoch")
    left.set_title("learning curve")
    gaps = [h.get("gaps") for h in history if h.get("gaps")]
    if gaps:
        for name in gaps[0]:
            right.semilogy(epochs[-len(gaps):], [max(g[name], 1e-12) for g in gaps], label=name)
        right.legend(fontsize=8)
    right.set_xlabel("epoch")
    right.set_title("moment gaps |E_data - E_model|")
    _save(fig, path)
    plt.close(fig)
