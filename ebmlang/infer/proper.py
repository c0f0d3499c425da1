"""Is every exact Gaussian conditional proper (a negative x^2 coefficient) at the params?

A real family whose local log-potential is quadratic in x is sampled by an exact Gaussian
update; its x^2 coefficient a depends on the params (and perhaps on other variables), so a
model that compiles can still be improper at its initial or fitted params. The errors point at
the factor that carries the x^2 term, in `ebmlang check` as in `sample`, `map` and `fit`.
"""

from __future__ import annotations

import numpy as np

from ebmlang.errors import UserError


def improper(model, x, families=None) -> UserError | None:
    """A located error naming a Gaussian conditional (of `families`, default all) whose x^2
    coefficient is not negative on the states x at the current params, or None."""
    if not any(m[0] == "gaussian" for m in model.methods.values()):
        return None
    from ebmlang.backends.runtime import local_logits
    for block in model.parts():
        for part in block:
            if part.method != "gaussian" or (families is not None and part.family not in families):
                continue
            with np.errstate(all="ignore"):
                ell = local_logits(part, x, model.params.theta)
            a = 0.5 * (ell[..., 2] + ell[..., 0]) - ell[..., 1]
            if np.any(~(a < 0)):
                c, m = np.argwhere(~(a < 0))[0]
                name = model.ground_names()[int(np.searchsorted(model.state_ids(), part.ids[m]))]
                message = (f"the conditional of {name} is improper at these params: its x^2 "
                           f"coefficient is {a[c, m]:.4g} >= 0, so its density grows without "
                           "bound (an energy needs +x^2, a factor -x^2)")
                form = model.real_forms.get(part.family)
                err = UserError(message, form.span if form is not None else None)
                return err.with_source(model.checked.source)
    return None


def check_proper(model, x, families=None) -> None:
    """Raise the located error of `improper`, if any."""
    err = improper(model, x, families)
    if err is not None:
        raise err


def check_initial(model) -> None:
    """`ebmlang check`: refuse a Gaussian conditional that is improper at the model's own
    params. Only families whose x^2 coefficient reads no other variable are decided here (the
    verdict then holds for every state); the others are checked when sampling starts."""
    decided = {name for name, form in model.real_forms.items()
               if form.kind == "gaussian" and not form.quad_reads_vars
               and model.methods[name][0] == "gaussian"}
    err = improper(model, np.zeros((1, model.checked.n_state)), decided) if decided else None
    if err is not None:
        raise err.with_notes("these are the model's initial params: change the param's "
                             "initial value (sample and fit also take --params P.json)")
