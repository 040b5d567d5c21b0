"""The threads that run the host's sync consent lookups, sized for load.

Why not a ``ThreadPoolExecutor``: its size is fixed, so under load lookups
wait in its queue and that wait counted against ``consent_timeout`` (8
threads, 64 concurrent requests, a 0.1 s lookup: 24 consenting users'
events dropped); and a hung lookup keeps its thread, so eight of them starved
every later lookup for the life of the process.

This pool starts a thread whenever a job arrives and no thread is idle, up
to :data:`MAX_WORKERS` (a lookup that hangs holds one; the rest still run).
Each job records when it *started*, so the caller's timeout runs from the
lookup's own start (:func:`wait`). Idle threads leave after
:data:`IDLE_SECONDS`, or within a quarter second once their pool is closed or
its runtime is gone (``reset()``); a fresh ``configure()`` gets a fresh pool
(see ``_consent._executor``). A hung lookup keeps its thread: Python cannot
stop a thread, and the host's lookup is the host's to bound.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

# Threads at most. Past this (every thread busy, most likely hung), a job
# waits for a free thread, within the caller's bound.
MAX_WORKERS = 128
# An idle thread leaves after this long without work.
IDLE_SECONDS = 5.0
# How often an idle thread checks whether its pool was closed.
_POLL = 0.25


class Job(concurrent.futures.Future[Any]):
    """A future that also says when its function started running."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__()
        self.fn, self.args = fn, args
        self.started = threading.Event()
        self.started_at = 0.0

    def run(self) -> None:
        if not self.set_running_or_notify_cancel():
            return  # the caller gave up while it was queued
        self.started_at = time.monotonic()
        self.started.set()
        try:
            result = self.fn(*self.args)
        except BaseException as e:  # a host callback's BaseException is its failure
            self.set_exception(e)
        else:
            self.set_result(result)
        finally:
            self.fn = self.args = None  # type: ignore[assignment]


class Pool(concurrent.futures.Executor):
    """Grows a thread per concurrent job (to MAX_WORKERS); idle threads leave."""

    def __init__(
        self, alive: Callable[[], bool] = lambda: True, name: str = "fxa_metrics-consent"
    ) -> None:
        # Checked by idle threads: False once the runtime this pool serves is
        # gone (reset() or a new configure()), and they leave.
        self._alive = alive
        self._name = name
        self._cv = threading.Condition(threading.Lock())
        self._jobs: deque[Job] = deque()
        self._idle = 0
        self._threads: set[threading.Thread] = set()
        self.closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        if kwargs:
            args = (*args, kwargs)  # pragma: no cover - lookups take one argument
        job = Job(fn, args)
        with self._cv:
            if self.closed:
                raise RuntimeError("the consent lookup pool is closed")
            self._jobs.append(job)
            if self._idle >= len(self._jobs):
                self._cv.notify()
            elif len(self._threads) < MAX_WORKERS:
                thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._threads.add(thread)
                thread.start()
        return job

    def _next(self) -> Job | None:
        """The next job, or None when this thread should leave (idle too long, or closed)."""
        with self._cv:
            deadline = time.monotonic() + IDLE_SECONDS
            while not self._jobs:
                if self.closed or time.monotonic() >= deadline or not self._alive():
                    self._threads.discard(threading.current_thread())
                    return None
                self._idle += 1
                try:
                    self._cv.wait(_POLL)
                finally:
                    self._idle -= 1
            return self._jobs.popleft()

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            job.run()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close: idle threads leave now; a running (perhaps hung) lookup keeps its thread."""
        with self._cv:
            self.closed = True
            while self._jobs:
                self._jobs.popleft().cancel()
            self._cv.notify_all()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join(_POLL * 4)

    @property
    def size(self) -> int:
        with self._cv:
            return len(self._threads)


def wait(job: Job, timeout: float) -> Any:
    """``job``'s result; at most ``timeout`` from when it started (and as long to start).

    Raises ``TimeoutError`` if it did not start, or did not finish, in time;
    re-raises what the lookup raised. A job that never started is cancelled.
    """
    if not job.started.wait(timeout):
        if job.cancel():
            raise TimeoutError("the lookup never started")
        # pragma: no cover - a race: it started between the wait and the cancel
        job.started.wait()  # set right after the state change
    remaining = job.started_at + timeout - time.monotonic()
    return job.result(max(0.0, remaining))
