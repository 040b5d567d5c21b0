"""Test helpers: capture every sink in memory, with strict mode on.

>>> import fxa_metrics as fm
>>> from fxa_metrics.testing import capture
>>> with capture(metrics_yaml="tests/data/example/metrics.yaml") as cap:  # doctest: +SKIP
...     fm.record("login.complete", extra={"reason": "password"})
>>> cap.events()  # doctest: +SKIP
[{'category': 'login', 'name': 'complete', 'extra': {'reason': 'password'}, 'timestamp': 0}]
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import orjson

from . import _facade
from ._config import build_settings
from ._glean import GleanEncoder, GleanPing
from ._sink import Sink


class CaptureSink(Sink):
    """Keeps every prepared record it receives, with its route. Thread-safe."""

    def __init__(self, route: str, store: list[tuple[str, Any]], lock: threading.Lock) -> None:
        self.route = route
        self._store = store
        self._lock = lock

    def emit(self, record: Any) -> None:
        with self._lock:
            self._store.append((self.route, record))


class Capture:
    """What :func:`capture` collected, per route, in order."""

    def __init__(self, encoder: GleanEncoder) -> None:
        self.encoder = encoder
        self._items: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def sinks(self) -> dict[str, list[Sink]]:
        return {r: [CaptureSink(r, self._items, self._lock)] for r in _facade.ROUTE_NAMES}

    def records(self, route: str | None = None) -> list[Any]:
        with self._lock:
            return [rec for r, rec in self._items if route is None or r == route]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def pings(self, ping: str | None = None) -> list[GleanPing]:
        return [p for p in self.records("glean") if ping is None or p.ping == ping]

    def events(self) -> list[dict[str, Any]]:
        return [dict(e) for p in self.pings() for e in p.events]

    def payloads(self) -> list[dict[str, Any]]:
        """Each captured ping's payload exactly as the pipeline would receive it."""
        out = []
        for p in self.pings():
            fields = self.encoder.fields(p, "2026-01-01T00:00:00+00:00")
            out.append(orjson.loads(fields["payload"]))
        return out

    def lines(self) -> list[dict[str, Any]]:
        """Each captured ping as the full MozLog line (parsed)."""
        return [orjson.loads(self.encoder.line(p)) for p in self.pings()]


@contextlib.contextmanager
def capture(**settings: Any) -> Iterator[Capture]:
    """Configure fxa_metrics with in-memory sinks only (strict by default), restore on exit.

    Accepts the same keywords as :func:`fxa_metrics.configure`; identity
    settings default to test values.
    """
    settings.setdefault("service", "fxa-test")
    settings.setdefault("app_id", "accounts_backend_dev")
    settings.setdefault("app_version", "0.0.0")
    settings.setdefault("channel", "development")
    settings.setdefault("strict", True)
    user_sinks = settings.pop("sinks", {})
    base = build_settings(**settings, replace_sinks=True)
    cap = Capture(
        GleanEncoder(base.app_id, base.app_version, base.channel, f"{base.service}-glean")
    )
    sinks = cap.sinks()
    for route, extra in user_sinks.items():
        sinks.setdefault(route, []).extend(extra)
    import attrs

    rt = _facade.build_runtime(attrs.evolve(base, sinks=sinks))
    prev = _facade.swap(rt)
    try:
        yield cap
    finally:
        _facade.swap(prev)
        rt.close(1.0)
