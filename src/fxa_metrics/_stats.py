"""Drop and error counters: a drop is never silent.

Counters are per reason and per (reason, metric), readable through
:func:`fxa_metrics.stats`. The first drop of each (reason, metric) is also
logged once on the ``fxa_metrics`` logger; later ones only count, so a hot
bad call site cannot flood the logs.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

import attrs

from ._scrub import log_safe

# fxa_metrics' own logger. The Sentry sink tells sentry-sdk to ignore it, so an
# internal warning can never become a Sentry event that fails and warns again.
logger = logging.getLogger("fxa_metrics")

MAX_KEPT_ERRORS = 100


def _shown(reason: str, metric: str, detail: str) -> tuple[str, str, str]:
    """privacy (issue 10): what a warning may show. Names are scrubbed (a metric
    name or extra key can hold an email or a token) and escaped onto one line."""
    return (
        log_safe(reason),
        log_safe(metric),
        f": {log_safe(detail)}" if detail else "",
    )


@attrs.frozen
class StatsSnapshot:
    """A point-in-time copy of the counters."""

    drops: Mapping[str, int]  # reason -> count
    drops_by_metric: Mapping[tuple[str, str], int]  # (reason, metric) -> count
    errors: Mapping[str, int]  # non-dropping errors, e.g. invalid_overflow (truncated, still sent)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


class Stats:
    """Thread-safe counters. Only the (rare) error paths take the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drops: Counter[str] = Counter()
        self._by_metric: Counter[tuple[str, str]] = Counter()
        self._errors: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        # Contained exceptions, kept for the pytest plugin's teardown tripwire.
        self.internal_errors: list[BaseException] = []
        # RecordErrors strict mode raised: a web framework may turn one into a
        # 500 the test never looks at; the pytest plugin surfaces them.
        self.record_errors: list[BaseException] = []

    def drop(self, reason: str, metric: str, detail: str = "") -> None:
        key = (reason, metric)
        with self._lock:
            self._drops[reason] += 1
            self._by_metric[key] += 1
            first = key not in self._logged
            if first:
                self._logged.add(key)
        if first:
            logger.warning(
                "fxa_metrics dropped a record (reason=%s, metric=%s)%s; later drops of this "
                "kind are only counted",
                *_shown(reason, metric, detail),
            )

    def error(self, reason: str, metric: str, detail: str = "") -> None:
        key = (reason, metric)
        with self._lock:
            self._errors[reason] += 1
            first = key not in self._logged
            if first:
                self._logged.add(key)
        if first:
            logger.warning("fxa_metrics: %s on %s%s", *_shown(reason, metric, detail))

    def keep(self, exc: BaseException) -> None:
        with self._lock:
            if len(self.internal_errors) < MAX_KEPT_ERRORS:
                self.internal_errors.append(exc)

    def keep_record_error(self, exc: BaseException) -> None:
        with self._lock:
            if len(self.record_errors) < MAX_KEPT_ERRORS:
                self.record_errors.append(exc)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                drops=dict(self._drops),
                drops_by_metric=dict(self._by_metric),
                errors=dict(self._errors),
            )
