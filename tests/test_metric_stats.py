"""The per-epoch stat averages: the data side is computed once when it cannot change."""

import numpy as np

import ebmlang
from ebmlang.learn.metrics import _stats_fixed

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_data_stat_average_is_the_data_mean_every_epoch():
    """examples/rbm.ebm's stat ink = sum(i) v[i] / N reads only observed cells: each epoch's
    data average is computed once and equals the data's own mean (exact arithmetic of the
    same sum, 1e-12), while the model side is recomputed from the chains."""
    model = ebmlang.load(str(ROOT / "examples" / "rbm.ebm"), N=6, M=3)
    v = (np.random.default_rng(0).random((40, 6)) < 0.3).astype(float)
    x = np.full((40, model.checked.n_state), np.nan)    # h latent: never observed
    off = model.vars["v"].offset
    x[:, off:off + 6] = v
    assert _stats_fixed(model, x)
    calls, real = [], model.stat_values
    model.stat_values = lambda states: calls.append(len(states)) or real(states)
    fit = model.fit({"v": v}, method="pcd", epochs=3, seed=1, chains=5)
    assert calls.count(40) == 1 and calls.count(5) == 3  # data once, the chains every epoch
    seen = [e["stats"]["ink"] for e in fit.history]
    for s in seen:
        assert abs(s["data"] - v.mean()) < 1e-12
    assert len({s["model"] for s in seen}) > 1          # the chains move


def test_stats_not_fixed_with_missing_cells_or_params():
    model = ebmlang.compile("""
var v[i in 0..3] : bool
param a = 0.5
factor f[i in 0..3] : a * v[i]
stat s = sum(i in 0..3) v[i]
stat t = a * v[0]
""")
    full = np.zeros((5, model.checked.n_state))
    assert not _stats_fixed(model, full)                 # t reads the param a
    plain = ebmlang.compile("var v[i in 0..3] : bool\nparam a = 0.5\n"
                            "factor f[i in 0..3] : a * v[i]\nstat s = sum(i in 0..3) v[i]\n")
    x = np.zeros((5, plain.checked.n_state))
    assert _stats_fixed(plain, x)
    x[2, 1] = np.nan                                     # a missing cell the fit fills
    assert not _stats_fixed(plain, x)
