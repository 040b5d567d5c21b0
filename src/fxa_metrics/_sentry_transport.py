"""The owned Sentry client's transport: every lost event counted, nothing outlives close.

sentry-sdk already knows when it loses an event: its transport reports each
loss through ``record_lost_event`` (for its client reports). We count the
same losses in ``fm.stats()``, per reason:

==========================  ============================================
``sentry_queue_full``       the SDK's send queue (100 envelopes) was full
``sentry_network_error``    the endpoint was down, reset, or timed out
``sentry_http_error``       the endpoint answered with an error status
``sentry_rate_limited``     a 429, or dropped while backing off after one
``sentry_filtered``         ``before_send`` or an event processor dropped it
``sentry_closed``           still queued when ``reset()`` closed the client
                            after its flush timeout, or captured after it
==========================  ============================================

The metric of each count is ``sentry:<category>`` (``error`` for crashes,
``transaction`` for timings). Losses are counted on the runtime whose
``record()`` captured the event, even when found while ``reset()`` closes
it (read them through that runtime, or in the log). Other data the SDK reports about (its own
client reports, spans inside a transaction) are not our records and are not
counted.

The SDK's worker thread can sit in a socket read for its whole 30 s timeout,
and longer with retries, when an endpoint accepts and never answers. Our
transport keeps hold of the sockets it opens, and :meth:`kill` shuts them
down and waits for the worker, so ``reset()`` leaves no thread or socket behind.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from typing import Any

from sentry_sdk.transport import HttpTransport
from sentry_sdk.utils import capture_internal_exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import _runtime
from ._stats import Stats, logger

# The SDK's reasons (sentry_sdk.transport and client) -> ours.
_REASONS = {
    "queue_overflow": "sentry_queue_full",
    "network_error": "sentry_network_error",
    "send_error": "sentry_http_error",  # a 413: the envelope was too large
    "ratelimit_backoff": "sentry_rate_limited",
    "before_send": "sentry_filtered",
    "event_processor": "sentry_filtered",
    "closed": "sentry_closed",  # ours: discarded or refused by kill()
}
# Our records: crashes (error) and timings (transaction). "default" is the SDK's
# category for an event without an exception, which a Crash never is, but a
# host-built event through our client could be.
_COUNTED = frozenset({"error", "transaction", "default"})
# Losses reported after reset() swapped the runtime out: logged once per reason.
_orphans = Stats()
# How long kill() waits for the worker once its queue is empty and its sockets
# are shut. It only has to notice a dead socket and read its terminator: milliseconds.
JOIN_TIMEOUT = 1.0


def _runtime_stats() -> Stats | None:
    rt = _runtime.current()
    return rt.stats if rt is not None else None


class _Sockets:
    """The sockets one transport opened; once closed, it opens no more."""

    def __init__(self) -> None:
        self.open: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self.closed = False

    def add(self, sock: socket.socket) -> None:
        if self.closed:
            # A retry after kill() shut the previous socket: refuse it, or the
            # worker would wait out another full timeout on a new connection.
            sock.close()
            raise OSError("fxa_metrics: the Sentry transport is closed")
        self.open.add(sock)

    def shut(self) -> None:
        self.closed = True
        for sock in list(self.open):
            with contextlib.suppress(OSError):  # already closed, or never connected
                sock.shutdown(socket.SHUT_RDWR)


class _Tracked:
    """Mixin for urllib3 connections: register each socket with its transport."""

    registry: _Sockets

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self.registry.add(sock)
        return sock


def _pool_classes(registry: _Sockets) -> dict[str, type]:
    """Connection pool classes whose connections register their sockets in ``registry``."""

    class Conn(_Tracked, HTTPConnection):
        pass

    class SConn(_Tracked, HTTPSConnection):
        pass

    Conn.registry = SConn.registry = registry

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(HTTPSConnectionPool):
        ConnectionCls = SConn

    return {"http": Pool, "https": SPool}


class CountingTransport(HttpTransport):
    """sentry-sdk's HTTP transport, with losses counted and a kill() that ends its worker."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._sockets = _Sockets()
        self._why = threading.local()
        # The counters of the runtime that captures through us, bound at the
        # first capture: losses found later (on the worker thread, or while
        # reset() closes us) belong to that runtime, not to whatever is current.
        self._stats: Stats | None = None
        super().__init__(options)

    def _make_pool(self) -> Any:
        pool = super()._make_pool()
        # PoolManager and ProxyManager pick the pool class per scheme from
        # this instance attribute; a SOCKS manager has its own, left alone.
        if hasattr(pool, "pool_classes_by_scheme"):
            pool.pool_classes_by_scheme = _pool_classes(self._sockets)
        return pool

    def on_dropped_event(self, reason: str) -> None:
        # The SDK calls this just before record_lost_event for the same loss,
        # on the same thread; it is the only place an HTTP status is told
        # apart from a network error, and a 429 is reported nowhere else.
        self._why.reason = reason
        if reason == "status_429":
            self._count("sentry_rate_limited", "error", 1)

    def record_lost_event(
        self,
        reason: str,
        data_category: Any = None,
        item: Any = None,
        *,
        quantity: int = 1,
    ) -> None:
        try:
            category = item.data_category if item is not None else data_category
            if category in _COUNTED:
                ours = _REASONS.get(reason, f"sentry_{reason}")
                why = getattr(self._why, "reason", "")
                if ours == "sentry_network_error" and why.startswith("status_"):
                    ours = "sentry_http_error"
                self._count(ours, str(category), 1 if item is not None else quantity)
        finally:
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    def _count(self, reason: str, category: str, quantity: int) -> None:
        # Runs on the SDK's worker thread or inside its capture path: never raise there.
        try:
            stats = self._stats or _runtime_stats() or _orphans
            for _ in range(quantity):
                stats.drop(reason, f"sentry:{category}")
        except Exception as e:  # pragma: no cover - counting is dict arithmetic
            logger.debug("fxa_metrics: counting a Sentry loss failed: %r", e)

    def capture_envelope(self, envelope: Any) -> None:
        if self._stats is None:
            self._stats = _runtime_stats()
        if self._sockets.closed:
            # After kill(): the SDK's worker, finishing its last send, queues a
            # client report, and submitting it would start a new worker thread
            # that nothing ever stops. Nothing more is sent once closed.
            for item in envelope.items:
                self.record_lost_event("closed", item=item)
            return

        # As the SDK's own capture_envelope, but the job carries its envelope,
        # so kill() can count what a job it discards held.
        def send_envelope() -> None:
            with capture_internal_exceptions():
                self._send_envelope(envelope)
                self._flush_client_reports()

        send_envelope.envelope = envelope  # type: ignore[attr-defined]
        if not self._worker.submit(send_envelope):
            self.on_dropped_event("full_queue")
            for item in envelope.items:
                self.record_lost_event("queue_overflow", item=item)

    def kill(self) -> None:
        self._sockets.closed = True
        worker = getattr(self, "_worker", None)
        thread = getattr(worker, "_thread", None)
        if worker is not None:
            # What is still queued when close() has used its flush budget will
            # not be sent: count it now, and make room for the terminator
            # (a full queue would refuse it, and the worker would never end).
            for job in _drain(worker):
                envelope = getattr(job, "envelope", None)
                for item in envelope.items if envelope is not None else ():
                    self.record_lost_event("closed", item=item)
        super().kill()  # queues the worker's terminator (and forgets the thread)
        # A request in flight to an endpoint that never answers: shutting its
        # socket makes the read return now instead of after the SDK's timeout.
        self._sockets.shut()
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
        try:
            self._pool.clear()  # closes the pooled (idle) connections' sockets
        except Exception as e:  # pragma: no cover - urllib3 closing a closed socket
            logger.debug("fxa_metrics: closing Sentry connections failed: %r", e)


def _drain(worker: Any) -> list[Any]:
    """Empty the worker's queue; the jobs it held."""
    queue = getattr(worker, "_queue", None)
    jobs = []
    while queue is not None:
        try:
            jobs.append(queue.get_nowait())
        except Exception:  # queue.Empty (sentry_sdk's own queue class)
            break
        queue.task_done()
    return jobs
