"""The ``lint``, ``stubs`` and ``tail`` subcommands of ``fxa-metrics`` (parsers and commands).

Kept out of ``cli.py``, which only calls :func:`add_parsers`, so the commands
that check call sites and running services stay beside the modules they drive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from threading import Event as StopFlag
from typing import Any

from ._definitions import Definitions, load
from ._errors import DefinitionsError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _definitions(args: argparse.Namespace) -> Definitions | None:
    """The definitions the arguments name, or None after printing why they do not load."""
    try:
        return load(args.metrics_yaml, args.pings_yaml or (), app_version=args.app_version)
    except DefinitionsError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        return None


def _add_definitions(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--metrics-yaml", nargs="+", required=required, default=[], metavar="PATH")
    p.add_argument("--pings-yaml", nargs="+", default=[], metavar="PATH")
    p.add_argument("--app-version", help="enables expiry by major version")


# ------------------------------------------------------------------ lint


def _cmd_lint(args: argparse.Namespace) -> int:
    from ._lint import lint_paths, summary

    defs = _definitions(args)
    if defs is None:
        return EXIT_USAGE
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"fxa-metrics lint: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    result = lint_paths(args.paths, defs, args.module)
    for problem in result.problems:
        print(problem)
    if args.show_unresolved:
        for call in result.unresolved:
            print(f"{call.path}:{call.line}:{call.col}: not resolved statically: {call.message}")
    print(summary(result), file=sys.stderr)
    return EXIT_PROBLEMS if result.problems else EXIT_OK


# ------------------------------------------------------------------ stubs


def _cmd_stubs(args: argparse.Namespace) -> int:
    from ._stubs import generate, staleness

    try:
        text = generate(args.metrics_yaml, args.pings_yaml, args.app_version)
    except DefinitionsError as e:
        for p in e.problems:
            print(str(p), file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        return stubs_are_current(Path(args.check), text, staleness)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def stubs_are_current(path: Path, expected: str, staleness: Any) -> int:
    """Exit status for ``stubs --check`` / ``check --stubs``: 0 when ``path`` is current."""
    try:
        current = path.read_text(encoding="utf-8")
    except OSError as e:
        print(f"{path}: cannot read the stubs: {e.strerror}", file=sys.stderr)
        return EXIT_PROBLEMS
    why = staleness(current, expected)
    if why is None:
        print(f"ok: {path} is up to date")
        return EXIT_OK
    print(f"{path}: stale: {why}; regenerate with `fxa-metrics stubs -o {path}`", file=sys.stderr)
    return EXIT_PROBLEMS


def check_stubs(args: argparse.Namespace) -> int:
    """``check --stubs FILE``: whether FILE matches the definitions ``check`` was given."""
    from ._stubs import generate, staleness

    try:
        text = generate(args.metrics_yaml, args.pings_yaml or (), args.app_version)
    except DefinitionsError:
        return EXIT_PROBLEMS  # check itself has printed why
    return stubs_are_current(Path(args.stubs), text, staleness)


# ------------------------------------------------------------------ tail


def _cmd_tail(args: argparse.Namespace) -> int:
    from ._context import uid_sha256
    from ._tail import Checker, Filters, MissingDependency, follow, schema_validator
    from ._tail_view import run

    if args.file is not None and not Path(args.file).is_file():
        print(f"fxa-metrics tail: no such file: {args.file}", file=sys.stderr)
        return EXIT_USAGE
    defs = _definitions(args) if args.metrics_yaml else None
    if args.metrics_yaml and defs is None:
        return EXIT_USAGE
    try:
        schema = None if args.no_schema else schema_validator()
    except MissingDependency as e:
        print(f"fxa-metrics tail: {e}", file=sys.stderr)
        return EXIT_USAGE
    filters = Filters(
        events=tuple(args.event),
        pings=tuple(args.ping),
        types=tuple(args.type),
        loggers=tuple(args.logger),
        uid_hashes=tuple(args.uid_hash) + tuple(uid_sha256(u) for u in args.uid),
        flagged=args.flagged,
    )
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    stop = StopFlag()
    if args.file is None:
        lines: Any = iter(sys.stdin.readline, "")
    elif args.follow:
        lines = follow(args.file, stop)
    else:
        lines = open(args.file, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    try:
        counts = run(lines, sys.stdout, Checker(schema, defs), filters, args.json, colour)
    except KeyboardInterrupt:  # the normal end of a live tail
        stop.set()
        print("fxa-metrics tail: interrupted", file=sys.stderr)
        return EXIT_OK
    finally:
        if hasattr(lines, "close"):
            lines.close()
    print(f"fxa-metrics tail: {counts}", file=sys.stderr)
    return EXIT_PROBLEMS if counts.rejected else EXIT_OK


# ------------------------------------------------------------------ parsers


def add_parsers(sub: Any) -> None:
    """Add ``lint``, ``stubs`` and ``tail`` to the ``fxa-metrics`` subparsers ``sub``."""
    p = sub.add_parser("lint", help="check record() call sites in Python sources, without running")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    _add_definitions(p)
    p.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="a module that re-exports fxa_metrics.record (modules named *_metrics_stubs are)",
    )
    p.add_argument("--show-unresolved", action="store_true", help="list calls lint cannot check")
    p.set_defaults(func=_cmd_lint)

    p = sub.add_parser("stubs", help="generate typed overloads of record() for mypy/pyright")
    _add_definitions(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--check", metavar="FILE", help="exit 1 if FILE is stale against the YAML")
    p.set_defaults(func=_cmd_stubs)

    p = sub.add_parser("tail", help="decode and check a running service's output")
    p.add_argument("file", nargs="?", metavar="FILE", help="read FILE instead of stdin")
    p.add_argument("-f", "--follow", action="store_true", help="keep reading FILE as it grows")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    for flag, dest, what in (
        ("--event", "event", "category.name of a Glean event (glob)"),
        ("--ping", "ping", "a Glean ping (document_type)"),
        ("--type", "type", "a MozLog Type"),
        ("--logger", "logger", "a MozLog Logger"),
        ("--uid-hash", "uid_hash", "account.user_id_sha256"),
        ("--uid", "uid", "a uid (matched by its hash)"),
    ):
        p.add_argument(flag, dest=dest, action="append", default=[], help=f"only lines of {what}")
    p.add_argument("--flagged", action="store_true", help="only lines flagged REJECT or WARN")
    p.add_argument("--no-schema", action="store_true", help="skip the pipeline schema")
    _add_definitions(p, required=False)
    p.set_defaults(func=_cmd_tail)
