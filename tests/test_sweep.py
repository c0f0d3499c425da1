"""Fit sweeps (`fit --grid ... --seeds N`, `Model.fit_grid`): every fit is the single fit of its
setting and seed, bit for bit; the metric of each is the exact log-likelihood (checked against
the RBM's closed form, the hidden units summed out analytically); the table's mean, spread and
best are those of the per-seed values; user errors name the flag."""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.cli.app import main
from ebmlang.infer import groups

ROOT = Path(__file__).resolve().parent.parent
RBM = ROOT / "examples" / "rbm.ebm"
N = 4


def _rows(path: Path, n: int, seed: int) -> Path:
    """n rows of N bits: two prototypes with 10% of the bits flipped (a structured target, so
    that the settings differ)."""
    rng = np.random.default_rng(seed)
    proto = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    x = proto[rng.integers(0, 2, n)] ^ (rng.random((n, N)) < 0.1)
    path.write_text(",".join(f"v[{i}]" for i in range(N)) + "\n" +
                    "".join(",".join(map(str, r)) + "\n" for r in x))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    return _rows(d / "train.csv", 80, 1), _rows(d / "valid.csv", 40, 2)


def rbm_loglik(params: dict, path: Path) -> float:
    """Average exact log p(v) of the rows of a CSV: log p(v) = b.v + sum_j softplus(c_j +
    (v W)_j) - log Z, Z summed over all 2^N visible states."""
    x = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    W, b, c = (np.asarray(params[k], float) for k in "Wbc")

    def free(v):
        return v @ b + np.logaddexp(0.0, c + v @ W).sum(axis=1)
    states = np.array(list(itertools.product([0.0, 1.0], repeat=N)))
    return float(np.mean(free(x)) - np.logaddexp.reduce(free(states)))


GRID = {"lr": [0.02, 0.1], "M": [1, 2]}


@pytest.fixture(scope="module")
def swept(files):
    model = ebmlang.load(RBM, N=N, M=1)
    return model.fit_grid(files[0], GRID, seeds=2, seed=3, valid=files[1], epochs=4,
                          batch_size=10, chains=20)


def test_every_fit_is_the_single_fit_of_its_setting_and_seed(swept, files):
    """Seed k of every setting is the k-th child of SeedSequence(3) (common to the settings)."""
    streams = groups.seeds(3, 2)
    assert len(swept.fits) == 8
    for setting, k, got in swept.fits:
        s = dict(setting.texts)
        model = ebmlang.load(RBM, N=N, M=int(s["M"]))
        model.fit(str(files[0]), lr=float(s["lr"]), epochs=4, batch_size=10, chains=20,
                  seed=streams[k])
        for name, value in model.params.items():
            assert np.array_equal(got.params[name], value), (setting.label, k, name)


def test_the_metrics_are_the_exact_log_likelihoods(swept, files):
    """Exact to rounding: the fit's final LL (all 80 training rows) and the held-out LL (40
    rows) against the closed form at the fitted params."""
    for _, _, got in swept.fits:
        assert got.metric == "LL" and got.valid_metric == "LL"
        assert got.value == pytest.approx(rbm_loglik(got.params, files[0]), abs=1e-9)
        assert got.valid == pytest.approx(rbm_loglik(got.params, files[1]), abs=1e-9)


def test_the_table_ranks_by_the_held_out_mean(swept):
    assert swept.metric == "valid LL" and swept.higher
    for row in swept.rows:
        vals = [o.valid for s, _, o in swept.fits if s is row.setting]
        assert row.mean == pytest.approx(np.mean(vals)) and row.lo == min(vals)
        assert row.std == pytest.approx(np.std(vals, ddof=1)) and row.hi == max(vals)
    means = [r.mean for r in swept.rows]
    assert means == sorted(means, reverse=True)
    assert swept.best is swept.rows[0] and sum(r.best for r in swept.rows) == 1
    assert "<- best" in swept.table().splitlines()[1]


def test_one_seed_is_the_seed_itself(files):
    """A sweep of one seed fits as `fit --seed S`: the same params."""
    model = ebmlang.load(RBM, N=N, M=2)
    res = model.fit_grid(files[0], {"k": [1, 2]}, seeds=1, seed=5, epochs=2, chains=10)
    for setting, _, got in res.fits:
        ref = ebmlang.load(RBM, N=N, M=2)
        ref.fit(str(files[0]), k=int(dict(setting.texts)["k"]), epochs=2, chains=10, seed=5)
        assert all(np.array_equal(got.params[n], v) for n, v in ref.params.items())
    # the sweep leaves the model's params where they started
    assert np.array_equal(model.params.theta, ebmlang.load(RBM, N=N, M=2).params.theta)


def test_the_command_writes_every_params_file_and_the_table(files, tmp_path, capsys):
    train, valid = files
    out = tmp_path / "runs"
    argv = ["fit", str(RBM), str(train), "--set", f"N={N}", "--grid", "M=1,2", "--seeds", "2",
            "--epochs", "2", "--chains", "10", "--valid", str(valid), "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["rbm_M=1_seed0.json", "rbm_M=1_seed1.json", "rbm_M=2_seed0.json",
                     "rbm_M=2_seed1.json", "rbm_sweep.csv"]
    table = list(csv.DictReader((out / "rbm_sweep.csv").open()))
    assert [r["rank"] for r in table] == ["1", "2"]
    best = table[0]["setting"]
    assert f"best: {best} (valid LL" in text
    for r in table:
        vals = [rbm_loglik(json.load(open(out / f"rbm_{r['setting']}_seed{k}.json"))["params"],
                           valid) for k in range(2)]
        assert float(r["valid_LL_mean"]) == pytest.approx(np.mean(vals), abs=1e-9)
    meta = json.load(open(out / "rbm_M=2_seed1.json"))
    assert meta["sweep"] == {"setting": {"M": "2"}, "seed": {"root": 0, "spawn_key": [1]}}
    assert main(argv) == 0          # its own earlier outputs are replaced
    (out / "rbm_M=1_seed0.json").write_text("v[0]\n1\n")       # not a params file: kept
    capsys.readouterr()
    assert main(argv) == 1
    assert "is not a params file" in capsys.readouterr().err
    assert (out / "rbm_M=1_seed0.json").read_text() == "v[0]\n1\n"


@pytest.mark.parametrize("flags, message", [
    (["--grid", "lr=0.1,x"], "--grid lr: expected a positive number, got 'x'"),
    (["--grid", "lr="], "--grid lr: empty value"),
    (["--grid", "lr=0.1,,0.2"], "--grid lr: empty value"),
    (["--grid", "lr"], "--grid expects KEY=V1,V2,..., got 'lr'"),
    (["--grid", "hidden=1,2"], "--grid hidden: not a fit option nor a const"),
    (["--grid", "seed=1,2"], "--grid seed: the seeds of a sweep are --seeds N"),
    (["--grid", "M=1,b"], "--grid M: 'b' is not a number"),
    (["--grid", "method=pcd,bogus"], "--grid method: 'bogus' is not one of"),
    (["--grid", "lr=0.1,0.1"], "--grid lr: a value is repeated"),
    (["--grid", "N=4,5"], "--grid N: the const is also given by --set N="),
    (["--grid", "M=1,2", "-o", "one.json"], "names one file, but the sweep writes 2"),
    (["--seeds", "0"], "must be an integer >= 1"),
])
def test_bad_grids_are_clean_errors(files, tmp_path, capsys, flags, message):
    argv = ["fit", str(RBM), str(files[0]), "--set", f"N={N}", "--epochs", "1"]
    if "-o" not in flags:
        argv += ["-o", str(tmp_path / "o")]
    assert main(argv + flags) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
