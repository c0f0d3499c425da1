"""Pictures (optional: needs matplotlib, `pip install 'ebmlang[plot]'`): a grid of draws for
2-D families (and 1-D ones given `--plot-shape HxW`) and traces of the stats and the energy
after `sample`; learning curves and moment gaps after `fit`. Laid out by matplotlib's
constrained layout, so no title runs into a neighbour's tick labels; written atomically, as
PNG (or any format matplotlib knows), marked as ebmlang's (see outputs.py)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from ebmlang.errors import UserError

MAX_CHAINS_SHOWN = 8     # image columns: the last draw of this many chains at most
_CREATOR = {"png": {"Software": "ebmlang"}, "svg": {"Creator": "ebmlang"},
            "pdf": {"Creator": "ebmlang"}, "ps": {"Creator": "ebmlang"},
            "eps": {"Creator": "ebmlang"}}


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None
    return plt


def require() -> None:
    """Fail now, before any sampling or fitting, when --plot cannot be drawn."""
    _pyplot()


def parse_shape(text: str) -> tuple[int, int]:
    """An argparse type: `8x8` -> (8, 8), rows x columns."""
    rows, sep, cols = text.lower().partition("x")
    if not (sep and rows.strip().isdigit() and cols.strip().isdigit()) \
            or int(rows) < 1 or int(cols) < 1:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLUMNS such as 8x8, got '{text}'")
    return int(rows), int(cols)


def image_families(model, shape: tuple[int, int] | None = None) -> list[tuple]:
    """(family, image shape) of what `plot_samples` draws as pictures: every dense 2-D sampled
    family, and with `shape` every 1-D sampled family of rows x columns elements. A `shape`
    that fits no 1-D family is an error (said before any sampling)."""
    fams = [f for f in model.vars.values() if f.sampled and f.space.dense]
    out = [(f, f.space.shape) for f in fams if f.space.ndim == 2]
    if shape is not None:
        flat = [(f, shape) for f in fams
                if f.space.ndim == 1 and f.space.size == shape[0] * shape[1]]
        if not flat:
            sizes = ", ".join(f"{f.name} has {f.space.size:,}" for f in fams
                              if f.space.ndim == 1) or "the model has no 1-D sampled family"
            raise UserError(f"--plot-shape {shape[0]}x{shape[1]} needs a 1-D family of "
                            f"{shape[0] * shape[1]:,} elements ({sizes})")
        out += flat
    return out


def _save(fig, path: str) -> None:
    from ebmlang.io.csvio import atomic_write_bytes
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=_CREATOR.get(fmt))
    except ValueError as exc:
        raise UserError(f"cannot write a picture as '.{fmt}': {exc}") from None
    atomic_write_bytes(path, buf.getvalue())


def plot_samples(samples, path: str, shape: tuple[int, int] | None = None) -> None:
    """Write `sample_figure` to `path`."""
    fig = sample_figure(samples, shape)
    _save(fig, path)
    _pyplot().close(fig)


def sample_figure(samples, shape: tuple[int, int] | None = None):
    """The last draw of up to 8 chains of each image family (see `image_families`), and the
    traces of the energy and of every stat, one line per chain, with a legend of the chains."""
    from ebmlang.report.text import as_trace
    plt = _pyplot()
    trace = as_trace(samples)
    images = image_families(trace.model, shape)
    series = {"energy": trace.energy, **trace.series}
    cols = max(min(trace.chains, MAX_CHAINS_SHOWN), 1)
    fig = plt.figure(figsize=(max(1.8 * cols, 7.0), 1.9 * len(images) + 2.1 * len(series)),
                     layout="constrained")
    grid = fig.add_gridspec(len(images) + len(series), cols)
    for r, (f, shp) in enumerate(images):
        last = trace.last[:, f.offset:f.offset + f.space.size].reshape((-1,) + tuple(shp))
        for c in range(min(cols, len(last))):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(last[c], cmap="gray", interpolation="nearest")
            ax.set_title(f"{f.name}, chain {c}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])  # a frame, no ticks: an all-white draw still shows
    for r, (name, x) in enumerate(series.items(), start=len(images)):
        ax = fig.add_subplot(grid[r, :])
        for c, chain in enumerate(x):
            ax.plot(chain, lw=0.6, label=f"chain {c}")
        what = "energy (-log p - log Z)" if name == "energy" else f"stat {name}"
        shaped = name != "energy" and trace.stat_shape.get(name)
        ax.set_title(f"trace of the {what}" + (", mean over its elements" if shaped else ""),
                     fontsize=9)
        ax.set_xlabel("kept draw", fontsize=8)
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = fig.axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="chains",
               title_fontsize=7, ncols=1 + len(labels) // 20)
    return fig


def plot_fit(history: list[dict], path: str) -> None:
    """Write `fit_figure` to `path`."""
    fig = fit_figure(history)
    _save(fig, path)
    _pyplot().close(fig)


def fit_figure(history: list[dict]):
    """The metric per epoch (learning curve) and each param family's mean moment gap."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    epochs = [h["epoch"] for h in history]
    values = [h.get("value") for h in history]
    if any(v is not None for v in values):
        left.plot(epochs, [np.nan if v is None else v for v in values], marker="o", ms=3)
    left.set_ylabel((history[0].get("metric") if history else None) or "metric")
    left.set_xlabel("epoch")
    left.set_title("learning curve")
    gaps = [h.get("gaps") for h in history if h.get("gaps")]
    if gaps:
        for name in gaps[0]:
            right.semilogy(epochs[-len(gaps):], [max(g[name], 1e-12) for g in gaps], label=name)
        right.legend(fontsize=8, title="param")
    right.set_xlabel("epoch")
    right.set_ylabel("|E_data - E_model| (mean)")
    right.set_title("moment gaps")
    from matplotlib.ticker import MaxNLocator
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    return fig
