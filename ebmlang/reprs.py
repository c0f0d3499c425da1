"""Concise reprs and notebook HTML for the Python API's objects (`Samples`, `Trace`, `Params`,
`FitResult`): a line or two saying what the object holds, never the raw arrays. Each is cheap:
none reads the draws, so a million-spin sample shows at once."""

from __future__ import annotations

import numpy as np

from ebmlang.table import html_table

SMALL = 6   # an array of at most this many values is shown whole


def _shape(shape) -> str:
    return " x ".join(str(d) for d in shape) if shape else "scalar"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def array_text(value) -> str:
    """A number as `0.5`, a small array as `[0, 0.5]`, a large one by its shape and range."""
    arr = np.asarray(value, float)
    if arr.ndim == 0:
        return f"{float(arr):.4g}"
    if arr.size and np.all(arr == arr.flat[0]):
        return f"{_shape(arr.shape)}, all {arr.flat[0]:.4g}"
    if arr.size <= SMALL:
        return "[" + ", ".join(f"{v:.4g}" for v in arr.ravel()) + "]"
    return (f"{_shape(arr.shape)}, mean {arr.mean():.3g}, sd {arr.std():.3g}, "
            f"range [{arr.min():.3g}, {arr.max():.3g}]")


def params_repr(params) -> str:
    texts = {k: array_text(v) for k, v in params.items()}
    items = ", ".join(f"{k}={t}" if np.ndim(params[k]) == 0 or t.startswith("[") else f"{k}=<{t}>"
                      for k, t in texts.items())
    return f"Params({items})"


def params_html(params, caption: str = "params") -> str:
    rows = [(k, [_shape(np.shape(v)), array_text(v)]) for k, v in params.items()]
    return html_table(["shape", "values"], rows, caption)


def _families(model) -> str:
    return ", ".join(f"{f.name}[{_shape(f.space.shape)}]" if f.space.ndim else f.name
                     for f in model.vars.values() if f.sampled)


def _draws_line(kind: str, model, chains: int, draws: int, extra: str = "") -> str:
    return (f"<{kind} {model.name}: {_plural(chains, 'chain')} x {_plural(draws, 'draw')} of "
            f"{_families(model)}{extra}>")


def _stats_note(model) -> str:
    stats = list(model.checked.stats)
    return f"; stats {', '.join(stats)}" if stats else ""


def _acceptance_note(acceptance: dict) -> str:
    return "".join(f"; MH {k} accepted {v:.3f}" for k, v in (acceptance or {}).items())


def _gradient_note(move) -> str:
    if move is None:
        return ""
    return (f"; {move.kind.upper()} {', '.join(sorted(move.grad.families))} accepted "
            f"{move.acceptance:.3f}, {move.divergent} divergent")


def samples_repr(samples) -> str:
    kept = "" if samples.full is not None else " (not kept)"
    return _draws_line("Samples", samples.model, samples.chains, samples.draws,
                       kept + _stats_note(samples.model) + _acceptance_note(samples.acceptance)
                       + _gradient_note(getattr(samples, "gradient", None)))


def trace_repr(trace) -> str:
    return _draws_line("Trace", trace.model, trace.chains, trace.draws,
                       _stats_note(trace.model) + _acceptance_note(trace.acceptance))


def samples_html(samples) -> str:
    """A table of the sampled families (kind, domain, shape); the numbers are in `.summary()`."""
    rows = [(f.name, [f.kind, f.domain.text, _shape(f.space.shape)])
            for f in samples.model.vars.values() if f.sampled]
    return html_table(["kind", "domain", "shape"], rows, samples_repr(samples)[1:-1]
                      + "; numbers: .summary()")


def trace_html(trace) -> str:
    """The trace's summary table (energy and stats: a few series of chains x draws)."""
    table = trace.summary()
    body = table._repr_html_() if hasattr(table, "_repr_html_") else repr(table)
    return f"<p>{trace_repr(trace)[1:-1]}</p>{body}"


def _last_epoch(history) -> str:
    if not history:
        return "no epochs"
    h = history[-1]
    text = f"{_plural(len(history), 'epoch')}"
    if "metric" in h and h.get("value") is not None:
        text += f", last {h['metric']} {h['value']:.4g}"
    gaps = h.get("gaps") or {}
    if gaps:
        text += ", gaps " + " ".join(f"{k} {v:.2g}" for k, v in gaps.items())
    return text


def fit_repr(result) -> str:
    shapes = ", ".join(f"{k}[{_shape(np.shape(v))}]" if np.ndim(v) else k
                       for k, v in result.params.items())
    return f"<FitResult {result.method}: {_last_epoch(result.history)}; params {shapes}>"


def fit_html(result) -> str:
    return params_html(result.params, fit_repr(result)[1:-1])
