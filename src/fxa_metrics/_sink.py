"""The sink contract: one method to implement, two optional.

A sink receives *prepared* records (already checked against the definitions
and consent) and puts them on the wire. The facade wraps every ``emit`` on its
own, so a failing sink is counted and contained without stopping the others.
A test double is five lines::

    class ListSink(fxa_metrics.Sink):
        def __init__(self):
            self.items = []
        def emit(self, record):
            self.items.append(record)
"""

from __future__ import annotations

import abc
from typing import Any


class Sink(abc.ABC):
    """Base class of every sink: ``emit`` is required, ``flush``/``close`` are no-ops by default."""

    @abc.abstractmethod
    def emit(self, record: Any) -> None:
        """Send one prepared record. May raise: the facade contains and counts it."""

    def flush(self, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """Push out anything buffered, waiting at most ``timeout`` seconds."""

    def close(self, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """Release resources; called by ``fxa_metrics.reset()`` and on reconfiguration."""


class SinkDrop(Exception):
    """Raised by a sink that could not deliver a record for a known, countable reason.

    The facade counts it as a drop with this ``reason`` (``write_error``,
    ``write_timeout``, ``send_error``, ...) for that sink, logs it once, and
    does not treat it as an internal error: the fault is outside us.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
