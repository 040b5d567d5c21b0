"""What ``configure()`` built, typed, and the one place the current one is held.

Every layer below the facade (checks, consent policies, sinks, the request
context) receives a :class:`Runtime` as a parameter, or, for code a host calls
directly (``bind()``, ``statsd_batch()``), reads :func:`current` here. This
module imports nothing above it, so nothing below the facade ever imports the
facade: the data flow is one way, and mypy checks every use of the runtime.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ValueTooLongError
from ._scrub import log_safe
from ._stats import Stats, logger

if TYPE_CHECKING:  # types only: this module sits below everything that imports it
    from ._config import Settings
    from ._definitions import Definitions
    from ._route_table import Table
    from ._sink import Sink


class Runtime:
    """Everything ``configure()`` built. Immutable once published; swapped whole.

    ``sinks`` maps a sink group (``"glean"``, ``"mozlog"``, ...) to its sinks;
    routes name the group they write to in the route table.
    """

    # __weakref__: the consent lookup pool follows its runtime without keeping it alive.
    __slots__ = (
        "__weakref__",
        "defs",
        "name_hook",
        "settings",
        "sinks",
        "stats",
        "strict",
        "table",
    )

    def __init__(
        self,
        settings: Settings,
        defs: Definitions,
        sinks: Mapping[str, tuple[Sink, ...]],
        table: Table,
    ) -> None:
        self.settings = settings
        self.defs = defs
        self.sinks = sinks
        self.table = table
        self.strict = settings.strict
        self.stats = Stats()
        # record("cat.name", ...) for a metric another route than the server
        # route carries by type (the glean-sdk route): set by build_runtime.
        self.name_hook: Callable[..., Any] | None = None

    def overflow(self, metric: str, field: str | None, limit: int) -> None:
        """A value was longer than its limit: strict raises, production truncates and counts."""
        if self.strict:
            raise ValueTooLongError(metric, field, f"is longer than {limit} (Glean's limit)")
        self.stats.error(ValueTooLongError.reason, metric, f"{field} truncated to {limit}")

    def overflow_log(self, metric: str, field: str | None, limit: int) -> None:
        """A log field was cut: counted, never raised (log data is not a call-site bug)."""
        self.stats.error(ValueTooLongError.reason, metric, f"{field} truncated to {limit}")

    def all_sinks(self) -> list[Sink]:
        # A sink shared by two groups is flushed and closed once.
        seen: dict[int, Sink] = {}
        for sinks in self.sinks.values():
            for sink in sinks:
                seen.setdefault(id(sink), sink)
        return list(seen.values())

    def flush(self, timeout: float | None = None) -> None:
        for sink in self.all_sinks():
            try:
                sink.flush(timeout)
            except Exception as e:  # one sink's failure must not stop the others
                self.stats.keep(e)

    def close(self, timeout: float | None = None) -> None:
        for sink in self.all_sinks():
            try:
                sink.flush(timeout)
                sink.close(timeout)
            except Exception as e:  # shutdown must finish for every sink
                self.stats.keep(e)
                # A host logging handler that raises must not stop the shutdown.
                with contextlib.suppress(Exception):
                    logger.warning(  # privacy (issue 10): never echo a value
                        "fxa_metrics: closing %s failed: %s", type(sink).__name__, log_safe(e)
                    )


_current: Runtime | None = None
_lock = threading.Lock()


def current() -> Runtime | None:
    """The runtime in force, or None before ``configure()`` (everything is then a no-op)."""
    return _current


def swap(rt: Runtime | None) -> Runtime | None:
    """Install ``rt`` (or none) and return the previous runtime, unclosed."""
    global _current
    with _lock:
        prev, _current = _current, rt
    return prev
