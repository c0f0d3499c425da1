"""Output files never clobber one another: what a command may overwrite.

A command names every file it will write before it starts work, and `claim` refuses a file
that exists unless it is recognizably an earlier output of the same kind (so re-running
`ebmlang fit ... -o rbm.json` or `ebmlang sample ... -o s.csv` just works), or `--force` is
given. Anything else (a data file, a model, a network, someone else's picture) is kept. Two
outputs of one run may not be the same file. Recognition reads the file's beginning only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable

from ebmlang.errors import UserError

_HEAD = 4096  # bytes read to recognize a picture or a converted model


def _first_line(path: str) -> str:
    with open(path, "rb") as f:
        return f.readline().decode("utf-8", "replace").strip()


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(_HEAD)


def _params(path: str) -> bool:
    """A params JSON file: an object with a "params" mapping (fit's output, convert's, or an
    initial-params file: all the same kind)."""
    if os.path.getsize(path) > 1 << 30:
        return False
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("params"), dict)


def _mentions_ebmlang(path: str) -> bool:
    """A picture or graph ebmlang wrote: its first or last bytes carry the name (a PNG text
    chunk, a DOT or SVG comment, a PDF's creator)."""
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        f.seek(max(f.seek(0, os.SEEK_END) - _HEAD, 0))
        return b"ebmlang" in head + f.read()


# kind -> (what it is called in a message, how to recognize one)
KINDS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "params": ("a params file", _params),
    "samples": ("a samples CSV ebmlang wrote",
                lambda p: re.match(r"chain,draw(,|$)", _first_line(p)) is not None),
    "scores": ("a scores CSV ebmlang wrote", lambda p: _first_line(p) in ("score", "score,logp")),
    "map": ("a MAP CSV ebmlang wrote", lambda p: _first_line(p).endswith("log_potential")),
    "sweep": ("a sweep table ebmlang wrote", lambda p: _first_line(p).startswith("rank,setting,")),
    "set": ("a set file ebmlang wrote",
            lambda p: re.fullmatch(r"f(,u[0-9]+)*", _first_line(p)) is not None),
    "marginals": ("a marginals CSV or MAR file ebmlang wrote",
                  lambda p: _first_line(p) == "MAR" or _first_line(p).startswith("variable,p(")),
    "ebm": ("a model ebmlang converted from UAI", lambda p: b"\n# converted from UAI" in _head(p)),
    "picture": ("a picture ebmlang drew", _mentions_ebmlang),
    "graph": ("a graph ebmlang drew", _mentions_ebmlang),
    "uai": ("to be replaced without --force (a UAI network)", lambda p: False),
}


def claim(outputs: Iterable[tuple[str | os.PathLike, str]], force: bool = False) -> None:
    """Check, before any work, that every (path, kind) may be written: no two outputs the same
    file, and an existing file only when it is an earlier output of that kind (or `force`)."""
    seen: dict[str, str] = {}
    for path, kind in outputs:
        path = os.fspath(path)
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            raise UserError(f"two outputs of this command are the same file, {seen[key]} and "
                            f"{path}: name them apart")
        seen[key] = path
        if force or not os.path.lexists(path):
            continue
        what, ours = KINDS[kind]
        if os.path.isdir(path):
            raise UserError("cannot write the output: it is a directory", file=path)
        try:
            recognized = ours(path)
        except OSError:
            recognized = False
        if not recognized:
            raise UserError(f"the file exists and is not {what}: it is kept; choose another "
                            "output name, or pass --force to overwrite it", file=path)


def add_force(parser) -> None:
    """The `--force` flag of a command that writes files."""
    parser.add_argument("--force", action="store_true",
                        help="overwrite output files even when they are not an earlier output "
                        "of the same kind (data files, models, networks)")
