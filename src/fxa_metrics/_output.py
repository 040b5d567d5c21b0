"""Writing lines: one ``os.write`` per line, before ``record()`` returns.

Why not ``sys.stdout.write``: without ``PYTHONUNBUFFERED`` a line sits in
Python's buffer, so a pre-fork worker killed with SIGKILL loses it and a
``fork()`` duplicates it (measured: 8 of 400 lost under gunicorn). One
``os.write`` of a whole line reaches the kernel at once; writes of up to
``PIPE_BUF`` (4096 bytes) to a pipe are atomic between processes, so threads and
workers need no lock to keep lines whole, and no lock is ever held across a
write that can block.

Why ``poll`` first, on pipes and sockets only: when nothing reads the pipe,
``write`` blocks forever. Waiting for room with a timeout bounds that wait;
past it the line is dropped and counted (``write_timeout``), and the request
goes on. Regular files, ``/dev/null`` and terminals never block that way, so
they skip the extra syscall.

When ``sys.stdout`` has been replaced (pytest's ``capsys``,
``contextlib.redirect_stdout``, an explicit ``stream=``), lines go to that
object instead, flushed per line: the host asked for it.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
from typing import IO

from ._sink import SinkDrop

# Separators that JSON allows raw inside strings but line-oriented readers
# (str.splitlines, some log shippers) treat as line breaks: one record would
# become two. Escaped after encoding: inside a JSON string the escape means the
# same character, and these bytes occur nowhere else in a JSON document.
_LINE_BREAKS = (
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
    (b"\xc2\x85", b"\\u0085"),
)

# Linux's atomic pipe write size; larger lines are written in chunks of this.
PIPE_BUF = getattr(select, "PIPE_BUF", 4096)
DEFAULT_WRITE_TIMEOUT = 0.5
_STALLED_WAIT_MS = 10

_ERRNO_REASON = {
    errno.EPIPE: "write_error",
    errno.ENOSPC: "write_error",
    errno.EBADF: "write_error",
}


def escape_line_breaks(line: bytes) -> bytes:
    """Escape U+2028, U+2029 and U+0085 in an encoded JSON line (ASCII lines pass as they are)."""
    if line.isascii():
        return line
    for raw, escaped in _LINE_BREAKS:
        if raw in line:
            line = line.replace(raw, escaped)
    return line


def _needs_poll(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False  # the write itself will fail and be counted
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


# (the sys.stdout object last seen, its fd or None): one identity test per line.
_stdout_fd: tuple[object, int | None] = (object(), None)


def _real_stdout_fd() -> int | None:
    """The fd of ``sys.stdout`` while it is still the process's own stdout, else None."""
    global _stdout_fd
    out: object = sys.stdout
    seen, fd = _stdout_fd
    if out is seen:
        return fd
    fd = None
    real = sys.__stdout__
    if real is not None and out is real:
        try:  # a detached stdout has no usable fd: fall back to the object
            fd = real.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
    _stdout_fd = (out, fd)
    return fd


class LineWriter:
    """Writes whole lines to a file descriptor, or to a replaced/explicit text stream.

    ``stream=None`` follows ``sys.stdout`` as it is at each write (so pytest's
    capture and a redirected stdout both work) and writes to fd 1 directly
    while it is the real stdout. ``timeout`` bounds the wait for a pipe nobody
    reads. Errors raise :class:`SinkDrop` with the reason, which the facade
    counts per sink; nothing is retried, nothing is buffered.
    """

    def __init__(self, stream: IO[str] | None = None, timeout: float = DEFAULT_WRITE_TIMEOUT):
        self._stream = stream
        self._timeout_ms = max(0, int(timeout * 1000))
        # Set once a wait ran out: while nobody reads, later lines do not wait
        # again (a request with ten events must not wait ten times); the first
        # line that finds room clears it.
        self._stalled = False
        self._poll_fd: dict[int, bool] = {}

    def write(self, line: bytes) -> None:
        """Write one encoded line (newline included) before returning, or raise SinkDrop."""
        line = escape_line_breaks(line)
        if self._stream is None:
            fd = _real_stdout_fd()
            if fd is not None:
                self._write_fd(fd, line)
                return
            stream = sys.stdout
        else:
            stream = self._stream
        if stream is None:
            raise SinkDrop("write_error", "no stdout")
        self._write_stream(stream, line)

    def _write_stream(self, stream: IO[str], line: bytes) -> None:
        try:
            stream.write(line.decode())
            stream.flush()
        except OSError as e:
            raise SinkDrop(_ERRNO_REASON.get(e.errno or 0, "write_error"), _errname(e)) from None
        except ValueError as e:  # a closed stream
            raise SinkDrop("write_error", "closed stream") from e

    def _write_fd(self, fd: int, line: bytes) -> None:
        poll = self._poll_fd.get(fd)
        if poll is None:
            poll = self._poll_fd[fd] = _needs_poll(fd)
        try:
            if not poll:
                # The common case (a file, /dev/null, a terminal): one write, done.
                n = os.write(fd, line)
                if n == len(line):
                    return
                view = memoryview(line)[n:]
            else:
                view = memoryview(line)
            while view:
                if poll and not _wait_writable(fd, self._wait_ms()):
                    self._stalled = True
                    raise SinkDrop("write_timeout", f"output not read for {self._timeout_ms} ms")
                self._stalled = False
                # A pipe takes at most PIPE_BUF atomically; a short write is resumed.
                n = os.write(fd, view[:PIPE_BUF] if poll else view)
                view = view[n:]
        except OSError as e:
            raise SinkDrop(_ERRNO_REASON.get(e.errno or 0, "write_error"), _errname(e)) from None

    def _wait_ms(self) -> int:
        # Stalled: a short wait only, so a reader that is merely slow still gets lines.
        return min(_STALLED_WAIT_MS, self._timeout_ms) if self._stalled else self._timeout_ms

    def flush(self) -> None:
        """Nothing of ours is buffered; a replaced stream is flushed per line already."""


def _wait_writable(fd: int, timeout_ms: int) -> bool:
    p = select.poll()
    p.register(fd, select.POLLOUT)
    events = p.poll(timeout_ms)
    # POLLERR/POLLHUP count as "ready": the write then fails with a precise errno.
    return bool(events)


def _errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, type(e).__name__)
