"""Where ebmlang keeps what it builds once and reuses: generated kernels, numba's compiled
code, the parser tables, compiled models. $EBMLANG_CACHE, or ~/.cache/ebmlang.

Compiled models (`models/`, see `ebmlang.model`) are stored one file an entry: a magic line, a
JSON header (format, key, the payload's size and sha256, the files it was built from with their
sha256) and the payload. An entry is trusted only when its header parses, its key and format
match and the payload's hash matches; anything else reads as a miss and is rebuilt. Entries are
written to a temporary file and renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

MAGIC = b"EBMLANG-MODEL\n"
FORMAT = 1
MAX_ENTRIES = 64            # the oldest entries beyond these are removed when one is written
MAX_ENTRY_BYTES = 1 << 28   # a compiled model bigger than 256 MB is not stored
OFF = ("0", "off", "no", "false")


def cache_dir() -> Path:
    env = os.environ.get("EBMLANG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ebmlang"


def model_cache_dir() -> Path | None:
    """The compiled-model cache, or None: turned off (EBMLANG_MODEL_CACHE=off), or a directory
    that is not the user's own (another user could write entries there, and entries are
    pickles)."""
    if os.environ.get("EBMLANG_MODEL_CACHE", "").strip().lower() in OFF or \
            not hasattr(os, "getuid"):
        return None
    top = cache_dir()
    d = top / "models"
    try:
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        return d if _own(top, 0o022) and _own(d, 0o077) else None
    except OSError:
        return None


def _own(path: Path, forbidden: int) -> bool:
    st = path.lstat()
    return st.st_uid == os.getuid() and not st.st_mode & forbidden and path.is_dir() \
        and not path.is_symlink()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def versions() -> str:
    """What a compiled model depends on besides its inputs: ebmlang's own source (every module
    and the grammar, by content), Python's and the libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    files = sorted(root.rglob("*.py")) + sorted(root.parent.glob("grammar/*.lark"))
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    out = {"ebmlang": h.hexdigest(), "python": sys.version}
    for lib in ("numpy", "sympy", "networkx", "lark", "numba"):
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return json.dumps(out, sort_keys=True)


def read_entry(directory: Path, key: str) -> tuple[dict, bytes] | None:
    """(header, payload) of a sound entry, or None: missing, truncated, corrupt or stale."""
    path = directory / f"{key}.model"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_uid != os.getuid():
            return None
        data = f.read()
    try:
        magic, head, payload = data[:len(MAGIC)], *data[len(MAGIC):].split(b"\n", 1)
        header = json.loads(head)
        sound = (magic == MAGIC and header.get("format") == FORMAT and header.get("key") == key
                 and header.get("size") == len(payload)
                 and header.get("sha256") == hashlib.sha256(payload).hexdigest())
    except (ValueError, TypeError, AttributeError):
        sound = False
    if not sound:
        return None
    os.utime(path)      # recently used: kept when older entries are pruned
    return header, payload


def write_entry(directory: Path, key: str, payload: bytes, deps: list) -> None:
    """Store an entry atomically (a temporary file renamed into place), then prune."""
    if len(payload) > MAX_ENTRY_BYTES:
        return
    header = {"format": FORMAT, "key": key, "size": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest(), "deps": deps}
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + json.dumps(header).encode() + b"\n" + payload)
        os.replace(tmp, directory / f"{key}.model")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _prune(directory)


def _prune(directory: Path) -> None:
    entries = []
    for p in directory.glob("*.model"):
        try:
            entries.append((p.stat().st_mtime, p))
        except OSError:
            pass
    for _, p in sorted(entries, reverse=True)[MAX_ENTRIES:]:
        p.unlink(missing_ok=True)
