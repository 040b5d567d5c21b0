"""Load metrics.yaml/pings.yaml with glean_parser and compile them into plain lookups.

glean_parser owns the format: we never validate the YAML ourselves. What we add
is (a) errors reshaped to name file, line and metric, (b) the server route's own
rules (which types and pings it can carry), and (c) a compiled form in which
the per-record check is a handful of dict look-ups.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import attrs

from ._common_metrics import COMMON_METRICS
from ._errors import DefinitionsError, Problem

# What the Glean server route can put in a ping. Upstream's Python outputter
# carries string, quantity, boolean, object and event; its Go outputter adds
# datetime and string_list, which are equally well-defined in the ping schema.
SERVER_ROUTE_TYPES = frozenset(
    {"string", "quantity", "boolean", "object", "event", "datetime", "string_list"}
)
# Pings every server app has without declaring them in pings.yaml.
BUILTIN_PINGS = ("events", "server-deletion-request")
DELETION_PING = "server-deletion-request"

# Glean's limits, in UTF-8 bytes as the SDK measures them.
MAX_STRING_BYTES = 255
MAX_EXTRA_BYTES = 500
MAX_STRING_LIST_ITEMS = 100
MAX_STRING_LIST_ITEM_BYTES = 100

StrPath = str | PathLike[str]


@attrs.frozen(slots=True)
class MetricDef:
    """One compiled metric definition."""

    identifier: str  # "category.name", as it appears in the ping
    category: str
    name: str
    type: str
    pings: tuple[str, ...]
    extras: Mapping[str, str]  # extra key -> extra type (events only)
    lifetime: str
    expires: str
    expired: bool
    disabled: bool
    file: str
    line: int | None
    has_data_review: bool


@attrs.frozen(slots=True)
class PingDef:
    """One ping the server route can submit, with the metrics it carries."""

    name: str
    # type -> metric identifiers, ordered as upstream orders them: so the
    # payload's "metrics" object has the same keys as the generated code's.
    metrics_by_type: Mapping[str, tuple[str, ...]]
    # (identifier, context attribute) of the common metrics in this ping.
    common: tuple[tuple[str, str], ...]
    custom: bool
    # The payload's shape, precompiled for the hot path: per type (in
    # metrics_by_type order), each metric with the context attribute that
    # fills it, or None when only an explicit value can.
    layout: tuple[tuple[str, tuple[tuple[str, str | None], ...]], ...] = ()


@attrs.frozen(slots=True)
class Definitions:
    """The compiled definitions. Build with :func:`load`."""

    metrics: Mapping[str, MetricDef]
    pings: Mapping[str, PingDef]
    # Findings that do not stop loading but that ``fxa-metrics check`` reports.
    warnings: tuple[Problem, ...] = ()

    def metric(self, identifier: str) -> MetricDef | None:
        return self.metrics.get(identifier)


_ERROR_FILE = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?:\s*$")


def _problem_from_glean_error(err: str, raw: Mapping[str, Any]) -> Problem:
    """Turn one glean_parser error string into a Problem naming file, line and metric.

    glean_parser formats errors as ``<file>:`` then a fenced YAML path to the
    offending node, then the message. We keep the message whole and recover
    the metric from the YAML path and its line from the raw YAML.
    """
    lines = err.splitlines()
    file, line = "<definitions>", None
    if lines:
        m = _ERROR_FILE.match(lines[0].strip())
        if m:
            file = m.group("file")
            line = int(m.group("line")) if m.group("line") else None
    path: list[str] = []  # [category, metric]: the first two levels of the fenced YAML path
    body: list[str] = []
    in_block = False
    base = -1
    for text in lines[1:]:
        stripped = text.strip()
        if stripped.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            indent = len(text) - len(text.lstrip())
            if base < 0:
                base = indent
            depth = (indent - base) // 2
            if depth == len(path) and depth < 2:
                if stripped.endswith(":"):
                    path.append(stripped[:-1].strip("'\""))
                elif depth == 0 and ": " in stripped:
                    # A bad metric *name* is shown inline: ``category: BadName``.
                    category, _, name = stripped.partition(": ")
                    path.extend(part.strip("'\"") for part in (category, name))
        elif stripped.startswith("Documentation for this node"):
            # What follows is the schema's documentation of the node, not the error.
            break
        elif stripped:
            body.append(stripped)
    metric = ".".join(path[:2]) if path else "-"
    if line is None and len(path) >= 2:
        node = raw.get(file, {}).get(path[0], {})
        node = node.get(path[1]) if isinstance(node, dict) else None
        defined = getattr(node, "defined_in", None)
        if defined:
            # The line of the metric's name, as MetricDef.line reports it: the
            # loader records the 0-based start of the metric's mapping, which
            # is the line after its name.
            line = defined["line"]
    message = " ".join(body) or err.strip()
    return Problem(file, metric, message, line)


def _expire_by_version(app_version: str | None) -> int | None:
    if not app_version:
        return None
    head = app_version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _expiry(expires: Any, major: int | None) -> tuple[bool, str | None, bool]:
    """(expired, problem, fatal) for one ``expires`` value, decided per metric.

    glean_parser decides by version for *every* metric once it is given a major
    version, and by date otherwise, raising a bare ValueError on the other
    kind. We are handed ``app_version`` by every service, so that would turn
    each date-expiring metric into a crash at configure(). Instead the value
    says which it is: an int is a major version, a string a yyyy-mm-dd date.
    A version with no numeric ``app_version`` to compare against is kept, and
    reported as a finding; a value that is neither is a load error.
    """
    from glean_parser import util

    if expires == "never":
        return False, None, False
    if expires == "expired":
        return True, None, False
    if isinstance(expires, int) and not isinstance(expires, bool):
        if expires <= 0:
            return False, f"expires: {expires} is not a positive major version", True
        if major is None:
            return (
                False,
                f"expires by version ({expires}) but app_version gives no major version "
                "to compare with; it is sent until one is configured",
                False,
            )
        return expires <= major, None, False
    try:
        date = util.parse_expiration_date(expires)
    except ValueError as e:
        return False, str(e), True
    # Glean's own rule: expired on the day itself.
    return date <= util.now_epoch().date(), None, False


def load(
    metrics_yaml: Sequence[StrPath] | StrPath,
    pings_yaml: Sequence[StrPath] | StrPath = (),
    *,
    app_version: str | None = None,
) -> Definitions:
    """Parse and compile definitions; raise :class:`DefinitionsError` listing every problem.

    ``app_version`` enables glean_parser's expiry by major version when the
    definitions use version numbers in ``expires``.
    """
    from glean_parser import metrics as gmetrics
    from glean_parser import parser, util

    paths = [Path(p) for p in _as_list(metrics_yaml) + _as_list(pings_yaml)]
    missing = [Problem(str(p), "-", "file not found") for p in paths if not p.is_file()]
    if missing:
        raise DefinitionsError(missing)
    if not paths:
        # Explicitly no definitions (e.g. a statsd-only CLI call): only the built-in
        # pings exist, and every Glean record is "undefined".
        return _compile({}, gmetrics, None)

    # Expiry is ours to decide (see _expiry), so glean_parser gets no version.
    config: dict[str, Any] = {"do_not_disable_expired": True}
    with warnings.catch_warnings():
        # glean_parser still uses jsonschema's deprecated RefResolver; that is its
        # concern, and must not fail a host that runs with -W error.
        warnings.filterwarnings("ignore", r"jsonschema\.RefResolver", DeprecationWarning)
        result = parser.parse_objects(paths, config)
        errors = list(result)
    if errors:
        raw = {}
        for p in paths:
            try:
                raw[str(p.resolve())] = util.load_yaml_or_json(p) or {}
            except Exception:  # the error itself already says what is wrong with it
                raw[str(p.resolve())] = {}
        raise DefinitionsError([_problem_from_glean_error(e, raw) for e in errors])
    tree = result.value
    return _compile(tree, gmetrics, _expire_by_version(app_version))


def _as_list(value: Sequence[StrPath] | StrPath) -> list[StrPath]:
    if isinstance(value, str | PathLike):
        return [value]
    return list(value)


def _compile(tree: Mapping[str, Any], gmetrics: Any, major: int | None) -> Definitions:
    problems: list[Problem] = []
    warnings: list[Problem] = []
    declared_pings: dict[str, bool] = {name: False for name in BUILTIN_PINGS}
    for name in tree.get("pings", {}):
        declared_pings[name] = True

    metrics: dict[str, MetricDef] = {}
    # ping -> type -> identifiers, in upstream's order (first appearance).
    by_ping: dict[str, dict[str, list[str]]] = {}
    for category, content in tree.items():
        if category in ("pings", "tags"):
            continue
        for mname, m in content.items():
            if not isinstance(m, gmetrics.Metric):
                continue
            identifier = f"{category}.{mname}"
            defined = getattr(m, "defined_in", None) or {}
            file = str(defined.get("filepath", "<definitions>"))
            line = defined.get("line")
            if m.type not in SERVER_ROUTE_TYPES:
                problems.append(
                    Problem(
                        file,
                        identifier,
                        f"type '{m.type}' cannot be sent by the Glean server route "
                        f"(it carries: {', '.join(sorted(SERVER_ROUTE_TYPES))}); "
                        "use the glean-sdk route for service-level metrics or change the type",
                        line,
                    )
                )
                continue
            pings = tuple(m.send_in_pings)
            for ping in pings:
                if ping not in declared_pings:
                    problems.append(
                        Problem(
                            file,
                            identifier,
                            f"send_in_pings names ping '{ping}', which is neither declared in "
                            f"pings.yaml nor built in ({', '.join(BUILTIN_PINGS)})",
                            line,
                        )
                    )
            extras: dict[str, str] = {}
            if m.type == "event":
                for key, meta in (getattr(m, "extra_keys", None) or {}).items():
                    extras[key] = str(meta.get("type", "string"))
            expired, expiry_problem, fatal = _expiry(m.expires, major)
            if expiry_problem is not None:
                (problems if fatal else warnings).append(
                    Problem(file, identifier, expiry_problem, line)
                )
            md = MetricDef(
                identifier=identifier,
                category=category,
                name=mname,
                type=m.type,
                pings=pings,
                extras=extras,
                lifetime=getattr(m.lifetime, "name", str(m.lifetime)),
                expires=str(m.expires),
                expired=expired,
                disabled=bool(m.disabled),
                file=file,
                line=line,
                has_data_review=bool(getattr(m, "data_reviews", None)),
            )
            metrics[identifier] = md
            if expired:
                warnings.append(Problem(file, identifier, f"expired ({m.expires})", line))
            if md.disabled:
                warnings.append(Problem(file, identifier, "disabled: true", line))
            if not md.has_data_review:
                warnings.append(Problem(file, identifier, "no data_reviews", line))
            for ping in pings:
                by_ping.setdefault(ping, {}).setdefault(m.type, []).append(identifier)
    if problems:
        raise DefinitionsError(problems)

    ping_defs: dict[str, PingDef] = {}
    for name, custom in declared_pings.items():
        types = by_ping.get(name, {})
        non_event = {t: tuple(ids) for t, ids in types.items() if t != "event"}
        common = tuple(
            (ident, COMMON_METRICS[ident])
            for ident in non_event.get("string", ())
            if ident in COMMON_METRICS
        )
        common_attr = dict(common)
        layout = tuple(
            (kind, tuple((ident, common_attr.get(ident)) for ident in ids))
            for kind, ids in non_event.items()
        )
        ping_defs[name] = PingDef(
            name=name, metrics_by_type=non_event, common=common, custom=custom, layout=layout
        )
    return Definitions(metrics=metrics, pings=ping_defs, warnings=tuple(warnings))


def check(
    metrics_yaml: Iterable[StrPath], pings_yaml: Iterable[StrPath] = (), **kw: Any
) -> list[Problem]:
    """Every problem ``fxa-metrics check`` reports: load errors, then expired/disabled/no review."""
    try:
        defs = load(list(metrics_yaml), list(pings_yaml), **kw)
    except DefinitionsError as e:
        return list(e.problems)
    return list(defs.warnings)
