"""`ebmlang map` (being written)."""

from __future__ import annotations


def add_parsers(sub, common, count) -> None:
    """The `map` subcommand (none yet)."""


COMMANDS: dict = {}
