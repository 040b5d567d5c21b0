"""``fxa-metrics record`` options for the statsd route.

They build ordinary records and pass them through ``record()``, so a shell
check of a deployment's wiring meets the very same name, tag, PII and prefix
rules a service does::

    fxa-metrics record --count fxa.login --tag result=ok \\
        --statsd-host statsd.internal --statsd-prefix fxa-auth-server.

``--tag`` applies to every statsd record of the command. A refused record is
reported like a bad Glean record: ``dropped: pii`` (exit 0), or exit 2 with
``--strict``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from ._records import Counter, Gauge, Set, Timing

_DEST = "statsd_records"


class _InOrder(argparse.Action):
    """Collects every statsd option into one list, so records keep the command line's order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = getattr(namespace, _DEST, None) or []
        setattr(namespace, _DEST, [*items, (self.const, values)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the statsd options to ``record``."""
    group = parser.add_argument_group("statsd")
    group.add_argument("--timing", dest=_DEST, action=_InOrder, const="timing", metavar="NAME=MS")
    group.add_argument(
        "--count",
        dest=_DEST,
        action=_InOrder,
        const="count",
        metavar="NAME[=N]",
        help="a counter increment (N defaults to 1)",
    )
    group.add_argument("--gauge", dest=_DEST, action=_InOrder, const="gauge", metavar="NAME=VALUE")
    group.add_argument("--set", dest=_DEST, action=_InOrder, const="set", metavar="NAME=VALUE")
    group.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag on every statsd record (repeatable)",
    )
    group.add_argument("--statsd-host", metavar="H", help="default: $STATSD_HOST")
    group.add_argument("--statsd-port", type=int, metavar="P", help="default: $STATSD_PORT or 8125")
    group.add_argument("--statsd-prefix", metavar="X", help="e.g. fxa-auth-server.")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """configure() keywords taken from the statsd options (unset ones fall back to the env)."""
    out: dict[str, Any] = {}
    for key in ("statsd_host", "statsd_port", "statsd_prefix"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    return out


def _split(option: str, text: str, value_required: bool = True) -> tuple[str, str | None]:
    name, sep, value = text.partition("=")
    if not name or (value_required and (not sep or not value)):
        form = "NAME[=N]" if not value_required else "NAME=VALUE"
        raise ValueError(f"--{option} expects {form}, got {text!r}")
    return name, (value if sep else None)


def _num(option: str, text: str, raw: str) -> int | float:
    # An int stays an int on the wire ("5|g", not "5.0|g").
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"--{option} {text!r}: {raw!r} is not a number") from None


def _tags(args: argparse.Namespace) -> dict[str, str]:
    tags: dict[str, str] = {}
    for text in args.tag:
        key, sep, value = text.partition("=")
        if not key or not sep:
            raise ValueError(f"--tag expects KEY=VALUE, got {text!r}")
        tags[key] = value  # an empty value is left to the route's rules, which refuse it
    return tags


def records(args: argparse.Namespace) -> list[Any]:
    """The statsd records the options ask for, in order (raise ValueError on a malformed option)."""
    wanted: list[tuple[str, str]] = getattr(args, _DEST, None) or []
    if not wanted:
        if args.tag:
            raise ValueError("--tag goes with --timing, --count, --gauge or --set")
        return []
    if args.statsd_host is None and not os.environ.get("STATSD_HOST"):
        raise ValueError("statsd records need --statsd-host (or STATSD_HOST in the environment)")
    tags = _tags(args)
    out: list[Any] = []
    for kind, text in wanted:
        name, raw = _split(kind, text, value_required=kind != "count")
        if kind == "timing":
            out.append(Timing(name, _num(kind, text, raw or ""), tags=tags))
        elif kind == "count":
            try:
                n = int(raw) if raw is not None else 1
            except ValueError:
                raise ValueError(f"--count {text!r}: {raw!r} is not an integer") from None
            out.append(Counter(name, n, tags=tags))
        elif kind == "gauge":
            out.append(Gauge(name, _num(kind, text, raw or ""), tags=tags))
        else:
            out.append(Set(name, raw or "", tags=tags))
    return out


def echo_sent(rt: Any, out: Any) -> None:
    """Print every datagram the runtime's statsd sinks send, as sent (prefix, rate and all).

    The engineer checking a deployment's wiring sees the very bytes that went
    to ``--statsd-host``, not a re-rendering of them.
    """
    from ._statsd import StatsdSink

    for sink in rt.sinks.get("statsd", ()):
        if isinstance(sink, StatsdSink):
            client = sink.client
            send = client._send

            def echoing(data: str, send: Any = send) -> None:
                send(data)
                print(f"statsd: {data}", file=out)

            client._send = echoing
