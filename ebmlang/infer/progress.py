"""Progress of long loops (sampling sweeps, annealing steps): a tqdm bar on a terminal, and
off one (a pipe, a CI log) a plain line on stderr at most every `EVERY` seconds, so a long
run is never silent until it ends and a log never fills with carriage returns."""

from __future__ import annotations

import sys
import time

EVERY = 10.0               # seconds between two progress lines off a terminal
_clock = time.monotonic    # (tests replace it)


def progress_bar(total: int, progress: bool | None, desc: str, unit: str):
    """None (never), a tqdm bar, or a `LineProgress`: `progress` False is never, True a bar
    wherever stderr goes, None a bar on a terminal and lines elsewhere."""
    if progress is False:
        return None
    if progress is None and not _isatty(sys.stderr):
        return LineProgress(total, desc, unit)
    try:
        from tqdm import tqdm
    except ImportError:
        return LineProgress(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """`update(n)` and `close()` as a tqdm bar has them; prints `desc done/total units (p%),
    T s elapsed, about R s left` when EVERY seconds have passed since the last line, and a
    last line at `close` when it printed any."""

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.printed = 0, False
        self.start = self.last = _clock()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = _clock()
        if now - self.last >= EVERY:
            self.last = now
            self._line(now)

    def close(self) -> None:
        if self.printed:
            self._line(_clock())

    def _line(self, now: float) -> None:
        spent = now - self.start
        text = (f"{self.desc} {self.done:,}/{self.total:,} {self.unit}"
                f"{'s' * (self.total != 1)} ({100 * self.done // max(self.total, 1)}%), "
                f"{spent:.0f} s elapsed")
        if 0 < self.done < self.total:
            text += f", about {spent * (self.total - self.done) / self.done:.0f} s left"
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self.printed = True
