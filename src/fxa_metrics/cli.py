"""The ``fxa-metrics`` command: check definitions, record exactly as a service would, run the demo.

``record`` goes through the very same facade a service uses (definitions,
consent, sinks), so what it prints is what the pipeline would receive.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from . import _cli_check, _cli_sentry, _cli_statsd, _cli_tools, _facade
from .__about__ import __version__
from ._context import bind
from ._definitions import Definitions, routes
from ._errors import (
    DefinitionsError,
    FxaMetricsError,
    InvalidExtraError,
    InvalidValueError,
    RecordError,
    UndefinedMetricError,
)
from ._records import DeletionRequest, Event, Metrics
from ._runtime import Runtime
from ._stats import StatsSnapshot

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


# ------------------------------------------------------------------ check


def _cmd_check(args: argparse.Namespace) -> int:
    problems = _cli_check.check(args.metrics_yaml, args.pings_yaml or (), args.app_version)
    for p in problems:
        print(str(p), file=sys.stderr)
    # issue 13: which route each metric takes (by its type), problems or not.
    route_lines = [f"route: {r}" for r in routes(args.metrics_yaml)]
    if problems:
        print("\n".join(route_lines), file=sys.stdout)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    print("\n".join(["ok: definitions are valid", *route_lines]))
    return EXIT_OK


# ------------------------------------------------------------------ docs


def _cmd_docs(args: argparse.Namespace) -> int:
    """Render the metrics dictionary with glean_parser's own Markdown outputter."""
    import contextlib
    import tempfile
    from pathlib import Path

    from glean_parser import translate

    from ._definitions import load

    try:
        load(args.metrics_yaml, args.pings_yaml or ())
    except DefinitionsError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        return EXIT_PROBLEMS
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        # glean_parser chats on stdout; stdout is for the document alone.
        paths = [Path(p) for p in [*args.metrics_yaml, *(args.pings_yaml or ())]]
        rc = translate.translate(paths, "markdown", Path(tmp), {"project_title": args.title}, {})
        text = (Path(tmp) / "metrics.md").read_text() if rc == 0 else ""
    if rc:
        return EXIT_PROBLEMS
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# ------------------------------------------------------------------ record


def _convert(defs: Definitions, metric: str, field: str, kind: str, raw: str, extra: bool) -> Any:
    """A command-line string as the Python value the definition's type wants."""
    err = InvalidExtraError if extra else InvalidValueError
    try:
        if kind == "string":
            return raw
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return raw.lower() == "true"
        if kind == "quantity":
            return int(raw)
        if kind == "datetime":
            return _dt.datetime.fromisoformat(raw)
        if kind in ("object", "string_list"):
            return json.loads(raw)
    except ValueError as e:
        raise err(metric, field, f"cannot read {raw!r} as {kind}: {e}") from None
    return raw


def _glean_record(args: argparse.Namespace, defs: Definitions) -> Any:
    metrics: dict[str, Any] = {}
    for ident, raw in args.metric:
        md = defs.metric(ident)
        if md is None:
            raise UndefinedMetricError(ident, None, "is not defined in the loaded metrics.yaml")
        metrics[ident] = _convert(defs, ident, "value", md.type, raw, extra=False)
    if args.event is None:
        return Metrics(metrics, ping=args.ping) if metrics else None
    md = defs.metric(args.event)
    extra: dict[str, Any] = {}
    for key, raw in args.extra:
        kind = md.extras.get(key, "string") if md is not None else "string"
        extra[key] = _convert(defs, args.event, key, kind, raw, extra=True)
    return Event(args.event, extra=extra, metrics=metrics, ping=args.ping)


def _where(defs: Definitions | None, err: RecordError) -> str:
    md = defs.metric(err.metric) if defs is not None else None
    if md is None:
        return ""
    return f"{md.file}:{md.line}: " if md.line else f"{md.file}: "


def _usage(message: str) -> int:
    print(f"fxa-metrics record: {message}", file=sys.stderr)
    return EXIT_USAGE


def _glean_wanted(args: argparse.Namespace) -> bool:
    return args.event is not None or bool(args.metric) or args.deletion_request


def _missing_option(args: argparse.Namespace) -> str | None:
    if not _glean_wanted(args):
        return None
    for name in ("app_id", "app_version", "channel"):
        if getattr(args, name) is None:
            return f"--{name.replace('_', '-')} is required"
    if not args.metrics_yaml:
        # Even for a deletion request: its uid metrics are defined there.
        return "--metrics-yaml is required"
    return None


class _Details(logging.Handler):
    """Keeps the fxa_metrics logger's drop warnings: their detail is the precise reason."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        # Stats logs (reason, metric, ": detail" or ""); only the detail is news.
        if isinstance(args, tuple) and len(args) == 3 and isinstance(args[2], str):
            if args[2]:
                self.lines.append(args[2].removeprefix(": "))
        else:
            self.lines.append(record.getMessage())


_details = _Details()


def _configure(args: argparse.Namespace) -> int:
    """Configure exactly as a production service would (strict only with --strict)."""
    # Printed as the precise reason above each "dropped:" line, not as log lines.
    _details.lines.clear()
    logging.getLogger("fxa_metrics").addHandler(_details)
    logging.getLogger("fxa_metrics").propagate = False
    try:
        _facade.configure(
            service=args.service,
            app_id=args.app_id or "fxa_metrics_cli",
            app_version=args.app_version or "0",
            channel=args.channel or "cli",
            glean_logger=args.logger,
            metrics_yaml=args.metrics_yaml or (),
            pings_yaml=args.pings_yaml or (),
            # Production truncates over-limit values, sends and counts them;
            # --strict raises on them (exit 2), as a strict service would.
            strict=args.strict,
            **_cli_statsd.settings(args),
            **_cli_sentry.settings(args),
        )
    except DefinitionsError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        return EXIT_USAGE
    except FxaMetricsError as e:
        return _usage(str(e))
    return EXIT_OK


def _build_records(args: argparse.Namespace, defs: Definitions) -> tuple[list[Any], list[str]]:
    """The records the options ask for, and the reasons of those already refused.

    Raises ValueError (a usage error) for a malformed option, RecordError
    (in strict mode) for a Glean value the definitions refuse.
    """
    records: list[Any] = []
    refused: list[str] = []
    try:
        glean = _glean_record(args, defs) if args.event is not None or args.metric else None
        if glean is not None:
            records.append(glean)
    except RecordError as e:
        print(f"{_where(defs, e)}{e}", file=sys.stderr)
        if args.strict:
            raise
        refused.append(e.reason)
    if args.deletion_request:
        records.append(DeletionRequest())  # the uid comes from --uid, as a request binds it
    records.extend(_cli_statsd.records(args))
    records.extend(_cli_sentry.records(args))
    return records, refused


def _send(args: argparse.Namespace, defs: Definitions, records: list[Any]) -> int:
    with bind(
        uid=args.uid,
        user_agent=args.user_agent,
        ip_address=args.ip_address,
        metrics_opt_out=True if args.opted_out else None,
    ):
        for rec in records:
            try:
                _facade.record(rec)
            except RecordError as e:  # strict mode only
                print(f"{_where(defs, e)}{e}", file=sys.stderr)
                return EXIT_USAGE
    return EXIT_OK


def _report(refused: list[str], before: StatsSnapshot, after: StatsSnapshot) -> None:
    """What production would have counted: drops, and values truncated but sent."""
    for line in _details.lines:
        print(line, file=sys.stderr)
    for reason in refused:
        print(f"dropped: {reason}", file=sys.stderr)
    for reason, n in sorted(after.drops.items()):
        for _ in range(n - before.drops.get(reason, 0)):
            print(f"dropped: {reason}", file=sys.stderr)
    for reason, n in sorted(after.errors.items()):
        for _ in range(n - before.errors.get(reason, 0)):
            print(f"counted: {reason} (sent truncated, as production does)", file=sys.stderr)


def _run(args: argparse.Namespace, rt: Runtime) -> int:
    before = rt.stats.snapshot()
    try:
        records, refused = _build_records(args, rt.defs)
    except RecordError:
        return EXIT_USAGE
    except ValueError as e:
        return _usage(str(e))
    if not records and not refused:
        return _usage("nothing to record (give an EVENT, --metric, --deletion-request, ...)")
    code = _send(args, rt.defs, records)
    _facade.flush(timeout=args.flush_timeout)
    if code == EXIT_OK:
        _report(refused, before, rt.stats.snapshot())
    return code


def _cmd_record(args: argparse.Namespace) -> int:
    missing = _missing_option(args)
    if missing is not None:
        return _usage(missing)
    code = _configure(args)
    if code != EXIT_OK:
        return code
    rt = _facade.get_runtime()
    assert rt is not None
    _cli_statsd.echo_sent(rt, sys.stdout)
    waiting = _cli_sentry.wait_for_answers(rt, args.flush_timeout)
    try:
        code = _run(args, rt)
    finally:
        _facade.reset(timeout=args.flush_timeout)
    if code == EXIT_OK and args.crash is not None:
        code = _cli_sentry.report(waiting)
    return code


# ------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fxa-metrics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fxa-metrics {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate metrics.yaml/pings.yaml for the Glean server route")
    p.add_argument("--metrics-yaml", nargs="+", required=True, metavar="PATH")
    p.add_argument("--pings-yaml", nargs="+", default=[], metavar="PATH")
    p.add_argument("--app-version", help="enables expiry by major version")
    p.add_argument("--stubs", metavar="FILE", help="also fail if these generated stubs are stale")
    p.set_defaults(func=_cmd_check_and_stubs)

    p = sub.add_parser("docs", help="render the metrics dictionary to Markdown")
    p.add_argument("--metrics-yaml", nargs="+", required=True, metavar="PATH")
    p.add_argument("--pings-yaml", nargs="+", default=[], metavar="PATH")
    p.add_argument("--title", default="Metrics", help="the document's title")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=_cmd_docs)

    p = sub.add_parser("record", help="record exactly as a service would; print what is emitted")
    p.add_argument("event", nargs="?", metavar="EVENT", help="category.name of a Glean event")
    p.add_argument("--extra", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--metric", action="append", type=_key_value, default=[], metavar="CATEGORY.NAME=VALUE"
    )
    p.add_argument("--ping", help="the ping, when send_in_pings leaves a choice")
    p.add_argument("--uid")
    p.add_argument("--user-agent")
    p.add_argument("--ip-address")
    p.add_argument("--opted-out", action="store_true", help="the user has set metricsOptOutAt")
    p.add_argument("--strict", action="store_true", help="exit 2 on a bad or over-limit record")
    p.add_argument(
        "--deletion-request",
        action="store_true",
        help="send the server-deletion-request ping for --uid (consent never gates it)",
    )
    # One PATH per option, repeatable: nargs="+" would swallow the EVENT after it.
    p.add_argument("--metrics-yaml", action="append", default=[], metavar="PATH")
    p.add_argument("--pings-yaml", action="append", default=[], metavar="PATH")
    p.add_argument("--app-id")
    p.add_argument("--app-version")
    p.add_argument("--channel")
    p.add_argument("--logger", help="MozLog Logger of Glean lines (default: <service>-glean)")
    p.add_argument("--service", default="fxa-metrics-cli", help="the service name (MozLog Logger)")
    p.add_argument("--flush-timeout", type=float, default=5.0, metavar="SECONDS")
    _cli_statsd.add_arguments(p)
    _cli_sentry.add_arguments(p)
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("demo", help="run the example service on embedded local receivers")
    p.set_defaults(func=_cmd_demo)
    _cli_tools.add_parsers(sub)  # lint, stubs, tail
    return parser


def _cmd_check_and_stubs(args: argparse.Namespace) -> int:
    """``check``, then (with ``--stubs FILE``) whether the generated stubs are stale."""
    code = _cmd_check(args)
    if args.stubs is None:
        return code
    return max(code, _cli_tools.check_stubs(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import main as demo_main

    code: int = demo_main()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
