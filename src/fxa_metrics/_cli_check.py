"""``fxa-metrics check``: every problem in the definitions, in one run, each located.

Three passes, all of them always run: glean_parser's load (its errors keep
their file, line and metric, category or ping), the server route's own rules
on whatever glean_parser could load (unsupported types, undeclared pings,
expired, disabled, no data review), and glean_parser's linter (glinter) when
the files load cleanly.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._definitions import _compile, _expire_by_version, _problem_from_glean_error
from ._errors import DefinitionsError, Problem

_FIRST_LINE = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?:(?: (?P<header>.*))?$")
# Where glean_parser names the node in its header or message, rather than in a
# fenced YAML path (which _problem_from_glean_error reads).
_NAMED = [
    re.compile(r"^On instance '?(?P<name>[^' ]+)'?$"),
    re.compile(r"^For (?:category|ping) '(?P<name>[^']+)'$"),
    re.compile(r"^For (?P<name>[\w.-]+)$"),
    re.compile(r"Duplicate metric name '(?P<name>[^']+)'"),
    re.compile(r"Duplicate (?:ping|tag) named? '(?P<name>[^']+)'"),
]
_YAML_LINE = re.compile(r"line\s+(?P<line>\d+), column")


def _named(header: str, message: str) -> str | None:
    for pattern in _NAMED:
        m = pattern.search(header) or pattern.search(message)
        if m:
            return m.group("name")
    return None


def _split_name(name: str, text: str) -> list[str]:
    """[category, metric] or [ping/category]: categories may contain dots."""
    if re.search(rf"^{re.escape(name)}:", text, re.M) or re.search(
        rf"^['\"]{re.escape(name)}['\"]:", text, re.M
    ):
        return [name]
    category, _, metric = name.rpartition(".")
    return [category, metric] if category else [name]


def _line_of(text: str, path: list[str]) -> int | None:
    """The 1-based line of ``path`` (top-level key, then a key under it); the last one wins.

    The last: a duplicated key's second occurrence is the offending one.
    """
    lines = text.splitlines()
    top = [
        i
        for i, line in enumerate(lines)
        if re.match(rf"^['\"]?{re.escape(path[0])}['\"]?\s*:", line)
    ]
    if not top:
        return None
    start = top[-1]
    if len(path) == 1:
        return start + 1
    for i in range(start + 1, len(lines)):
        if re.match(r"^\S", lines[i]):
            break
        if re.match(rf"^\s+['\"]?{re.escape(path[1])}['\"]?\s*:", lines[i]):
            return i + 1
    return start + 1


def _node_at(text: str, line: int) -> str | None:
    """The key defined at a 1-based line: ``category.metric``, or a top-level key."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return None
    m = re.match(r"^(\s*)['\"]?([^'\":\s]+)['\"]?\s*:", lines[line - 1])
    if m is None:
        return None
    if not m.group(1):
        return m.group(2)
    for above in reversed(lines[: line - 1]):
        top = re.match(r"^['\"]?([^'\":\s]+)['\"]?\s*:", above)
        if top:
            return f"{top.group(1)}.{m.group(2)}"
    return None


def _read(file: str) -> str:
    try:
        return Path(file).read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def locate(err: str, raw: Mapping[str, Any]) -> Problem:
    """One glean_parser error as a Problem with its file, line and metric/category/ping."""
    base = _problem_from_glean_error(err, raw)
    first, _, rest = err.partition("\n")
    m = _FIRST_LINE.match(first.strip())
    file, line, header = base.file, base.line, ""
    if m:
        file = m.group("file") if file == "<definitions>" else file
        line = line or (int(m.group("line")) if m.group("line") else None)
        header = m.group("header") or ""
    message = base.message
    if header and header not in message:
        message = f"{header}: {message}"
    metric = base.metric
    text = _read(file)
    if metric == "-":
        metric = _named(header, rest) or "-"
    if line is None and metric != "-":
        line = _line_of(text, _split_name(metric, text))
    if line is None:
        y = _YAML_LINE.search(" ".join(rest.split()))
        line = int(y.group("line")) if y else None
    if line is None and "$schema" in rest:
        line = _line_of(text, ["$schema"])
    if line is None and "can not be empty" in rest:
        line = 1
    if metric == "-" and line is not None:
        metric = _node_at(text, line) or "-"
    return Problem(file, metric, message, line)


def _parse(paths: list[Path]) -> tuple[list[str], Any, dict[str, Any]]:
    from glean_parser import parser, util

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"jsonschema\.RefResolver", DeprecationWarning)
        result = parser.parse_objects(paths, {"do_not_disable_expired": True})
        errors = list(result)
    raw: dict[str, Any] = {}
    if errors:
        for p in paths:
            try:
                raw[str(p.resolve())] = util.load_yaml_or_json(p) or {}
            except Exception:  # the error itself already says what is wrong with it
                raw[str(p.resolve())] = {}
    return errors, result.value, raw


def _rules(tree: Any, app_version: str | None) -> list[Problem]:
    """The server route's rules on whatever glean_parser loaded: problems, then findings."""
    from glean_parser import metrics as gmetrics

    try:
        defs = _compile(tree or {}, gmetrics, _expire_by_version(app_version))
    except DefinitionsError as e:
        return [*e.problems, *e.findings]
    return list(defs.warnings)


def _lint(tree: Any, paths: Sequence[Path], app_version: str | None) -> list[Problem]:
    """glean_parser's own linter (glinter): its ERROR nits are problems too."""
    from glean_parser import lint

    config: dict[str, Any] = {}
    major = (app_version or "").split(".", 1)[0]
    if major.isdigit():
        config["expire_by_version"] = int(major)
    try:
        nits = lint.lint_metrics(tree, config, file=io.StringIO())
    except ValueError:
        # Version-number `expires` that glean_parser cannot lint without a
        # major version: the rules pass already reported it.
        return []
    out = []
    for nit in nits:
        if nit.check_type == lint.CheckType.error:
            category, _, name = nit.name.rpartition(".")
            obj = tree.get(category, {}).get(name)
            if obj is None:
                obj = tree.get("pings", {}).get(nit.name)
            where = getattr(obj, "defined_in", None) or {}
            file, line = str(where.get("filepath", "")), where.get("line")
            if line is None:
                file, line = _find(nit.name, paths)
            out.append(Problem(file, nit.name, f"glinter {nit.check_name}: {nit.msg}", line))
    return out


def _find(name: str, paths: Sequence[Path]) -> tuple[str, int | None]:
    """The first file (and line) that defines ``name``, for nits that carry no location."""
    for p in paths:
        text = _read(str(p))
        line = _line_of(text, _split_name(name, text))
        if line is not None:
            return str(p), line
    return str(paths[0]), None


def _masked(text: str, lines: set[int]) -> str:
    """``text`` with the nodes defined at ``lines`` commented out, line numbers kept."""
    out = text.splitlines()
    for start in sorted(lines):
        if not 0 < start <= len(out):
            continue
        indent = len(out[start - 1]) - len(out[start - 1].lstrip())
        end = start
        while end < len(out) and (
            not out[end].strip() or len(out[end]) - len(out[end].lstrip()) > indent
        ):
            end += 1
        for i in range(start - 1, end):
            out[i] = "#" + out[i]
    return "\n".join(out) + "\n"


def _rules_on_the_rest(
    paths: list[Path], problems: list[Problem], app_version: str | None
) -> list[Problem]:
    """Our rules on the metrics glean_parser did not reject.

    glean_parser drops a whole file on a schema error, so its partial tree
    would hide every other metric's findings. The rejected nodes are
    commented out (line numbers kept) in a temporary copy, parsed again.
    """
    import tempfile

    bad: dict[str, set[int]] = {}
    for p in problems:
        if p.line is not None and p.metric not in ("-", "$schema"):
            bad.setdefault(str(Path(p.file).resolve()), set()).add(p.line)
    with tempfile.TemporaryDirectory() as tmp:
        copies: dict[str, str] = {}
        for i, path in enumerate(paths):
            copy = Path(tmp) / f"{i}{path.suffix}"
            copy.write_text(_masked(_read(str(path)), bad.get(str(path.resolve()), set())))
            copies[str(copy)] = str(path)
        errors, tree, _ = _parse(list(map(Path, copies)))
        if errors:
            return []  # still broken in ways we cannot isolate: glean_parser's errors stand
        found = _rules(tree, app_version)
    return [Problem(copies.get(p.file, p.file), p.metric, p.message, p.line) for p in found]


def check(
    metrics_yaml: Sequence[str], pings_yaml: Sequence[str], app_version: str | None
) -> list[Problem]:
    """Every problem in these definitions, each naming file, line and metric."""
    paths = [Path(p) for p in [*metrics_yaml, *pings_yaml]]
    missing = [Problem(str(p), "-", "file not found") for p in paths if not p.is_file()]
    if missing:
        return missing
    errors, tree, raw = _parse(paths)
    if errors:
        problems = [locate(e, raw) for e in errors]
        return problems + _rules_on_the_rest(paths, problems, app_version)
    return _rules(tree, app_version) + _lint(tree, paths, app_version)
