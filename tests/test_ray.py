"""Ray runs give the local run's results bit for bit, on one worker and on two nodes; the errors
of a missing Ray and an unreachable cluster are clean. Each test starts and stops its own Ray."""
from __future__ import annotations

import builtins
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.cli.app import main
from ebmlang.errors import UserError
from ebmlang.infer import groups
from ebmlang.infer.sample import sample_job

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent
ISING = ROOT / "examples" / "ising.ebm"
ENV = {"env_vars": {k: os.environ[k] for k in ("PYTHONPATH", "EBMLANG_CACHE") if k in os.environ}
       or {"PYTHONPATH": str(ROOT)}}


def _node(model, **kw):
    """A chain group's draws and the node it ran on."""
    time.sleep(1.0)          # long enough that both one-CPU nodes are busy at once
    return ray.get_runtime_context().get_node_id(), sample_job(model, **kw)[0]


def test_two_nodes_run_the_groups_and_give_the_local_draws():
    from ray.cluster_utils import Cluster
    from ebmlang.distributed.ray_jobs import runner
    model = ebmlang.load(ISING, L=64)
    kw = dict(draws=10, burn_in=2, thin=1, backend=None, inputs=None, clamp=None, tempering=1)
    sizes = groups.chain_groups(model, 8)
    assert sizes == [4, 4]
    jobs = [dict(kw, chains=n, seed=s) for n, s in zip(sizes, groups.seeds(5, 2))]
    local = [sample_job(model, **j)[0] for j in jobs]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        ray.init(address=cluster.address, runtime_env=ENV)
        out = runner((ebmlang.model._rebuild, model.recipe, model.params.theta), True)(
            _node, model, jobs)
        assert len({node for node, _ in out}) == 2
        for (_, got), want in zip(out, local):
            assert np.array_equal(got, want)
        ray_run = model.sample(draws=10, chains=8, burn_in=2, seed=5, ray=True)
        assert np.array_equal(ray_run.full, np.concatenate(local))
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_an_unreachable_cluster_is_a_clean_error_within_30_s(capsys):
    t = time.monotonic()
    assert main(["sample", str(ISING), "--set", "L=8", "-n", "5", "--ray", "127.0.0.1:9"]) == 1
    assert time.monotonic() - t < 30
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in err and "Traceback" not in err


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch, capsys):
    real = builtins.__import__

    def no_ray(name, *args, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["sample", str(ISING), "--set", "L=8", "-n", "5", "--ray"]) == 1
    assert "pip install 'ebmlang[ray]'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def one_worker():
    ray.init(num_cpus=1, runtime_env=ENV, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_sample_on_one_worker_is_the_local_run(one_worker, tmp_path):
    """The CLI's samples CSV, byte for byte: chain groups of 4 (L = 64), seeds spawned from 3."""
    base = ["sample", str(ISING), "--set", "L=64", "--chains", "8", "-n", "6", "--burn-in", "2",
            "--seed", "3", "--quiet", "--no-progress"]
    assert main(base + ["-o", str(tmp_path / "local.csv")]) == 0
    assert main(base + ["-o", str(tmp_path / "ray.csv"), "--ray"]) == 0
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "ray.csv").read_bytes()


def test_ais_log_weights_on_one_worker_are_the_local_ones(one_worker):
    model = ebmlang.load(ISING, L=4)
    assert groups.particle_groups(1100) == [367, 367, 366]
    here = model.logz(method="ais", chains=1100, steps=20, seed=7)
    there = model.logz(method="ais", chains=1100, steps=20, seed=7, ray=True)
    assert np.array_equal(here.logw, there.logw) and here.value == there.value


def test_a_small_run_is_one_group_seeded_as_before(one_worker):
    """One group uses the seed itself: a small model's draws are those ebmlang always gave."""
    model = ebmlang.load(ISING, L=8)
    assert groups.chain_groups(model, 4) == [4]
    a = model.sample(draws=20, chains=4, seed=1)
    b = model.sample(draws=20, chains=4, seed=1, ray=True)
    assert np.array_equal(a.full, b.full)


def test_groups_do_not_depend_on_workers():
    assert groups.split(10, 4) == [4, 3, 3] and groups.split(3, 8) == [3]
    a, b = groups.seeds(1, 3), groups.seeds(1, 3)
    assert [s.entropy for s in a] == [s.entropy for s in b]
    assert [s.spawn_key for s in a] == [(0,), (1,), (2,)]
    with pytest.raises(UserError):
        from ebmlang.distributed.ray_jobs import _probe
        _probe("nohostport")


def test_gibbs_marginals_on_one_worker_are_the_local_ones(one_worker, tmp_path):
    """`marginals --method gibbs --ray`: the same chain groups, so the same CSV byte for byte."""
    base = ["marginals", str(ISING), "--set", "L=64", "--method", "gibbs", "--chains", "8",
            "--sweeps", "8", "--seed", "4"]
    assert main(base + ["-o", str(tmp_path / "local.csv")]) == 0
    assert main(base + ["-o", str(tmp_path / "ray.csv"), "--ray"]) == 0
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "ray.csv").read_bytes()


def test_a_fit_sweep_on_one_worker_writes_the_local_files(one_worker, tmp_path):
    """`fit --grid ... --seeds 2 --ray`: every params file and the table CSV byte for byte the
    local run's (the fits' seeds are spawned from --seed, not drawn where they run); a single
    `fit --ray` writes the local fit's params."""
    data = ROOT / "examples" / "data" / "bars.csv"
    base = ["fit", str(ROOT / "examples" / "rbm.ebm"), str(data), "--set", "N=10", "--grid",
            "M=2,3", "--grid", "lr=0.02,0.05", "--seeds", "2", "--epochs", "2", "--chains", "20",
            "--seed", "4", "--valid", str(data)]
    assert main(base + ["-o", str(tmp_path / "here")]) == 0
    assert main(base + ["-o", str(tmp_path / "ray"), "--ray"]) == 0
    here = sorted((tmp_path / "here").iterdir())
    assert len(here) == 9
    for path in here:
        assert path.read_bytes() == (tmp_path / "ray" / path.name).read_bytes(), path.name
    one = base[:5] + ["--epochs", "2", "--quiet"]
    assert main(one + ["-o", str(tmp_path / "one.json")]) == 0
    assert main(one + ["-o", str(tmp_path / "one_ray.json"), "--ray"]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("one.json", "one_ray.json"))
    assert a["params"] == b["params"]


def test_a_user_error_inside_a_ray_task_is_its_own_message(one_worker, capsys):
    """`method exact` refuses 2^22 states when the fit runs, on the worker: the message is the
    local one, exit status 1, no traceback."""
    argv = ["fit", str(ROOT / "examples" / "rbm.ebm"), str(ROOT / "examples" / "data" / "bars.csv"),
            "--set", "N=10", "--set", "M=12", "--grid", "method=exact,pl", "--ray"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "method exact" in err and "Traceback" not in err and "RayTaskError" not in err
