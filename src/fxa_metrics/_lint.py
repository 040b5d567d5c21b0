"""``fxa-metrics lint``: check ``record()`` call sites against the definitions, never running them.

The record-time check only catches a mistake on a path a test happens to run;
FxA's auth-server sent ``errorCode`` where metrics.yaml says ``error_code`` for
as long as nobody looked. This reads the service's sources with :mod:`ast`
(never importing them) and checks every call whose metric name and extra keys
are literals, with the very rules the record-time check applies:

* ``record("x.y", extra={...}, metrics={...}, ping=...)``, ``Event(...)`` and
  ``Metrics({...})`` against the compiled :class:`Definitions`;
* ``Timing``/``Counter``/``Gauge``/``Set``/``timer`` names and tags against
  the statsd route's own checks (imported from ``_statsd``, not copied).

A call is recognised by what its callee was imported as (``fxa_metrics``, or a
generated stubs module), so another library's ``.record()`` is not mistaken
for ours. What cannot be resolved statically (a name in a variable, extras
built elsewhere) is counted, not guessed. ``# fxa-metrics: ignore[code]`` on a
line silences that line's findings of that code (bare ``ignore``: all codes).

This module is the driver (files, ignore comments, results); the rules for one
call are in ``_lint_rules``.
"""

from __future__ import annotations

import ast
import re
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from ._definitions import Definitions
from ._lint_rules import FXA_MODULE, CallChecker, LintProblem, resolve_imports

_IGNORE = re.compile(r"#\s*fxa-metrics:\s*ignore(?:\[(?P<codes>[A-Za-z0-9_,\s-]*)\])?")


@attrs.frozen
class LintResult:
    problems: tuple[LintProblem, ...]
    # Calls of ours whose name or extras are not literals: (path, line, col, why).
    unresolved: tuple[LintProblem, ...]
    ignored: int
    files: int


def _ignores(source: str) -> dict[int, frozenset[str]]:
    """line -> codes silenced on it (an empty set silences every code)."""
    out: dict[int, frozenset[str]] = {}
    lines = iter(source.splitlines(keepends=True))
    try:
        for tok in tokenize.generate_tokens(lambda: next(lines, "")):
            if tok.type == tokenize.COMMENT:
                m = _IGNORE.search(tok.string)
                if m:
                    codes = m.group("codes") or ""
                    out[tok.start[0]] = frozenset(c.strip() for c in codes.split(",") if c.strip())
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover - ast.parse failed first
        pass
    return out


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*.py")):
                if not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f
        else:
            yield p


def lint_source(
    source: str, path: str, defs: Definitions, modules: Sequence[str] = ()
) -> LintResult:
    """Lint one file's text. ``modules`` names more modules that re-export fxa_metrics.record."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        problem = LintProblem(path, e.lineno or 1, e.offset or 1, "syntax-error", str(e.msg))
        return LintResult((problem,), (), 0, 1)
    mods, names = resolve_imports(tree, frozenset({FXA_MODULE, *modules}))
    linter = CallChecker(path, defs, names, mods)
    linter.visit(tree)
    ignores = _ignores(source) if "fxa-metrics:" in source else {}
    kept: list[LintProblem] = []
    for p in linter.problems:
        codes = ignores.get(p.line)
        if codes is not None and (not codes or p.code in codes):
            continue
        kept.append(p)
    order = sorted(kept, key=lambda p: (p.line, p.col, p.code))
    ignored = len(linter.problems) - len(kept)
    unresolved = sorted(linter.unresolved, key=lambda p: (p.line, p.col))
    return LintResult(tuple(order), tuple(unresolved), ignored, 1)


def lint_paths(
    paths: Iterable[str | Path], defs: Definitions, modules: Sequence[str] = ()
) -> LintResult:
    """Lint every ``.py`` file under ``paths`` (files, or directories walked recursively)."""
    problems: list[LintProblem] = []
    unresolved: list[LintProblem] = []
    ignored = files = 0
    for f in _files(paths):
        try:
            source = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(LintProblem(str(f), 1, 1, "unreadable", str(e)))
            continue
        r = lint_source(source, str(f), defs, modules)
        problems += r.problems
        unresolved += r.unresolved
        ignored += r.ignored
        files += r.files
    return LintResult(tuple(problems), tuple(unresolved), ignored, files)


def summary(result: LintResult) -> str:
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    u = len(result.unresolved)
    return (
        f"{count(len(result.problems), 'problem')} in {count(result.files, 'file')} "
        f"({result.ignored} ignored; {count(u, 'call')} not resolved statically"
        f"{', --show-unresolved lists them' if u else ''})"
    )
