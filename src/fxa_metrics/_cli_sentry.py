"""``fxa-metrics record --crash MESSAGE --sentry-dsn DSN``: check a deployment's Sentry wiring.

Like ``sentry-cli send-event``, but through fxa_metrics' own Sentry route: the
same owned client, the same scrubbing, flushed (bounded by
``--flush-timeout``) before the command exits. The event id is printed so
the event can be looked up in Sentry.
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

from ._records import Crash


class CrashTest(RuntimeError):
    """The exception ``--crash`` raises (and captures): easy to find and to ignore in Sentry."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the Sentry options to ``record``."""
    group = parser.add_argument_group("Sentry")
    group.add_argument(
        "--crash",
        metavar="MESSAGE",
        help="raise a test exception with MESSAGE and capture it through the Sentry route",
    )
    group.add_argument(
        "--sentry-dsn",
        metavar="DSN",
        help="the Sentry DSN (default: $SENTRY_DSN)",
    )
    group.add_argument(
        "--environment",
        metavar="E",
        help="the Sentry environment (default: the --channel)",
    )


def _dsn(args: argparse.Namespace) -> str | None:
    dsn: str | None = args.sentry_dsn or os.environ.get("SENTRY_DSN") or None
    return dsn


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """configure() keywords taken from the Sentry options."""
    out: dict[str, Any] = {}
    dsn = _dsn(args)
    if dsn:
        out["sentry_dsn"] = dsn
    if args.environment:
        out["sentry_environment"] = args.environment
    return out


def _raised(message: str) -> CrashTest:
    # Really raised, so the event carries a stack trace as a real crash would.
    try:
        raise CrashTest(message)
    except CrashTest as e:
        return e


def records(args: argparse.Namespace) -> list[Any]:
    """The Sentry records the options ask for, in order (raise ValueError on a malformed option)."""
    if args.crash is None:
        return []
    if not _dsn(args):
        # A command-line process has no host Sentry to fall back on.
        raise ValueError("--crash needs --sentry-dsn DSN (or SENTRY_DSN in the environment)")
    event_id = uuid.uuid4().hex
    print(f"sentry event_id: {event_id}")
    return [
        Crash(_raised(args.crash), tags={"fxa_metrics.cli": "record --crash"}, event_id=event_id)
    ]
