"""The compiled-model cache (`models/` in `ebmlang.cachedir`): an entry is the pickled state
of a compiled model, keyed by the sha256 of everything it is made from but its set files (the
model text and name, the base directory, the const overrides, preloaded sets, ebmlang's source
and the library versions); the set files it read are checked by content when it is loaded.
A stale, damaged or unreadable entry is never used: the model is compiled again and stored
anew. `model.compile_model` reads and writes it."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

from ebmlang import cachedir


def key(text: str, name: str, base: Path, overrides, sets) -> str | None:
    """The entry's key, or None when the cache is off or the overrides are not numbers
    (`overrides` None: compiling says why)."""
    if cachedir.model_cache_dir() is None or overrides is None:
        return None
    h = hashlib.sha256(json.dumps([text, name, str(base.resolve()), repr(overrides),
                                   cachedir.versions()]).encode())
    for k in sorted(sets or {}):
        arr = np.ascontiguousarray(sets[k])
        h.update(f"\0set {k} {arr.dtype.str} {arr.shape}\0".encode() + arr.tobytes())
    return h.hexdigest()


def set_files(program, base: Path, sets) -> list[Path]:
    """The set files a program reads (not those given as rows), resolved against `base`."""
    from ebmlang.frontend import ast as A
    return [(base / st.path).resolve() if not Path(st.path).is_absolute() else Path(st.path)
            for st in program.stmts if isinstance(st, A.SetStmt) and st.name not in (sets or {})]


def read(key: str | None, restore):
    """`restore(state)` of the stored state of `key`, or None when there is none or it is
    stale or corrupt. Entries are pickles, read only from a directory only this user can
    write (`model_cache_dir`), after their sha256 matches: the same trust as the generated
    numba modules imported from there."""
    directory = cachedir.model_cache_dir() if key is not None else None
    entry = cachedir.read_entry(directory, key) if directory is not None else None
    if entry is None:
        return None
    header, payload = entry
    try:
        if any(cachedir.file_digest(Path(p)) != digest for p, digest in header["deps"]):
            return None
        return restore(pickle.loads(payload))
    except Exception:       # a stale or damaged entry of any kind: compile again, store anew
        return None


def write(key: str, state, files: list[Path]) -> None:
    """Keep a compiled model's state (`state()`, the model's `_stored_state`); a cache that
    cannot be written, or a state that does not pickle, is no error."""
    directory = cachedir.model_cache_dir()
    if directory is None:
        return
    try:
        deps = [[str(p), cachedir.file_digest(p)] for p in files]
        payload = pickle.dumps(state(), protocol=pickle.HIGHEST_PROTOCOL)
        cachedir.write_entry(directory, key, payload, deps)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass
