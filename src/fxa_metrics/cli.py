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

from . import _cli_sentry, _cli_statsd, _cli_tools, _facade
from ._context import bind
from ._definitions import Definitions, check
from ._errors import (
    DefinitionsError,
    FxaMetricsError,
    InvalidExtraError,
    InvalidValueError,
    Problem,
    RecordError,
    UndefinedMetricError,
)
from ._records import Event, Metrics

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


# ------------------------------------------------------------------ check


def _lint(paths: Sequence[str], app_version: str | None) -> list[Problem]:
    """glean_parser's own linter (glinter): its ERROR nits are problems too."""
    import io
    from pathlib import Path

    from glean_parser import lint, parser

    config: dict[str, Any] = {}
    major = (app_version or "").split(".", 1)[0]
    if major.isdigit():
        config["expire_by_version"] = int(major)
    try:
        result = parser.parse_objects([Path(p) for p in paths], config)
        if list(result):
            return []  # load errors are reported by check() already
        nits = lint.lint_metrics(result.value, config, file=io.StringIO())
    except (ValueError, OSError):
        # check() already reported these precisely: a missing file, or
        # version-number `expires` that glean_parser cannot lint without a major version.
        return []
    out = []
    for nit in nits:
        if nit.check_type == lint.CheckType.error:
            obj = result.value.get(nit.name.split(".")[0], {}).get(nit.name.split(".")[-1])
            where = getattr(obj, "defined_in", None) or {}
            out.append(
                Problem(
                    str(where.get("filepath", paths[0])),
                    nit.name,
                    f"glinter {nit.check_name}: {nit.msg}",
                    where.get("line"),
                )
            )
    return out


def _cmd_check(args: argparse.Namespace) -> int:
    problems = check(args.metrics_yaml, args.pings_yaml or (), app_version=args.app_version)
    problems += _lint([*args.metrics_yaml, *(args.pings_yaml or ())], args.app_version)
    for p in problems:
        print(str(p), file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    print("ok: definitions are valid for the Glean server route")
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


def _cmd_record(args: argparse.Namespace) -> int:
    glean_wanted = args.event is not None or bool(args.metric)
    for name in ("app_id", "app_version", "channel"):
        if glean_wanted and getattr(args, name) is None:
            print(f"fxa-metrics record: --{name.replace('_', '-')} is required", file=sys.stderr)
            return EXIT_USAGE
    if glean_wanted and not args.metrics_yaml:
        print("fxa-metrics record: --metrics-yaml is required", file=sys.stderr)
        return EXIT_USAGE
    # The fxa_metrics logger's drop warnings would repeat what we print below.
    logging.getLogger("fxa_metrics").addHandler(logging.NullHandler())
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
            strict=True,  # so a bad record reports why; --strict decides the exit code
            **_cli_statsd.settings(args),
            **_cli_sentry.settings(args),
        )
    except DefinitionsError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        return EXIT_USAGE
    except FxaMetricsError as e:
        print(f"fxa-metrics record: {e}", file=sys.stderr)
        return EXIT_USAGE
    rt = _facade.get_runtime()
    assert rt is not None
    _cli_statsd.echo_sent(rt, sys.stdout)
    defs = rt.defs
    before = rt.stats.snapshot().drops
    reported: list[str] = []
    code = EXIT_OK
    try:
        records: list[Any] = []
        try:
            glean = _glean_record(args, defs) if glean_wanted else None
            if glean is not None:
                records.append(glean)
        except RecordError as e:
            print(f"{_where(defs, e)}{e}", file=sys.stderr)
            if args.strict:
                return EXIT_USAGE
            reported.append(e.reason)
        try:
            records.extend(_cli_statsd.records(args))
            records.extend(_cli_sentry.records(args))
        except ValueError as e:
            print(f"fxa-metrics record: {e}", file=sys.stderr)
            return EXIT_USAGE
        if not records and not reported:
            print(
                "fxa-metrics record: nothing to record (give an EVENT, --metric, ...)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        with bind(
            uid=args.uid,
            user_agent=args.user_agent,
            ip_address=args.ip_address,
            metrics_opt_out=True if args.opted_out else None,
        ):
            for rec in records:
                try:
                    _facade.record(rec)
                except RecordError as e:
                    print(f"{_where(defs, e)}{e}", file=sys.stderr)
                    if args.strict:
                        code = EXIT_USAGE
                        break
    finally:
        after = rt.stats.snapshot().drops
        _facade.reset(timeout=args.flush_timeout)
    for reason in reported:
        print(f"dropped: {reason}", file=sys.stderr)
    if code == EXIT_OK:
        for reason, n in sorted(after.items()):
            for _ in range(n - before.get(reason, 0)):
                print(f"dropped: {reason}", file=sys.stderr)
    return code


# ------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fxa-metrics", description=__doc__)
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
    p.add_argument("--strict", action="store_true", help="exit 2 on a bad record")
    p.add_argument("--metrics-yaml", nargs="+", default=[], metavar="PATH")
    p.add_argument("--pings-yaml", nargs="+", default=[], metavar="PATH")
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
