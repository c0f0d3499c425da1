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
    def jobs(fn, model, kwargs):
        return run_tasks(address, fn, [(recipe, kw, {}) for kw in kwargs])
    return jobs


def model_tasks(address):
    """run(fn, tasks) running fn(model, **kw, **shared) for each (model, kw, shared) of tasks
    as Ray tasks, each model shipped as its recipe and params (`Model._recipe`); None shared
    values are left out."""
    def run(fn, tasks):
        recipes = {id(m): m._recipe() for m, _, _ in tasks}
        return run_tasks(address, fn, [(recipes[id(m)], kw, {k: v for k, v in sh.items()
                                                              if v is not None})
                                       for m, kw, sh in tasks])
    return run


def run_tasks(address, fn, tasks):
    """fn(model, **kw, **shared) as one Ray task per (recipe, kw, shared) of `tasks`, results in
    order. Each distinct params vector and each `shared` value (a data set, by identity) is put
    in the object store once; Ctrl-C cancels every task."""
    ray = import_ray()
    started = _connect(ray, None if address is True else address)
    try:
        refs, put = [], {}

        def ref(obj):
            if id(obj) not in put:
                put[id(obj)] = (ray.put(obj), obj)   # the object is kept so its id stays its own
            return put[id(obj)][0]
        task = ray.remote(_run).options(max_retries=RETRIES)
        try:
            for (build, key, theta), kw, shared in tasks:
                refs.append(task.remote(build, key, ref(theta), fn, kw, tuple(shared),
                                        *(ref(v) for v in shared.values())))
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, UserError):   # the job's own message, not Ray's wrapper
                raise exc.cause from None
            raise
        except KeyboardInterrupt:
            for r in refs:
                ray.cancel(r, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


def _run(build, key, theta, fn, kw, names=(), *values):
    """On a worker: the model of `key` (compiled on first use), at params theta, then the job
    with the shared values (resolved by Ray) added to its arguments."""
    _hold_threads()
    ident = key["ident"]
    model = _models.get(ident)
    if model is None:
        model = _models[ident] = build(**key)
    model.params.theta[:] = theta
    return fn(model, **kw, **dict(zip(names, values)))


def _hold_threads() -> None:
    """A task runs on the CPUs Ray gave it (one by default): numba's parallel loops get as
    many threads, so that N workers on N cores do not each start a thread per core. The
    draws do not depend on the thread count (each chain has its own stream)."""
    import numba
    import ray
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, int(cpus))))


def _connect(ray, address) -> bool:
    """Connect to the cluster (address, else RAY_ADDRESS, else a new local one); True when this
    call started Ray and so must shut it down. An unreachable address is an error in seconds."""
    if ray.is_initialized():
        _check_same_cluster(ray, address)
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


def _check_same_cluster(ray, address) -> None:
    """A UserError naming both addresses when Ray, already initialised in this process, is
    connected to another cluster than `address` (a HOST:PORT or ray://HOST:PORT; None, auto
    and local take whatever it is connected to): one process holds one Ray connection, so a
    different --ray would otherwise be ignored. Where Ray does not say its address, the
    connection is used as it is."""
    if address in (None, "auto", "local"):
        return
    current = _current_address(ray)
    if current is None or _endpoint(current) == _endpoint(address):
        return
    raise UserError(f"Ray is already connected to the cluster at {current} in this process, so "
                    f"it cannot run on the one at {address} asked for: give --ray {current} (or "
                    "ray=True), or call ray.shutdown() first, or run in a new process")


def _current_address(ray) -> str | None:
    """ray://HOST:PORT for a Ray Client connection, else the GCS's HOST:PORT; None where Ray
    does not say."""
    client = _client_address()
    if client is not None:
        return client
    try:
        return ray.get_runtime_context().gcs_address or None
    except Exception:     # noqa: BLE001 - an older Ray or a worker that cannot say
        return None


def _client_address() -> str | None:
    """ray://HOST:PORT of this process's Ray Client connection, None without one."""
    try:
        from ray.util.client import ray as client
        if client.is_connected():
            conn = getattr(client.get_context().client_worker, "_conn_str", None)
            return "ray://" + conn.removeprefix("ray://") if conn else None
    except (ImportError, AttributeError):
        pass
    return None


def _endpoint(address: str) -> tuple[bool, str, str]:
    """(Ray Client, host, port), every address of this machine's interfaces (loopback, the
    node IP Ray reports) one host "local"."""
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        ip = socket.gethostbyname(host or "127.0.0.1")
    except OSError:
        return client, host, port
    return client, "local" if _is_own(ip) else ip, port


def _is_own(ip: str) -> bool:
    """Whether ip is an address of this machine: a socket can be bound to it."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def _probe(address: str) -> None:
    """A TCP connection to host:port (the GCS), so a wrong address fails fast, not in Ray's
    own retry loop; then the HTTP/2 handshake every gRPC server (Ray's GCS is one) answers at
    once, so that a port where something else listens is an error too, not a hang in
    `ray.init` (it retries such a port for minutes)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise UserError(f"bad Ray address '{address}': expected HOST:PORT")
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5) as s:
                if not _speaks_grpc(s, deadline):
                    raise UserError(f"cannot reach the Ray cluster at {address}: something "
                                    "listens there, but it is not a Ray cluster (no gRPC "
                                    f"answer within {CONNECT_TIMEOUT:g} s)")
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise UserError(f"cannot reach the Ray cluster at {address}: {exc}") from None
            time.sleep(1.0)


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_grpc(sock, deadline: float) -> bool:
    """Whether the server answers the HTTP/2 client preface (and an empty SETTINGS frame)
    with a frame of its own, as an HTTP/2 (gRPC) server does, before the deadline."""
    sock.sendall(_PREFACE)
    head = b""
    while len(head) < 9:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(9 - len(head))
        except socket.timeout:
            return False
        if not chunk:
            return False
        head += chunk
    return head[3] == 4     # a SETTINGS frame
