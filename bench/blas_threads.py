"""The BLAS thread threshold of `resources.thread_count`: the flops per matrix product above
which all cores beat one thread. Times (rows x n) @ (n x m) products of the RBM shapes fused
kernels make (rows = chains or minibatch rows), at 1 thread and at every core, interleaved;
prints medians, the ratio, and the size from which every larger product gains 10% on every
core: the value for resources.PARALLEL_FLOPS.

    python bench/blas_threads.py [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

SHAPES = [(10, 64, 100), (100, 64, 100), (10, 256, 256), (10, 784, 500), (100, 256, 256),
          (50, 784, 500), (100, 784, 500), (500, 784, 500)]


def per_call(a, b, threads: int, seconds: float = 0.05) -> float:
    with threadpool_limits(limits=threads, user_api="blas"):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            n += 1
        return (time.perf_counter() - start) / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    print(f"- cores: {cores}; load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"- command: `python bench/blas_threads.py --reps {args.reps}`\n")
    print(f"| rows x n x m | flops | 1 thread us | {cores} threads us | 1 / {cores} |")
    print("|---|---:|---:|---:|---:|")
    rng, first = np.random.default_rng(0), None
    for rows, n, m in SHAPES:
        a, b = rng.random((rows, n)), rng.random((n, m))
        one, many = [], []
        for _ in range(args.reps):
            one.append(per_call(a, b, 1))
            many.append(per_call(a, b, cores))
        t1, tn = statistics.median(one), statistics.median(many)
        flops = 2 * rows * n * m
        first = None if t1 / tn <= 1.1 else (first or flops)   # gains here and above
        print(f"| {rows} x {n} x {m} | {flops:,} | {t1 * 1e6:.1f} | {tn * 1e6:.1f} | "
              f"{t1 / tn:.2f} |")
    print(f"\nthreshold (every product this size and larger gains 10% on {cores} threads): "
          f"{'none' if first is None else f'{first:,} flops'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
