"""What a data-parallel PCD over Ray actors would cost per update, against a local PCD update, at
the RBM's MNIST size (784 x 500, 393,284 float64 params, 3.1 MB), on this machine.

Local: one PCD epoch of ebmlang (the settings of bench/pcd_sklearn.py: SGD, batch 10, 10 chains,
6,000 synthetic rows, so 600 updates), time per update. Ray: per update, the driver puts the
params in the object store, each of W actors (a local Ray with W CPUs) reads them and returns a
gradient-sized array (zeros: only the communication is timed, not the work it would share), and
the driver gets the W gradients and sums them; median over ROUNDS rounds. The ratio says how
much of a local update the communication alone costs: data-parallel PCD pays off only where it
is well below 1 (large minibatches, many chains per worker).

    PYTHONPATH=. python bench/ray_pcd_cost.py [ROUNDS]
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
import ray

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcd_sklearn import MATCHED, MODEL, synthetic  # noqa: E402

import ebmlang  # noqa: E402


@ray.remote
class Worker:
    def gradient(self, theta):
        return np.zeros_like(theta)      # a gradient's size; its work is not timed here


def local_update_seconds() -> tuple[float, int]:
    model = ebmlang.load(MODEL, N=784, M=500)
    x = synthetic()
    model.fit({"v": x[:200]}, seed=0, epochs=1, **MATCHED)        # compile, warm up
    t = time.perf_counter()
    model.fit({"v": x}, seed=0, epochs=1, **MATCHED)
    updates = -(-len(x) // MATCHED["batch_size"])
    return (time.perf_counter() - t) / updates, model.checked.n_theta


def round_trip_seconds(workers: int, n_theta: int, rounds: int) -> float:
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR")
    try:
        actors = [Worker.remote() for _ in range(workers)]
        theta = np.random.default_rng(0).standard_normal(n_theta)
        times = []
        for r in range(rounds + 3):                              # 3 warm-up rounds
            t = time.perf_counter()
            ref = ray.put(theta)
            grad = sum(ray.get([a.gradient.remote(ref) for a in actors]))
            theta += 0.0 * grad
            if r >= 3:
                times.append(time.perf_counter() - t)
        return statistics.median(times)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    per_update, n_theta = local_update_seconds()
    print(f"params: {n_theta:,} float64 ({n_theta * 8 / 1e6:.1f} MB)")
    print(f"local PCD update (batch {MATCHED['batch_size']}): {per_update * 1e3:.2f} ms")
    print("| actors | round trip ms per update | / local update |")
    print("|---|---:|---:|")
    for workers in (1, 2):
        rt = round_trip_seconds(workers, n_theta, rounds)
        print(f"| {workers} | {rt * 1e3:.2f} | {rt / per_update:.2f}x |")
