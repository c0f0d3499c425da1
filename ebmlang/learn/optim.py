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


def make_optimizer(opts, n: int):
    lr = opts.lr if opts.lr is not None else DEFAULT_LR.get(opts.optimizer, 0.01)
    if opts.optimizer == "adam":
        return Adam(n, lr)
    if opts.optimizer == "sgd":
        if not 0 <= opts.momentum < 1:
            raise UserError(f"momentum must be in [0, 1), got {opts.momentum}")
        return SGD(n, lr, opts.momentum)
    raise UserError(f"unknown optimizer '{opts.optimizer}'; choose adam or sgd")
