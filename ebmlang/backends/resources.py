"""Process resources while kernels run: BLAS threads, and heap memory given back."""

from __future__ import annotations


def blas_threads():
    """A context holding BLAS to EBMLANG_BLAS_THREADS threads (default 1) while kernels run:
    their matrix products are small, and a second BLAS thread on a busy core makes them
    tens of times slower (measured in bench/RESULTS.md)."""
    import os
    from threadpoolctl import threadpool_limits
    limit = os.environ.get("EBMLANG_BLAS_THREADS", "1")
    return threadpool_limits(limits=int(limit) if limit.isdigit() else 1, user_api="blas")


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
