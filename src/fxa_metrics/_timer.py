"""``timer()``: time a block or a function (sync or async) into a statsd Timing.

The measurement becomes an ordinary :class:`~fxa_metrics.Timing` passed to
``record()``, so it is checked (name, tags, PII) and routed like any record:
strict mode raises on a bad name when the timing is recorded, production drops
and counts it, and the timed code's own result or exception is never touched.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar, cast

from . import _facade
from ._errors import RecordError
from ._records import Timing

F = TypeVar("F", bound=Callable[..., Any])


class Timer:
    """A reusable timer: ``with t:``, ``@t`` on a function, ``@t`` on a coroutine function.

    Start times live in a context variable (a stack), so one ``Timer`` can be
    entered from several threads or asyncio tasks at once, and nested, and
    every exit pairs with its own enter.
    """

    __slots__ = ("_starts", "name", "rate", "tags")

    def __init__(
        self, name: str, tags: Mapping[str, Any] | None = None, rate: float | None = None
    ) -> None:
        self.name = name
        self.tags = tags
        self.rate = rate
        self._starts: ContextVar[tuple[float, ...]] = ContextVar("fxa_metrics_timer", default=())

    def __repr__(self) -> str:
        return f"timer({self.name!r}, tags={self.tags!r})"

    def _record(self, start: float, failing: bool = False) -> None:
        ms = (time.perf_counter() - start) * 1000.0
        try:
            _facade.record(Timing(self.name, ms, tags=self.tags, rate=self.rate))
        except RecordError:
            # Strict mode raises on a bad timer; but while the timed code is failing,
            # its own exception must reach the caller unchanged (the drop is counted).
            if not failing:
                raise

    def __enter__(self) -> Timer:
        self._starts.set((*self._starts.get(), time.perf_counter()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A failing block is timed too: slow failures are what a dashboard must show.
        starts = self._starts.get()
        if not starts:  # an exit without an enter (misuse): nothing to time
            return
        self._starts.set(starts[:-1])
        self._record(starts[-1], failing=exc_type is not None)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_timed(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    self._record(start, failing=True)
                    raise
                self._record(start)
                return result

            return cast(F, async_timed)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                self._record(start, failing=True)
                raise
            self._record(start)
            return result

        return cast(F, timed)


def timer(name: str, tags: Mapping[str, Any] | None = None, rate: float | None = None) -> Timer:
    """Time a block or a function into a statsd Timing of ``name`` (milliseconds).

    >>> import fxa_metrics as fm
    >>> with fm.timer("db.query", tags={"table": "accounts"}):
    ...     pass
    >>> @fm.timer("handler.login")
    ... async def login() -> str:
    ...     return "ok"
    """
    return Timer(name, tags, rate)
