"""What the sample summary, the diagnostics and the trace plots need of the kept draws,
accumulated one draw at a time: the log-potential and each stat's element mean per draw, each
stat's per-element mean and variance (Welford, merged a draw's chains at a time), each
family's running sum, and the last state of every chain.

So `ebmlang sample` never holds the draws themselves: a million-spin model sampled for a
thousand draws needs a few arrays of the state's size, not a thousand of them. A `Samples`
that kept its draws gives the same `Trace` through `Samples.trace()`.
"""

from __future__ import annotations

import numpy as np


class Trace:
    """Per-draw series (chains, draws) and running moments of a run's kept draws."""

    def __init__(self, model, chains: int, draws: int, ids: np.ndarray):
        self.model, self.ids = model, ids
        self.chains, self.draws = chains, 0
        self.energy = np.zeros((chains, draws))             # -log p - log Z per kept draw
        self.series = {n: np.zeros((chains, draws)) for n in model.checked.stats}
        self.stat_shape = {n: s.space.shape if s.index is not None else ()
                           for n, s in model.checked.stats.items()}
        self._moments: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
        self._sums = {f.name: 0.0 for f in model.vars.values() if f.sampled}
        self.last: np.ndarray | None = None                 # (chains, n_state)
        self.acceptance: dict = {}
        self.gradient = None                                # the HMC / MALA move, if any

    def add(self, k: int, xs: np.ndarray) -> None:
        """Draws k, k + 1, ...: the states xs (chains, draws, n_state) of every chain."""
        c, b, n = xs.shape
        x = xs.reshape(c * b, n).astype(np.float64)
        self.energy[:, k:k + b] = -self.model.log_potential(x).reshape(c, b)
        for name, vals in self.model.stat_values(x).items():
            flat = vals.reshape(c * b, -1)
            self.series[name][:, k:k + b] = flat.mean(axis=1).reshape(c, b)
            self._moments[name] = _merge(self._moments.get(name), flat)
        for f in self.model.vars.values():
            if f.sampled:
                self._sums[f.name] += float(xs[:, :, f.offset:f.offset + f.space.size]
                                            .sum(dtype=np.float64))
        self.last = xs[:, -1].astype(np.float64)
        self.draws = max(self.draws, k + b)

    def mean(self, family: str) -> float:
        """A family's mean over every draw, chain and element."""
        f = self.model.vars[family]
        return self._sums[family] / max(self.chains * self.draws * f.space.size, 1)

    def stat_mean(self, name: str) -> float:
        n, mean, _ = self._moments[name]
        return float(mean.mean())

    def stat_sd(self, name: str) -> float:
        """The standard deviation over draws and chains of each element, averaged over the
        elements (population sd, as numpy's std)."""
        n, _, m2 = self._moments[name]
        return float(np.sqrt(np.maximum(m2 / n, 0.0)).mean())

    def summary(self):
        """`Samples.summary()` of the series kept here: the energy and each stat's element
        mean per draw."""
        from ebmlang.infer.diagnostics import summary_table
        return summary_table({"energy": self.energy, **self.series})

    def __repr__(self) -> str:
        from ebmlang.reprs import trace_repr
        return trace_repr(self)

    def _repr_html_(self) -> str:
        from ebmlang.reprs import trace_html
        return trace_html(self)

    def finish(self, acceptance: dict | None = None, gradient=None) -> Trace:
        self.energy = self.energy[:, :self.draws]
        self.series = {n: s[:, :self.draws] for n, s in self.series.items()}
        self.acceptance = acceptance or {}
        self.gradient = gradient
        return self


def _merge(acc, batch: np.ndarray):
    """Welford's running (count, mean, M2) per column, with the rows of `batch` merged in
    (Chan, Golub and LeVeque's pairwise update)."""
    nb = batch.shape[0]
    mb = batch.mean(axis=0)
    m2b = ((batch - mb) ** 2).sum(axis=0)
    if acc is None:
        return nb, mb, m2b
    na, ma, m2a = acc
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), m2a + m2b + delta ** 2 * (na * nb / n)
