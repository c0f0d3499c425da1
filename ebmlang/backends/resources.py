"""Process resources while kernels run: BLAS threads, and heap memory given back."""

from __future__ import annotations

import os

# Flops of one matrix product (2 m k n) from which every core gains: bench/blas_threads.py
# prints it (bench/RESULTS.md, "BLAS thread policy"). PROVISIONAL: on the loaded machine of
# that run (load 6.5 on 2 cores) two threads lost at every size, so no threshold could be
# measured; 4e6 puts the MNIST-sized batch (10 x 784 x 500, 7.8e6) on every core and the
# 64 x 100 one (1.3e5) on one, pending the idle re-run. Below it one thread: a second BLAS
# thread on a busy core makes small products tens of times slower.
PARALLEL_FLOPS = 4_000_000


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_count(flops: float, env: str | None = None, ncores: int | None = None) -> int:
    """BLAS threads for kernels whose largest matrix product costs `flops` per call: one below
    PARALLEL_FLOPS, every core above; EBMLANG_BLAS_THREADS (`env`), a positive integer,
    overrides. A pure function of its arguments."""
    ncores = cores() if ncores is None else ncores
    if env is not None and env.strip().isdigit() and int(env) > 0:
        return int(env)
    return ncores if flops >= PARALLEL_FLOPS else 1


def product_flops(model, rows: int) -> float:
    """Flops of the largest matrix product one fused update makes over `rows` chains (or
    minibatch rows): 2 rows n m for the biggest term between two families; 0 where the fused
    sweep does not run (the compiled kernels make no BLAS calls)."""
    from ebmlang.backends.fused import unfused
    if unfused(model) is not None:
        return 0.0
    best = 0.0
    for t in model.terms:
        fams = {r.family for r in t.reads}
        if len(fams) == 2:
            a, b = (model.vars[f].space.size for f in fams)
            best = max(best, 2.0 * rows * a * b)
    return best


def blas_threads(flops: float = 0.0):
    """A context holding BLAS to `thread_count(flops)` threads while kernels run."""
    from threadpoolctl import threadpool_limits
    n = thread_count(flops, os.environ.get("EBMLANG_BLAS_THREADS"))
    return threadpool_limits(limits=n, user_api="blas")


def trim_heap() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim; a no-op elsewhere).
    Compiling a large model frees many big temporaries, and glibc keeps them mapped once its
    mmap threshold has grown past their size: 60 MB of a million-spin lattice's compile."""
    import ctypes
    import ctypes.util
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
