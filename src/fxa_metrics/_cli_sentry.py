"""``fxa-metrics record --crash MESSAGE --sentry-dsn DSN``: check a deployment's Sentry wiring.

Like ``sentry-cli send-event``, but through fxa_metrics' own Sentry route: the
same owned client, the same scrubbing. The envelope is sent synchronously and
the command waits (at most ``--flush-timeout``) for the endpoint's answer: the
event id is printed only when Sentry accepted the event; otherwise the
command exits 1 with the reason (a host that does not resolve, nothing
listening, no answer in time, an HTTP error and Sentry's own explanation).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
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
    return [
        Crash(_raised(args.crash), tags={"fxa_metrics.cli": "record --crash"}, event_id=event_id)
    ]


class Answers:
    """What the Sentry endpoint said to each envelope the command sent."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.sent: list[tuple[str | None, str | None]] = []  # (event_id, failure reason)


def _make_transport(answers: Answers, options: dict[str, Any]) -> Any:
    from sentry_sdk.transport import Transport
    from sentry_sdk.utils import Dsn

    class WaitingTransport(Transport):
        """Sends each envelope synchronously and keeps the endpoint's answer."""

        def capture_envelope(self, envelope: Any) -> None:
            event = envelope.get_event()
            event_id = event.get("event_id") if event else None
            auth = Dsn(options["dsn"]).to_auth("fxa-metrics-cli")
            req = urllib.request.Request(
                auth.get_api_url(),
                data=envelope.serialize(),
                method="POST",
                headers={
                    "Content-Type": "application/x-sentry-envelope",
                    "X-Sentry-Auth": auth.to_header(),
                },
            )
            answers.sent.append((event_id, _post(req, answers.timeout)))

    return WaitingTransport(options)


def _post(req: urllib.request.Request, timeout: float) -> str | None:
    """None when the endpoint accepted the envelope, else why it was not delivered."""
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return None
    except urllib.error.HTTPError as e:
        why = e.headers.get("X-Sentry-Error") or e.read(200).decode("utf-8", "replace").strip()
        return f"{req.full_url} answered HTTP {e.code}" + (f": {why}" if why else "")
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            return f"{req.full_url} did not answer within {timeout:g} s"
        return f"{req.full_url} could not be reached: {e.reason}"
    except TimeoutError:
        return f"{req.full_url} did not answer within {timeout:g} s"
    except OSError as e:
        return f"{req.full_url} could not be reached: {e}"


def wait_for_answers(rt: Any, timeout: float) -> Answers | None:
    """Make the runtime's owned Sentry client send synchronously and keep the answers."""
    from ._sentry import SentrySink

    answers = None
    for sink in rt.sinks.get("sentry", ()):
        if isinstance(sink, SentrySink) and sink.owned:
            client = sink.client
            answers = Answers(timeout)
            client.transport = _make_transport(answers, client.options)
    return answers


def report(answers: Answers | None) -> int:
    """Print the event id of a delivered crash (exit 0), or why it was not delivered (exit 1)."""
    if answers is None or not answers.sent:
        print("sentry: not delivered: no event was sent (refused before sending)", file=sys.stderr)
        return 1
    code = 0
    for event_id, failure in answers.sent:
        if failure is None:
            print(f"sentry event_id: {event_id}")
        else:
            print(f"sentry: not delivered: {failure}", file=sys.stderr)
            code = 1
    return code
