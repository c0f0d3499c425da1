"""`fit --method nce --noise-ratio NU`: the noise rows per data row, against the closed form of
the Gaussian (examples/gaussian.ebm on draws of N(2, 0.5^2): eta1 = 8, eta2 = -2)."""

from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.errors import UserError
from ebmlang.learn.nce import NCE

ROOT = Path(__file__).resolve().parent.parent


def test_noise_ratio_sets_the_noise_rows_and_both_recover_the_gaussian():
    """20,000 rows: maximum likelihood has standard errors about 0.09 (eta1) and 0.02
    (eta2); NCE with noise matched to the data at nu = 1 has at most about twice ML's
    variance (Gutmann and Hyvarinen 2012, fig. 4), so se <= 0.13 and 0.03: 7% (0.56 and
    0.14) is over 4 standard errors; nu = 8 is nearly ML."""
    x = np.random.default_rng(7).normal(2.0, 0.5, 20000)
    for nu in (1, 8):
        model = ebmlang.load(str(ROOT / "examples" / "gaussian.ebm"))
        rows = np.zeros((len(x), model.checked.n_state))
        rows[:, model.state_ids()] = x[:, None]
        assert len(NCE(model, rows, np.random.default_rng(0), nu).rows) == (1 + nu) * len(x)
        model.fit({"x": x}, method="nce", seed=0, noise_ratio=nu)
        assert abs(model.params["eta1"] / 8.0 - 1) < 0.07, (nu, model.params["eta1"])
        assert abs(model.params["eta2"] / -2.0 - 1) < 0.07, (nu, model.params["eta2"])


def test_noise_ratio_must_be_a_positive_integer():
    model = ebmlang.load(str(ROOT / "examples" / "gaussian.ebm"))
    with pytest.raises(UserError, match="noise-ratio must be an integer >= 1"):
        model.fit({"x": np.zeros(5)}, method="nce", noise_ratio=0)
