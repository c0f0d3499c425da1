"""Where ebmlang keeps what it builds once and reuses: generated kernels, numba's compiled
code, the parser tables. $EBMLANG_CACHE, or ~/.cache/ebmlang."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("EBMLANG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ebmlang"
