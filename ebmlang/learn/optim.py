"""Optimizers for gradient ascent on the (pseudo-)log-likelihood: Adam and SGD with momentum."""

from __future__ import annotations

import numpy as np

from ebmlang.errors import UserError

DEFAULT_LR = {"adam": 0.02, "sgd": 0.05}


class Adam:
    def __init__(self, n: int, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = np.zeros(n), np.zeros(n), 0

    def step(self, grad: np.ndarray) -> np.ndarray:
        """The change to apply to the params (ascent along `grad`)."""
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        mhat = self.m / (1 - self.b1 ** self.t)
        vhat = self.v / (1 - self.b2 ** self.t)
        return self.lr * mhat / (np.sqrt(vhat) + self.eps)


class SGD:
    def __init__(self, n: int, lr: float, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.velocity = np.zeros(n)

    def step(self, grad: np.ndarray) -> np.ndarray:
        if not self.momentum:           # the same numbers, one product fewer
            self.velocity = self.lr * grad
        else:
            self.velocity = self.momentum * self.velocity + self.lr * grad
        return self.velocity


# A param bound below which one step cannot overflow a double (max 1.8e308) by a wide margin.
SAFE_BOUND = 1e300


class ProvedSteps:
    """Plain SGD steps (no momentum, no weight decay) that provably keep every param finite,
    so the fit needs neither a rollback copy nor a finiteness pass per update. With finite
    params and |gap| <= `gap_bound` elementwise (a fused binary RBM's gaps are in [-1, 1]),
    theta + lr * gap is finite while max |theta| + lr * gap_bound < SAFE_BOUND; a running
    upper bound on max |theta| (grown by lr * gap_bound per step, recomputed exactly when it
    nears the limit) decides this with one scalar sum. `apply` returns False, leaving theta
    alone, when it cannot prove the step safe: the caller then takes the checked path."""

    def __init__(self, opts, theta: np.ndarray, gap_bound: float | None, checked: bool):
        self.on = (gap_bound is not None and not checked and opts.optimizer == "sgd"
                   and not opts.momentum and not opts.weight_decay)
        self.gap_bound, self.bound = gap_bound, float("inf")

    def apply(self, theta: np.ndarray, gap: np.ndarray, lr: float, total: np.ndarray) -> bool:
        """theta += lr * gap (the same numbers as `SGD.step`) and total += gap, in one pass,
        where theta provably stays finite (else neither is touched)."""
        if not self.on:
            return False
        grow = lr * self.gap_bound
        if not self.bound + grow < SAFE_BOUND:
            self.bound = float(np.max(np.abs(theta))) if len(theta) else 0.0
            if not self.bound + grow < SAFE_BOUND:       # also False for a NaN bound
                self.bound = float("inf")                # the caller's step changes theta
                return False
        from ebmlang.backends.fused_pcd import sgd_step_sum
        sgd_step_sum(theta, gap, float(lr), total)
        self.bound += grow
        return True


def make_optimizer(opts, n: int):
    lr = opts.lr if opts.lr is not None else DEFAULT_LR.get(opts.optimizer, 0.01)
    if opts.optimizer == "adam":
        return Adam(n, lr)
    if opts.optimizer == "sgd":
        if not 0 <= opts.momentum < 1:
            raise UserError(f"momentum must be in [0, 1), got {opts.momentum}")
        return SGD(n, lr, opts.momentum)
    raise UserError(f"unknown optimizer '{opts.optimizer}'; choose adam or sgd")
