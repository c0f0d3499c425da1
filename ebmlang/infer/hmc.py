"""Gradient-based updates of real families: HMC (`sampler x : hmc(steps=S)`) and MALA
(`sampler x : mala`, HMC with one leapfrog step, which is exactly the Metropolis-adjusted
Langevin algorithm).

Every family marked hmc or mala moves jointly, as one block over all its variables (and over
all such families together), conditional on the others: inside the sweep, after the Gibbs /
MH parts of the other families. A move is S leapfrog steps of size eps along dF/dx
(`backends.xgrad`), identity mass matrix, then a Metropolis correction on the joint energy
H = -F(x) + |p|^2 / 2, one accept per chain. The step size is shared by the chains and set
by dual averaging (Hoffman and Gelman 2014, algorithm 5: gamma 0.05, t0 10, kappa 0.75)
toward mean acceptance 0.8 (HMC) or 0.57 (MALA) during burn-in only, then frozen at its
averaged value; each move's step is jittered uniformly in [0.8, 1.2] eps so that no fixed
trajectory length resonates with a period of the target. A move whose energy error exceeds
1000 (Stan's threshold) or is not finite is a divergence, rejected and counted.

HMC is also the default of `sample` and of fit's PCD / CD chains for a real family with no
`sampler` line whose conditional is not Gaussian, where its gradient exists (`default_hmc`,
`with_default_hmc`), after the family's random-walk MH update in each sweep (a chain in the
tail of a quartic, where every step the bulk allows diverges, comes back by MH); the other
tasks keep random-walk MH alone for it. The trajectory runs as one compiled call where the gradient
compiles (`xgrad.trajectory`), else as the numpy loop below; both do the same arithmetic.
"""

from __future__ import annotations

import copy
import math

from typing import NamedTuple

import numpy as np

from ebmlang.backends.lanes import each_group

TARGET = {"hmc": 0.8, "mala": 0.57}
DIVERGENCE = 1000.0
DEFAULT_STEPS = 10
STUCK_WINDOW = 20     # moves; a chain at acceptance 0.5 refuses 20 in a row once in a million


class HMCInfo(NamedTuple):
    acceptance: float      # mean over chains of min(1, exp(-dH)) for this move
    divergent: int         # chains whose move diverged


class DualAveraging:
    """Hoffman and Gelman's dual averaging of log eps toward a target mean acceptance."""

    def __init__(self, eps0: float, target: float):
        self.mu, self.target = math.log(10 * eps0), target
        self.hbar, self.log_eps, self.log_bar, self.m = 0.0, math.log(eps0), 0.0, 0

    def update(self, accept: float) -> float:
        self.m += 1
        m, t0 = self.m, 10.0
        self.hbar += ((self.target - accept) - self.hbar) / (m + t0)
        self.log_eps = self.mu - math.sqrt(m) / 0.05 * self.hbar
        w = m ** -0.75
        self.log_bar = w * self.log_eps + (1 - w) * self.log_bar
        return math.exp(self.log_eps)

    def final(self) -> float:
        return math.exp(self.log_bar) if self.m else math.exp(self.log_eps)


class GradientMove:
    """The joint HMC / MALA move of the real families in `families` (init once, then step)."""

    def __init__(self, model, families, kind: str, steps: int, burn_in: int):
        from ebmlang.backends.xgrad import compiled_gradient
        self.grad = compiled_gradient(model, families)
        self.ids = np.concatenate([np.arange(model.vars[f].offset,
                                             model.vars[f].offset + model.vars[f].space.size)
                                   for f in sorted(families)])
        self.kind, self.steps, self.burn_in = kind, steps if kind == "hmc" else 1, burn_in
        self.compiled = hasattr(self.grad, "trajectory")   # else the numpy leapfrog loop
        self.eps, self.moves = 0.25, 0
        self.adapt = DualAveraging(self.eps, TARGET[kind])
        self.accept_sum, self.kept, self.divergent = 0.0, 0, 0
        self.tally = [0.0, 0, 0]      # every move's acceptance, count, divergences (`take_tally`)
        self.moved, self.window = None, 0   # per chain: accepted a move in this window of moves
        self.unmoved = None           # chains that accepted none in the last whole window

    def _energy(self, x, theta):
        return self.grad.log_potential(x, theta)

    def step(self, x: np.ndarray, theta: np.ndarray, rng: np.random.Generator,
             clamp: np.ndarray | None = None) -> HMCInfo:
        """One move of every chain, in place; adapts eps while in burn-in."""
        ids, chains = self.ids, x.shape[0]
        if clamp is not None:
            free = np.isnan(clamp[:, ids]).astype(float)
        elif getattr(self, "_ones", np.empty((0, 0))).shape != (chains, len(ids)):
            free = self._ones = np.ones((chains, len(ids)))
        else:
            free = self._ones
        eps = self.eps * rng.uniform(0.8, 1.2)
        f0 = self._energy(x, theta)
        p = rng.standard_normal((chains, len(ids))) * free
        k0 = 0.5 * (p * p).sum(axis=1)
        y = x.astype(float)
        g = self.grad.gradient(y, theta)[:, ids] * free
        with np.errstate(invalid="ignore", over="ignore"):
            if self.compiled:           # the same steps in one compiled call
                self.grad.trajectory(y, theta, p, np.ascontiguousarray(g), eps, self.steps,
                                     ids, np.ascontiguousarray(free))
            for s in range(0 if self.compiled else self.steps):
                p = p + 0.5 * eps * g
                y[:, ids] = y[:, ids] + eps * p
                g = self.grad.gradient(y, theta)[:, ids] * free
                p = p + 0.5 * eps * g
            dh = (-self._energy(y, theta) + 0.5 * (p * p).sum(axis=1)) - (-f0 + k0)
        bad = ~np.isfinite(dh) | (dh > DIVERGENCE)
        dh = np.where(bad, np.inf, dh)
        alpha = np.exp(np.minimum(0.0, -dh))
        accept = np.log(rng.random(len(dh))) < -dh
        x[accept] = y[accept]          # y is x outside the moved columns
        self.moves += 1
        info = HMCInfo(float(alpha.mean()), int(bad.sum()))
        self.tally = [self.tally[0] + info.acceptance, self.tally[1] + 1,
                      self.tally[2] + info.divergent]
        self._count_stuck(accept)
        if self.moves <= self.burn_in:
            self.eps = self.adapt.update(info.acceptance)
            if self.moves == self.burn_in:
                self.eps = self.adapt.final()
        else:
            self.accept_sum += float(accept.mean())
            self.kept += 1
            self.divergent += info.divergent
        return info

    def _count_stuck(self, accept: np.ndarray) -> None:
        """Over windows of STUCK_WINDOW moves of the same chains: how many accepted none."""
        if self.moved is None or self.moved.shape != accept.shape:
            self.moved, self.window = accept.copy(), 1
        else:
            self.moved |= accept
            self.window += 1
        if self.window == STUCK_WINDOW:
            self.unmoved, self.moved = int((~self.moved).sum()), None

    def take_tally(self) -> dict:
        """Since the last call (fit's epochs): the mean acceptance, the divergences, the moves
        and the step; and `unmoved`, the chains that accepted none of the last STUCK_WINDOW
        moves (None before that many; meaningful where the same chains move each time, as
        PCD's persistent ones)."""
        total, n, divergent = self.tally
        self.tally = [0.0, 0, 0]
        return {"kind": self.kind, "acceptance": total / n if n else float("nan"),
                "step": self.eps, "divergent": divergent, "moves": n, "unmoved": self.unmoved}

    @property
    def acceptance(self) -> float:
        return self.accept_sum / self.kept if self.kept else float("nan")


def default_hmc(model) -> list[str]:
    """The families `sample` and fit's chains move by HMC without a `sampler` line: real,
    undeclared, the conditional not Gaussian, and d log p / dx exists
    (`xgrad.gradient_why_not`). Every other task (tempering, map, logz, marginals) runs no
    gradient moves and samples them by random-walk MH, their `methods` entry."""
    why = getattr(model, "gradient_why", {})
    return [f for f, w in why.items() if w is None and model.methods[f][0] == "mh"
            and f not in model.checked.samplers]


def is_default(model, family: str) -> bool:
    return family in default_hmc(model) or (
        model.methods[family][0] == "hmc" and family not in model.checked.samplers)


def method_text(model, family: str) -> str:
    """What `ebmlang check` says samples a non-Gibbs family, and why."""
    method, scale, adapt = model.methods[family]
    if is_default(model, family):
        method, scale = "hmc", DEFAULT_STEPS
    if method in TARGET:
        from ebmlang.backends.xgrad import numpy_reason
        why = numpy_reason(model, [family])
        grad = "gradient compiled by numba" if why is None else f"gradient in numpy: {why}"
        text = (f"HMC, {int(scale)} leapfrog steps" if method == "hmc" else "MALA") + \
            f", joint over the family, step size by dual averaging in burn-in (target " \
            f"acceptance {TARGET[method]}), {grad}"
        if is_default(model, family):
            text += ("; the default for a real family whose conditional is not Gaussian, "
                     "where d log p / dx exists, after a random-walk MH update of the family "
                     "(MH alone, scale adapted in burn-in, under --tempering and in map, logz "
                     "and marginals)")
        return text
    text = "random-walk MH, " + ("scale adapted in burn-in" if adapt else f"scale {scale:g}")
    why = getattr(model, "gradient_why", {}).get(family)
    return text + (f" (not HMC: {why})" if why else "")


def with_default_hmc(model):
    """The model `sample` runs: its `default_hmc` families marked hmc (DEFAULT_STEPS leapfrog
    steps, the step adapted in burn-in), or the model itself when it has none. A shallow
    copy, made once: params, kernels and terms are shared, parts are built again."""
    fams = default_hmc(model)
    if not fams:
        return model
    twin = model.__dict__.get("_hmc_twin")
    if twin is None:
        import copy
        twin = model._hmc_twin = copy.copy(model)
        twin.methods = dict(model.methods, **{f: ("hmc", float(DEFAULT_STEPS), True)
                                              for f in fams})
        twin._parts = twin._numba_parts = twin._hmc_twin = None
    twin.params = model.params
    return twin


def gradient_families(model) -> dict[str, tuple[str, int]]:
    """family -> (hmc | mala, leapfrog steps) for the families sampled by gradient moves."""
    return {f: (m, int(s)) for f, (m, s, _) in model.methods.items() if m in TARGET}


def with_gradient_moves(model, step, burn_in: int):
    """`step` followed by one joint gradient move of the hmc / mala families (None: none).
    All such families share one move; its kind is hmc if any of them asks for hmc."""
    fams = gradient_families(model)
    if not fams:
        return step, None
    kind = "hmc" if any(m == "hmc" for m, _ in fams.values()) else "mala"
    steps = max(s for m, s in fams.values() if m == kind)
    move = GradientMove(model, fams, kind, steps, burn_in)

    def sweep(parts, x, theta, rng, clamp=None):
        rest = [b for b in ([p for p in block if p.method not in TARGET] for block in parts) if b]
        if rest:
            step(rest, x, theta, rng, clamp)
        for own, rows, r in each_group(rng):       # chain groups: each its own move and eps
            mine = move if own is None else own(move, _unstarted_copy)
            mine.step(x[rows], theta, r, None if clamp is None else clamp[rows])
        return x
    return sweep, move


def fit_moves(model, step):
    """`with_gradient_moves` for fit's chains (PCD's persistent ones, CD's, the data phase's
    clamped ones): the step size keeps adapting by dual averaging at every move, never frozen,
    since each update of the params changes the density the chains follow (a step fitted to
    the initial params can leave the leapfrog unstable once the precision has grown, and the
    chains frozen); each move at its step leaves the current model invariant."""
    return with_gradient_moves(model, step, math.inf)


def _unstarted_copy(move: GradientMove) -> GradientMove:
    """A chain group's own move (the compiled gradient shared), before any step."""
    out = copy.copy(move)
    out.adapt = copy.copy(move.adapt)
    return out


LOW_ACCEPT = 0.4          # a mean acceptance below this after burn-in is warned about


def gradient_rows(move: GradientMove, kept: int):
    """The summary rows of a gradient move (acceptance, step size, divergences), and the
    warnings: divergences (the draws may be biased where the density is stiff) or a low
    acceptance (the adaptation did not reach its target)."""
    name = ", ".join(sorted(move.grad.families))
    why = getattr(move.grad, "why_numpy", None)
    rows = [(move.kind.upper(), name, f"{move.acceptance:.3f}", "accepted",
             f"(step {move.eps:.3g}, {move.steps} leapfrog, adapted in burn-in; "
             f"{move.divergent} divergent; gradient "
             f"{'numba' if why is None else 'numpy: ' + why})")]
    warn = []
    if move.divergent:
        warn.append(f"warning: {move.divergent} divergent {move.kind} moves after burn-in "
                    f"(energy error > {DIVERGENCE:g}): the draws of {name} may be biased; "
                    "lengthen --burn-in or reparameterize")
    if move.acceptance < LOW_ACCEPT:
        warn.append(f"warning: {move.kind} acceptance {move.acceptance:.2f} is low: the step "
                    "size did not adapt; lengthen --burn-in")
    return rows, warn
