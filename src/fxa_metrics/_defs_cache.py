"""Definitions memoised per process, keyed by each file's path and content.

glean_parser takes tens of milliseconds (hundreds with FxA's definitions) to
parse and validate a metrics.yaml. A test suite builds one capture per test:
parsing again for each would dominate the suite's run time. Definitions are
immutable, so every capture in the session shares one compiled copy per set
of files. A file edited during the session is parsed again: the key holds its
content, reached through a cheap ``stat`` (path, size, mtime) first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence

from ._definitions import Definitions, load

_StatKey = tuple[tuple[str, int, int] | tuple[str], ...]
_ContentKey = tuple[tuple[str, str], ...]

_lock = threading.Lock()
_Key = tuple[_StatKey, _StatKey, str | None]
_Content = tuple[_ContentKey, _ContentKey, str | None]
_by_stat: dict[_Key, _Content] = {}
_by_content: dict[_Content, Definitions] = {}


def _stat_key(paths: Sequence[str]) -> _StatKey:
    out: list[tuple[str, int, int] | tuple[str]] = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append((p,))  # missing: load() reports it, and nothing is cached
            continue
        out.append((p, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _content_key(paths: Sequence[str]) -> _ContentKey:
    # The path as given stays in the key: problems and MetricDef.file name it.
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.append((p, hashlib.sha256(f.read()).hexdigest()))
    return tuple(out)


def load_cached(
    metrics_yaml: Sequence[str], pings_yaml: Sequence[str], app_version: str | None
) -> Definitions:
    """:func:`~fxa_metrics._definitions.load`, parsed once per set of files and contents."""
    stat: _Key = (_stat_key(metrics_yaml), _stat_key(pings_yaml), app_version)
    if any(len(k) == 1 for k in (*stat[0], *stat[1])):
        return load(metrics_yaml, pings_yaml, app_version=app_version)  # raises: file not found
    with _lock:
        content = _by_stat.get(stat)
    if content is None:
        content = (_content_key(metrics_yaml), _content_key(pings_yaml), app_version)
    with _lock:
        defs = _by_content.get(content)
    if defs is None:
        # Parsed outside the lock: a slow parse must not serialise unrelated captures.
        defs = load(metrics_yaml, pings_yaml, app_version=app_version)
    with _lock:
        _by_content.setdefault(content, defs)
        _by_stat[stat] = content
    return defs


def clear() -> None:
    """Forget every memoised definition (tests of the cache itself)."""
    with _lock:
        _by_stat.clear()
        _by_content.clear()
