"""The params of a compiled model: one flat vector theta, read and assigned by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ebmlang.errors import UserError
from ebmlang.frontend import ast as A
from ebmlang.frontend.exprs import eval_static

if TYPE_CHECKING:
    from ebmlang.frontend.check import CheckedModel


class Params:
    """The model's params by name: numpy views into one flat vector, readable and assignable."""

    def __init__(self, model: CheckedModel, theta: np.ndarray):
        self._model = model
        self.theta = theta

    def __getitem__(self, name: str) -> np.ndarray:
        p = self._model.params.get(name)
        if p is None:
            raise KeyError(name)
        return self.theta[p.offset:p.offset + p.size].reshape(p.space.shape)

    def __setitem__(self, name: str, value) -> None:
        view = self[name]
        arr = np.asarray(value, dtype=float)
        if arr.shape != view.shape:
            raise ValueError(f"param '{name}' has shape {view.shape}, got {arr.shape}")
        view[...] = arr

    def update(self, values=None) -> None:
        """Assign every (name, value) of a mapping, each checked as by `params[name] = value`;
        None changes nothing."""
        for name, value in (values or {}).items():
            self[name] = value

    def __iter__(self):
        return iter(self._model.params)

    def __len__(self):
        return len(self._model.params)

    def __contains__(self, name):
        return name in self._model.params

    def keys(self):
        return self._model.params.keys()

    def items(self):
        return [(k, self[k]) for k in self]

    def to_dict(self) -> dict[str, np.ndarray]:
        return {k: self[k].copy() for k in self}

    def __repr__(self) -> str:
        from ebmlang.reprs import params_repr
        return params_repr(self)

    def _repr_html_(self) -> str:
        from ebmlang.reprs import params_html
        return params_html(self)


def init_params(model: CheckedModel, seed: int = 0) -> np.ndarray:
    """The initial flat param vector: each param's INIT (a number, an expression of its
    indices, normal(mu, sd) or uniform(a, b), drawn with this seed)."""
    theta = np.zeros(model.n_theta)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        cols = dict(zip(p.space.names, p.space.columns()))
        env = model.env("in a param's initial value").bind(**cols)
        init = p.init
        n = p.space.size
        if isinstance(init, A.Call) and init.func in ("normal", "uniform"):
            if len(init.args) != 2:
                raise UserError(f"{init.func}(a, b) takes 2 arguments", init.span)
            a, b = (np.broadcast_to(np.asarray(eval_static(x, env), float), (n,)) for x in init.args)
            if init.func == "normal":
                if np.any(b < 0):
                    raise UserError("normal(mu, sd) needs sd >= 0", init.span)
                vals = rng.normal(a, b)
            else:
                if np.any(b < a):
                    raise UserError("uniform(a, b) needs a <= b", init.span)
                vals = rng.uniform(a, b)
        else:
            vals = np.broadcast_to(np.asarray(eval_static(init, env), float), (n,))
        if not np.all(np.isfinite(vals)):
            raise UserError(f"the initial value of '{p.name}' is not finite", init.span)
        theta[p.offset + p.space.store] = vals
    return theta
