"""The rules ``fxa-metrics lint`` applies to one call site (see ``_lint`` for the driver).

:class:`CallChecker` walks one parsed file. A call is ours when its callee was
imported from ``fxa_metrics`` or a module that re-exports its ``record``; its
literal arguments are checked with the rules ``record()`` applies at run time:
the compiled :class:`Definitions` for Glean records, and the statsd route's own
name and tag checks (imported from ``_statsd``, not copied) for statsd records.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Iterator

import attrs

from . import _statsd
from ._definitions import Definitions, MetricDef
from ._errors import RecordError

FXA_MODULE = "fxa_metrics"
STUBS_SUFFIX = "_metrics_stubs"
GLEAN_KINDS = frozenset({"record", "Event", "Metrics"})
STATSD_KINDS = frozenset({"Timing", "Counter", "Gauge", "Set", "timer"})
KINDS = GLEAN_KINDS | STATSD_KINDS

# Glean type -> the Python literal types a call site may give it.
_ACCEPTS = {
    "string": ("str",),
    "quantity": ("int",),
    "boolean": ("bool",),
    "string_list": ("list",),
    "object": ("dict", "list"),
}


@attrs.frozen
class LintProblem:
    """One finding at a call site; ``col`` is 1-based, as editors and flake8 count."""

    path: str
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message} [{self.code}]"


def _fold(text: str) -> str:
    return text.replace("_", "").replace("-", "").lower()


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the likeliest intended name, or ``""``.

    A spelling that differs only in case and separators (``errorCode`` for
    ``error_code``) is the mistake the record-time check was built for, so it
    wins outright; otherwise difflib's closest match, if it is close.
    """
    options = list(choices)
    folded = _fold(word)
    for option in options:
        if _fold(option) == folded:
            return f"; did you mean '{option}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def _python_type(node: ast.expr) -> str | None:
    """The type a literal expression evaluates to, or None when it is not a literal."""
    if isinstance(node, ast.Constant):
        return type(node.value).__name__
    if isinstance(node, ast.JoinedStr):
        return "str"
    if isinstance(node, ast.List | ast.Tuple):
        return "list"
    if isinstance(node, ast.Dict):
        return "dict"
    return None


def _str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_none(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _arg(call: ast.Call, pos: int | None, name: str) -> ast.expr | None:
    """The argument given by keyword ``name`` or at position ``pos``."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if pos is not None and pos < len(call.args) and not isinstance(call.args[pos], ast.Starred):
        return call.args[pos]
    return None


def resolve_imports(tree: ast.Module, modules: frozenset[str]) -> tuple[set[str], dict[str, str]]:
    """(local names bound to our modules, local name -> our callable it is bound to)."""

    def ours(module: str) -> bool:
        return module in modules or module.rsplit(".", 1)[-1].endswith(STUBS_SUFFIX)

    mods: set[str] = set()
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if ours(alias.name) and (alias.asname or "." not in alias.name):
                    mods.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                local = alias.asname or alias.name
                if ours(node.module) and alias.name in KINDS:
                    names[local] = alias.name
                elif ours(f"{node.module}.{alias.name}"):  # from pkg import _metrics_stubs
                    mods.add(local)
    return mods, names


class CallChecker:
    """Checks the calls of one parsed file; collects problems and unresolved calls."""

    def __init__(self, path: str, defs: Definitions, names: dict[str, str], mods: set[str]):
        self.path = path
        self.defs = defs
        self.names = names
        self.mods = mods
        self.problems: list[LintProblem] = []
        self.unresolved: list[LintProblem] = []

    def _at(self, node: ast.AST, code: str, message: str) -> LintProblem:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        return LintProblem(self.path, line, col, code, message)

    def report(self, node: ast.AST, code: str, message: str) -> None:
        self.problems.append(self._at(node, code, message))

    def cannot(self, node: ast.AST, why: str) -> None:
        self.unresolved.append(self._at(node, "unresolved", why))

    def kind(self, call: ast.Call) -> str | None:
        func = call.func
        if isinstance(func, ast.Name):
            return self.names.get(func.id)
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.mods
            and func.attr in KINDS
        ):
            return func.attr
        return None

    def visit(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                kind = self.kind(node)
                if kind in GLEAN_KINDS:
                    self.glean_call(kind, node)
                elif kind is not None:
                    self.statsd_call(kind, node)

    # ------------------------------------------------------------ Glean

    def glean_call(self, kind: str, call: ast.Call) -> None:
        if kind == "Metrics":
            self.metrics_record(call)
            return
        what = _arg(call, 0, "what" if kind == "record" else "name")
        if kind == "record" and isinstance(what, ast.Call) and self.kind(what) is not None:
            return  # record(Event(...)): the inner call is checked on its own
        name = _str(what)
        if name is None:
            self.cannot(what or call, "the metric name is not a string literal")
            return
        assert what is not None
        md = self.metric(what, name)
        if md is None:
            return
        if md.type != "event":
            self.report(
                what, "not-an-event", f"'{name}' is a {md.type} metric, not an event: use Metrics"
            )
            return
        self.live(what, md)
        self.ping(call, md, _arg(call, 3 if kind == "Event" else None, "ping"))
        extra = _arg(call, 1, "extra")
        if extra is not None and not _is_none(extra):
            self.extras(md, extra)
        metrics = _arg(call, 2 if kind == "Event" else None, "metrics")
        if metrics is not None and not _is_none(metrics):
            self.values(metrics)

    def metric(self, node: ast.AST, name: str) -> MetricDef | None:
        md = self.defs.metrics.get(name)
        if md is None:
            hint = did_you_mean(name, self.defs.metrics)
            self.report(node, "unknown-metric", f"unknown metric '{name}'{hint}")
        return md

    def live(self, node: ast.AST, md: MetricDef) -> None:
        if md.disabled:
            self.report(node, "disabled", f"'{md.identifier}' is disabled (disabled: true)")
        if md.expired:
            self.report(node, "expired", f"'{md.identifier}' expired ({md.expires})")

    def ping(self, call: ast.Call, md: MetricDef, node: ast.expr | None) -> None:
        if node is None or _is_none(node):
            if len(md.pings) > 1:
                self.report(
                    call,
                    "undeclared-ping",
                    f"'{md.identifier}' is sent in several pings ({', '.join(md.pings)}); "
                    "pass ping=",
                )
            return
        ping = _str(node)
        if ping is None:
            self.cannot(node, "the ping is not a string literal")
        elif ping not in md.pings:
            self.report(
                node,
                "undeclared-ping",
                f"'{md.identifier}' is not sent in ping '{ping}' "
                f"(send_in_pings: {', '.join(md.pings)})",
            )

    def literal_items(self, node: ast.expr, what: str) -> Iterator[tuple[ast.AST, str, ast.expr]]:
        """(key node, key, value node) of a dict literal or dict(k=v); the rest is unresolved."""
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                key = _str(k)
                if k is None or key is None:
                    self.cannot(k or v, f"{what} has a key that is not a string literal")
                else:
                    yield k, key, v
            return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
        ):
            if node.args:
                self.cannot(node, f"{what} is built from a non-literal")
            for kw in node.keywords:
                if kw.arg is None:
                    self.cannot(kw.value, f"{what} is built from a non-literal")
                else:
                    yield kw, kw.arg, kw.value
            return
        self.cannot(node, f"{what} is not a dict literal")

    def extras(self, md: MetricDef, node: ast.expr) -> None:
        for knode, key, vnode in self.literal_items(node, "extra"):
            kind = md.extras.get(key)
            if kind is None:
                declared = ", ".join(sorted(md.extras)) or "none"
                self.report(
                    knode,
                    "unknown-extra",
                    f"'{md.identifier}' has no extra '{key}'{did_you_mean(key, md.extras)} "
                    f"(declared: {declared})",
                )
                continue
            self.typed(vnode, kind, f"extra '{key}' of '{md.identifier}'")

    def typed(self, node: ast.expr, kind: str, what: str) -> None:
        got = _python_type(node)
        if got is None or got == "NoneType" or kind not in _ACCEPTS:
            return  # not a literal, None (left out), or a type no literal can be (datetime)
        if got not in _ACCEPTS[kind]:
            self.report(node, "wrong-type", f"{what} is a {kind}; got a {got} literal")

    def values(self, node: ast.expr) -> None:
        for knode, ident, vnode in self.literal_items(node, "metrics"):
            md = self.metric(knode, ident)
            if md is None:
                continue
            if md.type == "event":
                self.report(knode, "not-an-event", f"'{ident}' is an event: record it with Event")
                continue
            self.live(knode, md)
            self.typed(vnode, md.type, f"'{ident}'")

    def metrics_record(self, call: ast.Call) -> None:
        values = _arg(call, 0, "values")
        if values is None:
            self.cannot(call, "Metrics() without literal values")
            return
        self.values(values)
        pnode = _arg(call, 1, "ping")
        ping = _str(pnode)
        if pnode is not None and ping is None and not _is_none(pnode):
            self.cannot(pnode, "the ping is not a string literal")
        elif pnode is not None and ping is not None and ping not in self.defs.pings:
            self.report(pnode, "undeclared-ping", f"ping '{ping}' is not declared in pings.yaml")

    # ------------------------------------------------------------ statsd

    def statsd_call(self, kind: str, call: ast.Call) -> None:
        name_node = _arg(call, 0, "name")
        name = _str(name_node)
        if name is None:
            self.cannot(name_node or call, "the statsd name is not a string literal")
            name = "<name>"
        else:
            assert name_node is not None
            self.statsd_check(name_node, "statsd-name", _statsd._check_name, name)
        tags = _arg(call, 1 if kind == "timer" else 2, "tags")
        if tags is not None and not _is_none(tags):
            for knode, key, vnode in self.literal_items(tags, "tags"):
                self.statsd_check(knode, "statsd-tag", _statsd._check_key, name, key)
                if isinstance(vnode, ast.Constant):
                    self.statsd_check(
                        vnode, "statsd-tag", _statsd._check_value, name, f"tag:{key}", vnode.value
                    )
        member = _arg(call, 1, "value") if kind == "Set" else None
        if isinstance(member, ast.Constant):
            self.statsd_check(
                member, "statsd-tag", _statsd._check_value, name, "value", member.value
            )

    def statsd_check(self, node: ast.AST, code: str, check: object, *args: object) -> None:
        try:
            check(*args)  # type: ignore[operator]
        except RecordError as e:
            self.report(node, code, f"statsd: {e}")
