"""An embedded UDP receiver on 127.0.0.1: what a statsd daemon would be handed.

Used by the tests (exact datagram bytes), the demo (print what statsd got) and
the bench (a live listener that drains the socket, so sends cost what they cost
in production)::

    with UdpReceiver() as rx:
        fm.configure(..., statsd_host=rx.host, statsd_port=rx.port)
        fm.record(fm.Counter("login"))
        rx.wait_for(1)
    rx.datagrams()  # [b'login:1|c']
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

_WAKE = b"\x00fxa_metrics-recv-udp-close\x00"


class UdpReceiver:
    """Binds 127.0.0.1 on a free port and collects every datagram on a daemon thread.

    ``keep=False`` only counts datagrams (for benchmarks: no memory growth).
    """

    def __init__(self, keep: bool = True, bufsize: int = 4 * 1024 * 1024) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # A big buffer: a burst of sends must not be dropped before the thread reads.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            self._sock.bind(("127.0.0.1", 0))
        except OSError:
            self._sock.close()
            raise
        self.host, self.port = self._sock.getsockname()[:2]
        self._keep = keep
        self._items: list[bytes] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(
            target=self._run, name=f"fxa_metrics-udp-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _run(self) -> None:
        while True:
            try:
                data = self._sock.recv(65535)
            except OSError:
                return
            with self._cond:
                if self._closing and data == _WAKE:
                    return
                self._count += 1
                if self._keep:
                    self._items.append(data)
                self._cond.notify_all()

    def datagrams(self) -> list[bytes]:
        """Every datagram received so far, in arrival order (a copy)."""
        with self._cond:
            return list(self._items)

    def lines(self) -> list[bytes]:
        """Every statsd line received so far: datagrams split on newlines (pipelines)."""
        return [line for d in self.datagrams() for line in d.split(b"\n")]

    @property
    def count(self) -> int:
        with self._cond:
            return self._count

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
            self._count = 0

    def wait_for(self, n: int, timeout: float = 2.0) -> list[bytes]:
        """Wait until at least ``n`` datagrams arrived (or ``timeout``); return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._count < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._items)

    def close(self) -> None:
        """Stop the thread and close the socket. Idempotent."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
        # recv() on another thread is not interrupted by close(): wake it with a datagram.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(_WAKE, (self.host, self.port))
        self._thread.join(5.0)
        self._sock.close()

    def __enter__(self) -> UdpReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UdpReceiver({self.host}:{self.port}, received={self.count})"
