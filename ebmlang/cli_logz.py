"""`ebmlang logz` (being written)."""

from __future__ import annotations


def add_parsers(sub, common, count) -> None:
    """The `logz` subcommand (none yet)."""


COMMANDS: dict = {}
