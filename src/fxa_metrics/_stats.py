"""Drop and error counters: a drop is never silent.

Counters are per reason and per (reason, metric), readable through
:func:`fxa_metrics.stats`. The first drop of each (reason, metric) is also
logged once on the ``fxa_metrics`` logger; later ones only count, so a hot
bad call site cannot flood the logs.

Memory and log volume are bounded whatever a buggy caller sends: the first
:data:`MAX_KEYS` distinct (reason, metric) pairs are counted on their own,
later ones in one :data:`OVERFLOW` bucket per reason; metric names are kept
to :data:`MAX_METRIC_CHARS` characters; and at most :data:`MAX_LOGGED`
distinct warnings are logged, then one line saying later ones are only counted.
Recording a drop never raises into the host, whatever its logging handlers do.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from ._scrub import log_safe

# fxa_metrics' own logger. The Sentry sink tells sentry-sdk to ignore it, so an
# internal warning can never become a Sentry event that fails and warns again.
logger = logging.getLogger("fxa_metrics")

MAX_KEPT_ERRORS = 100
# Distinct (reason, metric) counters kept by name. A caller that makes up
# metric names (a bug, or names built from user input) would otherwise grow
# the counters forever: 200k names once cost 46 MB.
MAX_KEYS = 1000
# Distinct warnings logged once each; past this, one line says the rest are counted only.
MAX_LOGGED = 200
# A metric name longer than this is clipped before it becomes a key (a 10 MB
# name must not be kept, or logged, whole).
MAX_METRIC_CHARS = 200
# A warning's detail (an error message) is clipped to this.
MAX_DETAIL_CHARS = 1000
# The bucket that counts every (reason, metric) past MAX_KEYS.
OVERFLOW = "<other>"


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


def _plain(text: Any, limit: int = MAX_METRIC_CHARS) -> str:
    """``text`` as a plain, bounded ``str``: a hostile subclass cannot hash, compare or grow."""
    if type(text) is not str:
        try:
            # str.__str__ copies the data of a subclass into an exact str
            # without calling anything the subclass overrides.
            text = str.__str__(text) if isinstance(text, str) else f"<{type(text).__name__}>"
        except Exception:  # pragma: no cover - str.__str__ of a str subclass does not raise
            text = "<unprintable>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return str(text)


class Stats:
    """Thread-safe, bounded counters. Only the (rare) error paths take the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drops: Counter[str] = Counter()
        self._by_metric: Counter[tuple[str, str]] = Counter()
        self._errors: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._log_overflowed = False
        # Contained exceptions, kept for the pytest plugin's teardown tripwire.
        self.internal_errors: list[BaseException] = []
        # RecordErrors strict mode raised: a web framework may turn one into a
        # 500 the test never looks at; the pytest plugin surfaces them.
        self.record_errors: list[BaseException] = []

    def _key(self, reason: str, metric: str) -> tuple[str, str]:
        key = (reason, metric)
        if key in self._by_metric or len(self._by_metric) < MAX_KEYS:
            return key
        return (reason, OVERFLOW)

    def _first(self, key: tuple[str, str]) -> bool | None:
        """True: log this one. None: log the one "too many" line. False: count only."""
        if key in self._logged:
            return False
        if len(self._logged) < MAX_LOGGED:
            self._logged.add(key)
            return True
        if not self._log_overflowed:
            self._log_overflowed = True
            return None
        return False

    def drop(self, reason: str, metric: str, detail: str = "") -> None:
        reason, metric = _plain(reason), _plain(metric)
        with self._lock:
            self._drops[reason] += 1
            key = self._key(reason, metric)
            self._by_metric[key] += 1
            first = self._first(key)
        if first is not False:
            _warn(
                first,
                "fxa_metrics dropped a record (reason=%s, metric=%s)%s; later drops of this "
                "kind are only counted",
                reason,
                metric,
                detail,
            )

    def error(self, reason: str, metric: str, detail: str = "") -> None:
        reason, metric = _plain(reason), _plain(metric)
        with self._lock:
            self._errors[reason] += 1
            first = self._first((reason, metric))
        if first is not False:
            _warn(first, "fxa_metrics: %s on %s%s", reason, metric, detail)

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


def _warn(first: bool | None, fmt: str, reason: str, metric: str, detail: Any) -> None:
    # The host's handlers run inside logger.warning: one that raises (or a
    # filter, or a formatter) must not turn a counted drop into a crash of the
    # request. The count above is already taken; only the line is lost.
    try:
        if first is None:
            logger.warning(
                "fxa_metrics: more than %d distinct kinds of drop or error; later new kinds "
                "are counted in stats() only, not logged",
                MAX_LOGGED,
            )
            return
        # Formatted here, inside the containment: a hostile str's __len__ or
        # __str__ raises in formatting too.
        detail = _plain(detail, MAX_DETAIL_CHARS) if detail else ""
        logger.warning(fmt, *_shown(reason, metric, detail))
    except KeyboardInterrupt:
        raise  # Ctrl-C arriving while a handler ran: the user's, as in record()
    except BaseException:  # a host handler's failure (even a BaseException) is not ours to raise
        pass
