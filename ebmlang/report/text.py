"""Human-readable summaries: `ebmlang check` (a compiler-style summary of the checked model, its
terms, blankets, samplers and blocks) and the draw summary of `ebmlang sample`."""

from __future__ import annotations

import math

import numpy as np

from ebmlang.frontend.printing import expr_text


def _table(rows: list[tuple[str, ...]], indent: str = "  ", right: tuple[int, ...] = ()) -> list[str]:
    """Rows of cells padded into aligned columns; columns in `right` are right-aligned."""
    if not rows:
        return []
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, (int, np.integer)) else f"{v:g}"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(f"{d:,}" for d in shape) if shape else "scalar"


# ---------------------------------------------------------------- ebmlang check

def check_report(model) -> str:
    """The summary `ebmlang check` prints: declarations, terms, blankets, samplers, blocks."""
    cm = model.checked
    sampled = sum(f.space.size for f in cm.vars.values() if f.sampled)
    where = f" ({model.path})" if model.path is not None else ""
    lines = [f"model {model.name}{where}: {_n(sampled, 'sampled variable')}, "
             f"{_n(cm.n_theta, 'param value')}, "
             f"{_n(sum(t.size for t in model.terms), 'factor instance')}"]
    if cm.consts:
        lines.append("consts     " + ", ".join(f"{k} = {_num(v)}" for k, v in cm.consts.items()))
    lines += _section(("variables", "kind", "domain", "index", "ground"), _var_rows(cm), (4,))
    lines += _section(("params", "shape", "values", "initial"), _param_rows(cm), (2,))
    lines += _section(("stats", "index", "definition"),
                      [(s.name, s.space.describe() if s.index else "", expr_text(s.expr))
                       for s in cm.stats.values()])
    lines += _section(("factors", "kind", "over", "reads", "instances"), _term_rows(model), (4,))
    lines += _sampling(model)
    lines += _learning(model)
    return "\n".join(lines)


def _learning(model) -> list[str]:
    """dF/dparam per term: the sufficient statistics the learner's data and model phases match."""
    from ebmlang.middle.derivatives import sufficient_statistics
    rows = [(name if k == 0 else "", "d/d" + name if k == 0 else "", label, text)
            for name, stats in sufficient_statistics(model).items()
            for k, (label, text) in enumerate(stats)]
    if not rows:
        return []
    return ["learning   gradient = E_data[dF/dparam] - E_model[dF/dparam]"] + \
        _table([("  " + r[0],) + r[1:] for r in rows], indent="")


def _section(header: tuple[str, ...], rows, right=()) -> list[str]:
    """A titled, aligned table: the header row names the columns, the rows are indented."""
    if not rows:
        return [f"{header[0]:<10} none"]
    return _table([header] + [("  " + r[0],) + r[1:] for r in rows], indent="", right=right)


def _var_rows(cm):
    return [(f.name, f.kind, f.domain.text, f"[{f.space.describe()}]" if f.space.ndim else "",
             f"{f.space.size:,}") for f in cm.vars.values()]


def _param_rows(cm):
    return [(p.name, _shape(p.space.shape), f"{p.size:,}", expr_text(p.init))
            for p in cm.params.values()]


def _term_rows(model):
    kinds = {f.name: f.kind for f in model.checked.factors}
    counts = {}
    for t in model.terms:
        counts[t.owner] = counts.get(t.owner, 0) + 1
    rows = []
    for t in model.terms:
        label = t.owner + (f" #{t.number}" if counts[t.owner] > 1 else "")
        reads = ", ".join(_read_texts(model, t)) or "(no variables)"
        rows.append((label, kinds.get(t.owner, "factor"), f"[{', '.join(t.names)}]"
                     if t.names else "", reads, f"{t.size:,}"))
    from ebmlang.middle.split import binding_names
    for f in model.checked.factors:  # an empty index or sum adds no term
        if f.name not in counts:
            names = [n for b in (f.index.bindings if f.index else ()) for n in binding_names(b)]
            rows.append((f.name, f.kind, f"[{', '.join(names)}]" if names else "",
                         "(empty index)", "0"))
    return rows


def _read_texts(model, t) -> list[str]:
    """The term's variable reads as written: under a sum in nonlinear position, the read with
    the sum's range (`v[i] for i in 0..N - 1`), not every ground read it was written out to."""
    if t.folded is None:
        return [expr_text(r.node) for r in t.reads]
    from ebmlang.frontend.printing import index_text
    from ebmlang.middle.split import occurrences
    out = []
    for read, sums in occurrences(t.folded, set(model.checked.vars)):
        text = expr_text(read) + "".join(f" for {index_text(s.index)}" for s in reversed(sums))
        if text not in out:
            out.append(text)
    return out


def _sampler_text(model, f) -> str:
    return f"{model.sampler_text(f.name)} (over {f.domain.text})"


def _sampling(model) -> list[str]:
    sizes = model.graph.blankets
    conditionals = model.conditionals()
    lines = ["sampling"]
    for f in model.vars.values():
        if not f.sampled:
            continue
        lo, hi = sizes[f.name]
        ground = f"{lo:,}" if lo == hi else f"{lo:,}..{hi:,}"
        meets = ", ".join(conditionals[f.name].blanket) or "nothing (independent of the rest)"
        lines += _table([(f.name, "sampler", _sampler_text(model, f)),
                         ("", "blanket", meets),
                         ("", "ground", f"{ground} neighbour{'s' * (hi != 1)} per variable"),
                         ("", "blocks", model.graph.colouring.get(f.name, "?"))])
    blocks = model.graph.blocks
    lines.append(f"blocks     {len(blocks)} per sweep: "
                 + ", ".join(f"{b.label} ({b.size:,})" for b in blocks))
    return lines


# ---------------------------------------------------------------- ebmlang sample

def sample_summary(samples, burn_in: int | None = None, thin: int = 1,
                   tempered: bool | None = None) -> str:
    """Means of each sampled family, mean and sd of each stat, mean log-potential, and the
    convergence diagnostics; of a `Samples` or of a `trace.Trace` built while sampling.
    `tempered` (True or False: whether the run used parallel tempering): a one-line hint of
    what to try follows the R-hat warnings."""
    samples = as_trace(samples)
    model = samples.model
    burn = samples.draws // 2 if burn_in is None else burn_in
    lines = [f"{model.name}: {_n(samples.chains, 'chain')} x {_n(samples.draws, 'draw')} "
             f"(burn-in {burn:,}, thin {thin}), {_n(len(samples.ids), 'variable')}",
             "blocks: " + ", ".join(b.label for b in model.graph.blocks)]
    rows = []
    for f in model.vars.values():
        if f.sampled:
            shape = f"({_shape(f.space.shape)})" if f.space.ndim else ""
            rows.append(("mean", f.name, f"{samples.mean(f.name):.4g}", "", shape))
    for name in samples.series:
        rows.append(_stat_row(samples, name))
    lp = -samples.energy
    rows.append(("mean", "log potential", f"{float(lp.mean()):.6g}",
                 f"sd {float(lp.std()):.4g}", "(log p + log Z)"))
    lines_diag = _diagnostics(samples)
    if tempered is not None and any(line.startswith("warning: R-hat") for line in lines_diag):
        lines_diag.append(RHAT_HINTS[bool(tempered)])
    for family, rate in (samples.acceptance or {}).items():
        method, scale, adapt = model.methods[family]
        part = next(p for block in model.parts() for p in block if p.family == family)
        rows.append(("MH", family, f"{rate:.3f}", "accepted",
                     f"(scale {part.scale:.3g}{', adapted in burn-in' if adapt else ''})"))
    move = getattr(samples, "gradient", None)
    if move is not None:
        from ebmlang.infer.hmc import gradient_rows
        extra_rows, warn = gradient_rows(move, samples.chains * samples.draws)
        rows += extra_rows
        lines_diag += warn
    return "\n".join(lines + _table(rows, right=(2,)) + lines_diag)


RHAT_HINTS = {
    False: "hint: chains held in different modes (phases, domain walls) mix with parallel "
           "tempering: try --tempering 8 (README: Parallel tempering)",
    True: "hint: add replicas (--tempering R), raise --tempering-min while every swap rate "
          "stays above 0.05, or run longer (more --burn-in and -n)"}
SWAP_WARN = 0.05          # a neighbour pair's swap rate below this cuts the ladder in two


def tempering_summary(samples) -> str:
    """The ladder of a parallel-tempering run and each neighbour pair's swap acceptance, with
    a warning when some pair's is below SWAP_WARN: states then hardly cross that gap, and the
    b = 1 chains get little from the hotter replicas."""
    ladder = ", ".join(f"{b:.3g}" for b in samples.ladder)
    rates = np.asarray(samples.swap_acceptance, float)
    text = (f"tempering: {len(samples.ladder)} replicas per chain, inverse temperatures "
            f"{ladder} (adapted in burn-in, then fixed)\n  swap acceptance per neighbour pair: "
            + ", ".join(f"{r:.3f}" for r in rates))
    low = np.flatnonzero(~(rates >= SWAP_WARN))            # NaN (never tried) counts as low
    if len(low):
        pairs = ", ".join(f"{k}-{k + 1} ({rates[k]:.3f})" for k in low)
        text += (f"\nwarning: swap acceptance below {SWAP_WARN} between replicas {pairs}: "
                 "the ladder is cut there and the b = 1 chains may not have mixed; add "
                 "replicas (--tempering R) or raise --tempering-min")
    return text


def _diagnostics(samples) -> list[str]:
    """R-hat and bulk ESS of the energy and every stat, with a warning where R-hat > 1.01."""
    from ebmlang.infer.diagnostics import summarize, warnings_for
    if samples.chains < 2 or samples.draws < 4:
        return ["diagnostics need at least 2 chains of 4 draws"]
    rows = summarize(samples)
    table = [("", name, f"{mean:.4g}", f"R-hat {rhat:.3f}", f"bulk ESS {ess:,.0f}")
             if not (math.isnan(rhat) and math.isnan(ess)) else
             ("", name, f"{mean:.4g}", "constant", "(one value in every draw)")
             for name, mean, rhat, ess in rows]
    return ["convergence (rank-normalized split R-hat, bulk ESS)"] + _table(table, right=(2,)) \
        + warnings_for(rows)


def _stat_row(trace, name: str) -> tuple[str, ...]:
    shape = trace.stat_shape[name]
    note = f"(shape {_shape(shape)}: mean and sd averaged over elements)" if shape else ""
    return ("stat", name, f"{trace.stat_mean(name):.4g}", f"sd {trace.stat_sd(name):.4g}", note)


def as_trace(samples):
    """A `trace.Trace` of kept `Samples` (or the trace itself)."""
    from ebmlang.infer.trace import Trace
    return samples if isinstance(samples, Trace) else samples.trace()
