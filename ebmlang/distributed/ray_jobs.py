"""Ray as a job runner: `runner(recipe, address)` gives a `jobs(fn, model, kwargs)` callable
that `sample` and `ais` (and any task cut into seeded jobs) call instead of running the jobs
here. Each job is a Ray task; the model travels as its recipe (the text, consts and params,
put in Ray's object store once), and each worker process compiles it once and keeps it warm
for the next job. Ray retries a task whose worker died (`max_retries`); Ctrl-C cancels them.
"""

from __future__ import annotations

import os
import socket
import time

from ebmlang.errors import UserError

INSTALL = "--ray needs Ray: pip install 'ebmlang[ray]' (or pip install ray)"
CONNECT_TIMEOUT = 8.0    # seconds to reach a cluster before it is an error
RETRIES = 3

_models: dict = {}       # on a worker: recipe key -> compiled model


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL) from None
    return ray


def runner(recipe, address):
    """jobs(fn, model, kwargs) running fn(model, **kw) for each kw as Ray tasks, results in order.
    `recipe`: (build, key, theta): build(**key) compiles the model, key["ident"] names it; `address`: True for
    RAY_ADDRESS or a local Ray started for the run, or a cluster address."""
    ray = import_ray()
    build, key, theta = recipe

    def jobs(fn, model, kwargs):
        started = _connect(ray, None if address is True else address)
        try:
            ref = ray.put(theta)
            task = ray.remote(_run).options(max_retries=RETRIES)
            refs = [task.remote(build, key, ref, fn, kw) for kw in kwargs]
            try:
                return ray.get(refs)
            except KeyboardInterrupt:
                for r in refs:
                    ray.cancel(r, force=True)
                raise
        finally:
            if started:
                ray.shutdown()
    return jobs


def _run(build, key, theta, fn, kw):
    """On a worker: the model of `key` (compiled on first use), at params theta, then the job."""
    ident = key["ident"]
    model = _models.get(ident)
    if model is None:
        model = _models[ident] = build(**key)
    model.params.theta[:] = theta
    return fn(model, **kw)


def _connect(ray, address) -> bool:
    """Connect to the cluster (address, else RAY_ADDRESS, else a new local one); True when this
    call started Ray and so must shut it down. An unreachable address is an error in seconds."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {k: os.environ[k] for k in ("PYTHONPATH", "EBMLANG_CACHE", "EBMLANG_UAI_DIR")
           if k in os.environ}
    if address not in (None, "auto", "local") and not address.startswith("ray://"):
        _probe(address)
    try:
        ray.init(address=address, runtime_env={"env_vars": env} if env else None,
                 log_to_driver=False, include_dashboard=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return True


def _probe(address: str) -> None:
    """A TCP connection to host:port (the GCS), so a wrong address fails fast, not in Ray's
    own retry loop."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise UserError(f"bad Ray address '{address}': expected HOST:PORT")
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise UserError(f"cannot reach the Ray cluster at {address}: {exc}") from None
            time.sleep(1.0)
