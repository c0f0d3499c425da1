"""Numeric helpers the layers above share: log-sum-exp, softmax, broadcasting term values."""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray, axis=None) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis) if axis is not None else out.item()


def softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    w = np.exp(logits - top)
    return w / w.sum(axis=-1, keepdims=True)


def ensure_shape(values, chains: int, n: int) -> np.ndarray:
    """Broadcast a term's values to (chains, instances)."""
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (chains, n))
