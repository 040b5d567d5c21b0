"""``fxa-metrics record`` options for the statsd route (placeholder: none yet)."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the statsd options to ``record``."""


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """configure() keywords taken from the statsd options."""
    return {}


def records(args: argparse.Namespace) -> list[Any]:
    """The statsd records the options ask for, in order (raise ValueError on a malformed option)."""
    return []
