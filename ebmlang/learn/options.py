"""fit's options (`FitOptions`): the learner, its schedule, the model phase's sampler and
what each method takes, checked before anything runs (a bad value is a user error)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmlang.errors import UserError

METHODS = ("pcd", "cd", "pl", "exact", "sm", "nce")


@dataclass
class FitOptions:
    method: str = "pcd"
    epochs: int = 20
    batch_size: int = 10
    lr: float | None = None
    chains: int = 100
    k: int = 1
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    noise: float = 0.0              # sm: denoising score matching with this noise sd (0: plain sm)
    schedule: str = "linear"        # learning rate: "linear" decays to 0 over the run; "constant"
    backend: str = "auto"           # fused (fused.py) where every term is a contraction, else numba
                                    # per part unless einsum serves it; numba; numpy (the reference)
    seed: int = 0
    tempering: int = 1              # pcd: parallel-tempering replicas per chain (1: none)
    tempering_min: float | None = None   # the hottest replica's inverse temperature
    progress: object = None         # None: quiet; a callable(line) receives a line per epoch
    sampler: str = "gibbs"          # pcd's model phase: "gibbs" sweeps, or "langevin" chains
    langevin_steps: int = 20        # (learn/langevin.py): steps per minibatch, and their
    step_size: float | None = None  # size (None: 0.1 x the data's smallest sd)
    noise_ratio: int = 5            # nce: noise rows per data row

    def check(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown method '{self.method}'; choose one of {', '.join(METHODS)}")
        for name in ("epochs", "batch_size", "chains", "k", "noise_ratio"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise UserError(f"{name.replace('_', '-')} must be an integer >= 1, got {v}")
        if self.lr is not None and not (self.lr > 0 and np.isfinite(self.lr)):
            raise UserError(f"the learning rate must be a positive number, got {self.lr}")
        if self.backend not in ("auto", "numba", "numpy"):
            raise UserError(f"unknown backend '{self.backend}'; choose auto, numba or numpy")
        if self.schedule not in ("linear", "constant"):
            raise UserError(f"unknown schedule '{self.schedule}'; choose linear or constant")
        from ebmlang.infer.tempering import check_options
        check_options(self.tempering, self.tempering_min)
        if self.tempering != 1 and self.method != "pcd":
            raise UserError(f"tempering runs pcd's persistent chains; method {self.method} has "
                            "none (use --method pcd)")
        if self.sampler not in ("gibbs", "langevin"):
            raise UserError(f"unknown sampler '{self.sampler}'; choose gibbs or langevin")
        if self.sampler == "langevin" and (self.method != "pcd" or self.tempering != 1):
            raise UserError("--sampler langevin is pcd's model phase: use --method pcd, "
                            "without --tempering")
        if int(self.langevin_steps) != self.langevin_steps or self.langevin_steps < 1:
            raise UserError(f"langevin-steps must be an integer >= 1, got {self.langevin_steps}")
        if self.step_size is not None and not (self.step_size > 0 and np.isfinite(self.step_size)):
            raise UserError(f"the step size must be a positive number, got {self.step_size}")
        if self.weight_decay < 0:
            raise UserError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.noise and self.method != "sm":
            raise UserError(f"--noise is denoising score matching (--method sm); method "
                            f"{self.method} takes none")
