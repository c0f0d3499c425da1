"""The samples CSV written while the chains run: `chain,draw,` then every var and latent, one
row per kept draw, chain by chain (all of chain 0's draws, then chain 1's, ...).

Draws arrive a block at a time for all chains at once, so chain 0's rows go straight into the
output's temporary file and every other chain's into a temporary file of its own, appended at
the end; the output appears, atomically, only when every draw is in. Memory stays at one
block of draws, whatever the number of draws.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile

import numpy as np

from ebmlang.io.csvio import _BLOCK_CELLS, _atomic, _format_block
from ebmlang.errors import UserError


@contextlib.contextmanager
def samples_csv(path, header, ints: np.ndarray, chains: int, select=None):
    """`with samples_csv(path, header, ints, chains) as out: out.add(k, xs)`, xs the draws
    k, k + 1, ... of every chain (chains, draws, columns), or of whatever `select(xs)` makes
    them; `header` may be any sized iterable of names (it is written, not kept)."""
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(header)
    where = os.path.dirname(os.path.abspath(os.fspath(path)))
    with _atomic(path, binary=True) as out, contextlib.ExitStack() as stack:
        out.write(head.getvalue().encode("utf-8"))
        try:
            rest = [stack.enter_context(tempfile.TemporaryFile(dir=where))
                    for _ in range(chains - 1)]
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}", file=str(path)) from None
        yield _Rows(out, rest, np.asarray(ints, bool), select)
        for f in rest:
            f.seek(0)
            shutil.copyfileobj(f, out, 1 << 20)


class _Rows:
    def __init__(self, out, rest, ints, select):
        self.files, self.ints, self.select = [out] + rest, ints, select

    def add(self, k: int, xs: np.ndarray) -> None:
        if self.select is not None:
            xs = self.select(xs)
        c, b, n = xs.shape
        step = max(1, _BLOCK_CELLS // max(n + 2, 1))
        for chain in range(c):
            for s in range(0, b, step):
                rows = xs[chain, s:s + step]
                block = np.column_stack([np.full(len(rows), chain),
                                         np.arange(k + s, k + s + len(rows)), rows])
                self.files[chain].write(_format_block(block.astype(np.float64, copy=False),
                                                      self.ints))
