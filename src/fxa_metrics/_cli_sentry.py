"""``fxa-metrics record`` options for the Sentry route (placeholder: none yet)."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the Sentry options to ``record``."""


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """configure() keywords taken from the Sentry options."""
    return {}


def records(args: argparse.Namespace) -> list[Any]:
    """The Sentry records the options ask for, in order (raise ValueError on a malformed option)."""
    return []
