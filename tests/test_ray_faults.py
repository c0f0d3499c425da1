"""Faults on Ray: a worker that dies mid-task is retried and the run gives the local result; a
run interrupted with Ctrl-C cancels its tasks and leaves no output file; a cluster that cannot
be reached (nothing listens, or something that is not Ray) is a clean error within 30 s. One
local one-CPU Ray for the module."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.infer import groups
from ebmlang.infer.sample import sample_job

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent
ISING = ROOT / "examples" / "ising.ebm"
ENV = {k: os.environ[k] for k in ("PYTHONPATH", "EBMLANG_CACHE") if k in os.environ} \
    or {"PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=1, runtime_env={"env_vars": ENV}, include_dashboard=False,
             logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _dies_once(model, marker, **kw):
    """A chain group's draws; the first attempt kills its worker process (as a machine that
    goes away would), the retry finds the marker and runs."""
    if not os.path.exists(marker):
        Path(marker).write_text("died once\n")
        os._exit(1)
    return sample_job(model, **kw)[0]


def test_a_killed_worker_is_retried_and_gives_the_local_draws(cluster, tmp_path):
    from ebmlang.distributed.ray_jobs import runner
    model = ebmlang.load(ISING, L=64)
    kw = dict(draws=5, burn_in=2, thin=1, backend=None, inputs=None, clamp=None, tempering=1)
    jobs = [dict(kw, chains=n, seed=s, marker=str(tmp_path / f"died{g}"))
            for g, (n, s) in enumerate(zip(groups.chain_groups(model, 8), groups.seeds(2, 2)))]
    local = [sample_job(model, **{k: v for k, v in j.items() if k != "marker"})[0] for j in jobs]
    got = runner(model._recipe(), True)(_dies_once, model, jobs)
    assert all((tmp_path / f"died{g}").exists() for g in range(len(jobs)))   # each died once
    for a, b in zip(got, local):
        assert np.array_equal(a, b)


def test_ctrl_c_cancels_the_tasks_and_leaves_no_output(cluster, tmp_path):
    """SIGINT to `sample --ray ADDRESS -o out.csv` while its task runs: exit status 130, no
    traceback, no out.csv (nor its temp file), and the cluster's CPU is free again (the task
    was cancelled, not left running)."""
    out = tmp_path / "out.csv"
    _wait_for_free_cpu(30)       # so that a busy CPU below is this run's task, not a last one
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebmlang", "sample", str(ISING), "--set", "L=64", "--chains", "8",
         "-n", "5", "--burn-in", "100000000", "--seed", "1", "--quiet", "--no-progress", "--ray", cluster, "-o",
         str(out)], env=dict(os.environ, **ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 120
        # until the run is in its command (the CSV's temp file is open) and its task holds the
        # CPU (available_resources leaves out a resource none of which is free)
        while ray.available_resources().get("CPU", 0) > 0 or not list(tmp_path.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    _wait_for_free_cpu(30)


def _wait_for_free_cpu(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) < 1:
        assert time.monotonic() < deadline, "a task still holds the CPU (not cancelled)"
        time.sleep(0.5)


def _silent_server():
    """A port that accepts connections and never answers (not a Ray cluster)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(srv.accept()) for _ in range(16)],
                     daemon=True).start()
    return srv


# nothing listening is also tested (in-process, by `sample`) in test_ray.py: slow here
@pytest.mark.parametrize("listening", [pytest.param(False, marks=pytest.mark.slow), True])
def test_an_unreachable_cluster_is_an_error_within_30_s(listening, tmp_path):
    """`fit --grid ... --ray ADDRESS` where nothing listens (port 9) or where a server that is
    not Ray accepts and stays silent (Ray's own client would retry that for minutes). In a
    process of its own: this one is connected to the module's Ray."""
    srv = _silent_server() if listening else None
    address = f"127.0.0.1:{srv.getsockname()[1]}" if srv else "127.0.0.1:9"
    data = ROOT / "examples" / "data" / "bars.csv"
    t = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ebmlang", "fit", str(ROOT / "examples" / "rbm.ebm"),
             str(data), "--set", "N=10", "--grid", "M=2,3", "--epochs", "1", "--ray", address,
             "-o", str(tmp_path / "runs")], env=dict(os.environ, **ENV), capture_output=True,
            text=True, timeout=60)
    finally:
        if srv is not None:
            srv.close()
    assert done.returncode == 1 and time.monotonic() - t < 30
    assert f"cannot reach the Ray cluster at {address}" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()
    if listening:
        assert "not a Ray cluster" in done.stderr
