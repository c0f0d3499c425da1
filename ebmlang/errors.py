"""User errors and internal errors, kept apart.

A `UserError` is something the user can fix (a bad model, data file or flag). It carries a
location and renders as ``FILE:LINE:COL: error: MESSAGE`` followed by the source line and a
caret. The command line prints it and exits with status 1. Anything else that escapes is an
internal bug (exit status 2) and is reported as such.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a source text: 1-based line and column of its start, 0-based offsets."""

    line: int
    col: int
    end_line: int = 0
    end_col: int = 0
    start: int = 0
    end: int = 0


NO_SPAN = Span(0, 0)


class Source:
    """A named source text, so errors can quote the offending line."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self.lines = text.splitlines()

    def line(self, n: int) -> str | None:
        if 1 <= n <= len(self.lines):
            return self.lines[n - 1]
        return None


@dataclass(frozen=True)
class Note:
    """A note attached to an error; with a span and source it is shown with its line and caret."""

    message: str
    span: Span | None = None
    source: Source | None = None


def _located(name: str, span: Span | None, source: Source | None, kind: str,
             message: str) -> list[str]:
    """`NAME:LINE:COL: KIND: MESSAGE`, then the source line and a caret under the span."""
    if span is None or span.line <= 0:
        return [f"{name}: {kind}: {message}"]
    out = [f"{name}:{span.line}:{span.col}: {kind}: {message}"]
    text = source.line(span.line) if source is not None else None
    if text is not None:
        width = 1
        if span.end_line == span.line and span.end_col > span.col:
            width = span.end_col - span.col
        text, col = _window(text, span.col)
        width = max(1, min(width, len(text) - col + 2))
        prefix = "".join(ch if ch == "\t" else " " for ch in text[: col - 1])
        out.append(f"    {text}")
        out.append(f"    {prefix}{'^' * width}")
    return out


SHOWN = 100  # characters of a source line quoted under an error, at most (plus "...")


def _window(text: str, col: int) -> tuple[str, int]:
    """(at most SHOWN characters of a line around column `col`, with "..." where cut; the
    column in it): a CSV or a minified file passed as the model never floods the terminal."""
    if len(text) <= SHOWN:
        return text, col
    start = min(max(col - 1 - SHOWN // 4, 0), len(text) - SHOWN)
    head = "..." if start > 0 else ""
    tail = "..." if start + SHOWN < len(text) else ""
    return head + text[start:start + SHOWN] + tail, col - start + len(head)


class UserError(Exception):
    """An error the user caused and can fix; rendered with file, line, column and caret.

    `notes` are plain strings (`note: ...` lines) or `Note`s pointing at another place."""

    def __init__(self, message: str, span: Span | None = None, source: Source | None = None,
                 file: str | None = None, notes: tuple[str | Note, ...] = ()):
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.file = file
        self.notes = tuple(notes)

    def with_source(self, source: Source) -> "UserError":
        if self.source is None and self.file is None:
            self.source = source
        return self

    def with_notes(self, *notes: str | Note) -> "UserError":
        self.notes += notes
        return self

    def render(self) -> str:
        name = self.source.name if self.source is not None else (self.file or "ebmlang")
        out = _located(name, self.span, self.source, "error", self.message)
        for n in self.notes:
            if isinstance(n, Note) and n.source is not None:
                out += _located(n.source.name, n.span, n.source, "note", n.message)
            else:
                out.append(f"note: {n.message if isinstance(n, Note) else n}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


class InternalError(Exception):
    """A bug in ebmlang, never the user's fault."""


def did_you_mean(name: str, candidates) -> str:
    """' (did you mean 'x'?)' when a candidate is close to `name`, else ''."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def count(n: int, singular: str, plural: str | None = None) -> str:
    """`1 index`, `2 indices`: a number and its noun, plural when n != 1."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"
