"""Ray scaling: 8 chains of the L = 256 Ising model for SWEEPS sweeps and PARTICLES AIS particles
on the L = 32 model, local against Ray with 1 and 2 workers (a local Ray with num_cpus = 1, 2),
and Ray's fixed overhead: a tiny job (L = 8, one group) on warm workers, and the start of a local
Ray with its workers' first compile (`ray.init` and the first tiny job). Every Ray result is
checked equal to the local one. The defaults are the issue's sizes (4,000 sweeps, 4,096
particles of 200 steps). Run: PYTHONPATH=. python bench/ray_scaling.py [SWEEPS] [PARTICLES] [AIS_STEPS]"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import ray

import ebmlang

HERE = os.path.dirname(os.path.abspath(__file__))
ISING = os.path.join(HERE, "..", "examples", "ising.ebm")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def jobs(big, small, sweeps, particles, steps, use_ray):
    return {
        "sample L=256 x 8 chains": lambda: big.sample(draws=sweeps // 2, chains=8, burn_in=sweeps // 2,
                                                      seed=1, ray=use_ray).full,
        f"ais L=32 x {particles}": lambda: small.logz(method="ais", chains=particles, steps=steps,
                                                      seed=1, ray=use_ray).logw,
        "tiny: sample L=8, 10 draws": lambda: tiny.sample(draws=10, chains=4, seed=1,
                                                          ray=use_ray).full,
    }


if __name__ == "__main__":
    defaults = [4000, 4096, 200]
    sweeps, particles, steps = [int(a) for a in sys.argv[1:]] + defaults[len(sys.argv) - 1:]
    big, small, tiny = (ebmlang.load(ISING, L=n) for n in (256, 32, 8))
    env = {"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", os.path.join(HERE, ".."))}}
    times, ref = {}, {}
    for fn in jobs(big, small, 4, particles, 2, None).values():
        fn()                                       # compile and warm up
    for name, fn in jobs(big, small, sweeps, particles, steps, None).items():
        times[name, "local"], ref[name] = timed(fn)
        print(f"{name}, local: {times[name, 'local']:.2f} s", flush=True)
    for workers in (1, 2):
        t0 = time.perf_counter()
        ray.init(num_cpus=workers, runtime_env=env, include_dashboard=False)
        try:
            tiny.sample(draws=10, chains=4, seed=1, ray=True)
            times["start", workers] = time.perf_counter() - t0
            for fn in jobs(big, small, 4, particles, 2, True).values():
                fn()                               # workers compile once, then stay warm
            for name, fn in jobs(big, small, sweeps, particles, steps, True).items():
                times[name, workers], out = timed(fn)
                print(f"{name}, Ray {workers}: {times[name, workers]:.2f} s", flush=True)
                assert np.array_equal(out, ref[name]), name
        finally:
            ray.shutdown()
    print(f"| job | local s | Ray 1 worker s | Ray 2 workers s | 1 -> 2 workers |")
    print("|---|---|---|---|---|")
    for name in ref:
        l, a, b = times[name, "local"], times[name, 1], times[name, 2]
        print(f"| {name} | {l:.2f} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
    print(f"| start: ray.init + first tiny job (workers compile) | - | {times['start', 1]:.2f} | "
          f"{times['start', 2]:.2f} | - |")
