"""Compiled definitions, memoised per process and cached on disk, keyed by content.

glean_parser takes a quarter of a second to import and tens of milliseconds
(hundreds with FxA's definitions) to parse and validate a metrics.yaml. Every
process pays it at ``configure()``, every pre-fork worker's parent, every CLI
call, and a test suite would pay it per capture. Definitions are immutable, so:

* in a process, every ``configure()`` and capture shares one compiled copy per
  set of files (a file edited meanwhile is parsed again: the key holds its
  content, reached through a cheap ``stat`` first);
* across processes, the compiled copy is kept in a cache directory
  (``FXA_METRICS_CACHE_DIR``, else ``$XDG_CACHE_HOME/fxa_metrics``, else
  ``~/.cache/fxa_metrics``; ``FXA_METRICS_CACHE_DIR=""`` turns it off), keyed by
  the files' paths and contents, glean_parser's and our versions, the
  ``app_version`` and **today's date** (a metric that expires by date must
  expire on that date, so no entry outlives its day). The key is checked at
  load; only a file in a directory of our own (not group- or world-writable,
  owned by this user) is read, since unpickling runs code. Anything wrong with
  the cache (unreadable, stale, corrupt) falls back to parsing, silently.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import pickle
import stat as _stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __about__
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
        defs = _from_disk(content)
    if defs is None:
        # Parsed outside the lock: a slow parse must not serialise unrelated captures.
        defs = load(metrics_yaml, pings_yaml, app_version=app_version)
        _to_disk(content, defs)
    with _lock:
        _by_content.setdefault(content, defs)
        _by_stat[stat] = content
    return defs


def clear() -> None:
    """Forget every memoised definition (tests of the cache itself)."""
    with _lock:
        _by_stat.clear()
        _by_content.clear()


# ------------------------------------------------------------------ on disk


def cache_dir() -> Path | None:
    """Where compiled definitions are kept, or None when the cache is off."""
    configured = os.environ.get("FXA_METRICS_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fxa_metrics"


def _glean_parser_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("glean_parser")
    except PackageNotFoundError:  # pragma: no cover - a dependency of ours
        return "?"


def _disk_key(content: _Content) -> str:
    today = _dt.datetime.now(_dt.UTC).date().isoformat()
    parts = (__about__.__version__, _glean_parser_version(), today, repr(content))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _own_dir(path: Path) -> bool:
    st = os.stat(path)
    return (
        _stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and not st.st_mode & (_stat.S_IWGRP | _stat.S_IWOTH)
    )


def _from_disk(content: _Content) -> Definitions | None:
    directory = cache_dir()
    if directory is None:
        return None
    try:
        key = _disk_key(content)
        path = directory / f"{key}.pickle"
        if not path.is_file() or not _own_dir(directory):
            return None
        with open(path, "rb") as f:
            stored_key, defs = pickle.load(f)
        if stored_key != key or not isinstance(defs, Definitions):
            return None
        return defs
    except Exception:  # a cache is an optimisation: any fault means "parse"
        return None


def _to_disk(content: _Content, defs: Definitions) -> None:
    directory = cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _own_dir(directory):
            return
        key = _disk_key(content)
        # Written whole, then renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".defs-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((key, defs), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, directory / f"{key}.pickle")
    except Exception:  # read-only home, full disk: configure() still works
        return
