"""What the learner reports each epoch: the exact average log-likelihood when the states can
be enumerated, otherwise the pseudo-log-likelihood; and the data and model averages of every
declared stat."""

from __future__ import annotations

import numpy as np

from ebmlang.backends.numeric import logsumexp
from ebmlang.infer.exact import enumerate_states, state_count
from ebmlang.learn.gradient import pseudo_available, pseudo_loglik, pseudo_parts, stochastic_pseudo_loglik

MAX_METRIC_STATES = 1 << 16
MAX_METRIC_ROWS = 500   # rows the per-epoch metric looks at (it is a progress report)


class Metric:
    """`exact=False`: pseudo-LL even where the states could be enumerated (so that a sweep's
    settings are compared by one metric)."""
    def __init__(self, model, data, phases, rng, max_rows: int = MAX_METRIC_ROWS,
                 exact: bool = True):
        self.model, self.phases, self.rng = model, phases, rng
        self.data_stats, self.fixed = None, _stats_fixed(model, data.x)
        self.x = data.x[:max_rows] if data.rows > max_rows else data.x
        complete = ~np.isnan(self.x[:, model.state_ids(("var",))]).any(axis=1)
        self.x = self.x[complete]
        self.kind = None
        n_states = state_count(model)
        if exact and not phases.has_inputs and 0 < n_states <= MAX_METRIC_STATES:
            self.kind = "LL"
            self.states = enumerate_states(model)
            self.groups = _groups(model, self.states, self.x)
        elif not len(phases.latent) and pseudo_available(model):
            self.kind = "pseudo-LL"
            self.parts = phases.pl_parts or pseudo_parts(model)
        elif phases.summed is not None:
            self.kind = "pseudo-LL"
            self.visible = [p for block in model.parts() for p in block
                            if model.vars[p.family].kind == "var"]

    def evaluate(self) -> dict:
        if self.kind is None or not len(self.x):
            return {"metric": None, "value": None}
        if self.kind == "LL":
            value = exact_loglik(self.model, self.states, self.groups)
        elif not len(self.phases.latent):
            value = float(np.mean(pseudo_loglik(self.model, self.x, self.parts)))
        else:
            x = self.x.copy()
            x[:, self.phases.latent] = 0.0
            value = float(np.mean(stochastic_pseudo_loglik(
                self.model, self.phases.marginal, x, self.visible, self.rng)))
        return {"metric": self.kind, "value": value}

    def stats(self) -> dict:
        """The data and model averages of every declared stat; none for pseudo-likelihood,
        which has no model side (its gaps are the data minus the conditionals' averages)."""
        if not self.model.checked.stats or self.phases.model_states is None:
            return {}
        data = self.data_stats
        if data is None:
            data = self.model.stat_values(self.phases.rows)
            if self.fixed:              # the same every epoch: computed once
                self.data_stats = data
        chains = self.model.stat_values(self.phases.model_states)
        return {k: {"data": float(np.mean(data[k])), "model": float(np.mean(chains[k]))}
                for k in data}


def _stats_fixed(model, x: np.ndarray) -> bool:
    """Whether the data's stat averages stay the same all fit long: no stat reads a param,
    and every cell a stat reads is observed in every row (the fit fills only missing and
    latent cells, and never moves an observed one)."""
    for t in model.stat_terms:
        if t.preads or any(np.isnan(x[:, r.ids]).any() for r in t.reads):
            return False
    return True


def _groups(model, states: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For each data row, the index of its visible configuration among the states' (-1: none)."""
    vis = model.state_ids(("var",))
    keys, inverse = np.unique(states[:, vis], axis=0, return_inverse=True)
    lookup = {k.tobytes(): g for g, k in enumerate(keys)}
    rows = np.array([lookup.get(np.ascontiguousarray(r).tobytes(), -1) for r in x[:, vis]])
    return inverse.ravel(), rows


def exact_loglik(model, states: np.ndarray, groups) -> float:
    """Average exact log p(v) of the data rows, latents summed out."""
    inverse, rows = groups
    lp = model.log_potential(states)
    log_z = logsumexp(lp)
    per = np.full(inverse.max() + 1, -np.inf)
    np.logaddexp.at(per, inverse, lp)
    return float(np.mean(per[rows] - log_z)) if np.all(rows >= 0) else float("-inf")
