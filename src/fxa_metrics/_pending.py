"""Records held while their consent is pending (issue 11).

``record()`` is synchronous. When the user's consent can only be answered by
an *async* lookup (an async database pool) and nothing has awaited it yet,
the record cannot be decided on the spot. Dropping it (``consent_unresolved``)
made consent depend on middleware order and on the host remembering to
``await fm.resolve_consent()``. Instead such a record is **held**:

* the lookup is scheduled on the request's event loop (the loop running on
  this thread, or the one the ASGI integration remembered for the request, for
  sync handlers that run in a worker thread);
* when it answers, the held records are emitted (consenting user) or withheld
  and counted as ``consent`` drops (opted out, or the lookup failed: fail-closed);
* holding is bounded **in count** (``HOLD_MAX`` per request; beyond it a record
  is dropped as ``consent_pending_overflow``) and **in time** (the lookup's
  ``consent_timeout``, or ``UNBOUNDED_LOOKUP_BOUND`` when that is None; past it
  the records are withheld and ``consent_pending_timeout`` is counted);
* the end of the request (:func:`settle`, awaited by the ASGI integrations)
  waits for what is still pending, within the same bound.

Without an event loop to run the lookup on (a WSGI worker thread configured
with an async-only lookup) nothing is held: the consent module fails closed, as
before. docs/consent.md says to wire a sync lookup for sync services.

The hook is one call in ``_consent.gate`` (see :func:`intercept`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from . import _consent
from ._context import RequestContext, in_request
from ._sink import SinkDrop

HOLD_MAX = 256  # held records per request: a loop recording thousands cannot grow memory
UNBOUNDED_LOOKUP_BOUND = 5.0  # seconds, when consent_timeout=None leaves the lookup unbounded
_MARGIN = 0.25  # the lookup's own timeout answers first (counted as consent_lookup_timeout)

PENDING_OVERFLOW = "consent_pending_overflow"  # a drop: more than HOLD_MAX held
PENDING_TIMEOUT = "consent_pending_timeout"  # an error: no answer within the bound

_STATE = "fxa_metrics.pending"  # state[...] -> _Held
_LOOP = "fxa_metrics.loop"  # state[...] -> the request's event loop


def remember_loop(ctx: RequestContext) -> None:
    """Note the request's event loop, so a worker thread of the request can hold records too."""
    if in_request(ctx):
        ctx.state[_LOOP] = asyncio.get_running_loop()


def bound(rt: Any) -> float:
    """How long a record may be held, in seconds."""
    timeout: float | None = rt.settings.consent_timeout
    return (UNBOUNDED_LOOKUP_BOUND if timeout is None else timeout) + _MARGIN


class _Held:
    """One request's held records, per consent key, and the resolutions under way."""

    __slots__ = ("count", "futures", "lock", "records")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[_consent.Key, list[tuple[str, Any]]] = {}
        self.futures: list[asyncio.Future[None] | concurrent.futures.Future[None]] = []
        self.count = 0


def _loop_for(ctx: RequestContext) -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    loop: asyncio.AbstractEventLoop | None = ctx.state.get(_LOOP)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def _needs_async_lookup(ctx: RequestContext, rt: Any) -> bool:
    if _consent._in_lookup.get() or _consent._override(ctx) is not None:
        return False
    cache = ctx.state.get(_consent._CACHE)
    hit = cache.get(_consent._key(ctx)) if cache else None
    if hit is not None and hit.final:
        return False
    plan = _consent._plan(ctx, rt.settings)
    return not isinstance(plan, _consent.Answer) and _consent._is_async(plan[1])


def intercept(route: str, prepared: Any, ctx: RequestContext, rt: Any) -> bool:
    """Take ``prepared`` over if its consent is pending on an async lookup; True if taken.

    A taken record is emitted or withheld later, and counted either way.
    """
    if not in_request(ctx) or not _needs_async_lookup(ctx, rt):
        return False
    loop = _loop_for(ctx)
    if loop is None:
        return False  # nowhere to run the lookup: the consent module fails closed
    held: _Held | None = ctx.state.get(_STATE)
    if held is None:
        held = ctx.state.setdefault(_STATE, _Held())
    key = _consent._key(ctx)
    with held.lock:
        if held.count >= HOLD_MAX:
            rt.stats.drop(PENDING_OVERFLOW, _consent._label(prepared), f"over {HOLD_MAX} held")
            return True
        queue = held.records.get(key)
        first = queue is None
        if queue is None:
            queue = held.records[key] = []
        queue.append((route, prepared))
        held.count += 1
    if first:
        _schedule(loop, _resolve_then_release(ctx, rt, key, held), held)
    return True


def _schedule(loop: asyncio.AbstractEventLoop, coro: Any, held: _Held) -> None:
    fut: asyncio.Future[None] | concurrent.futures.Future[None]
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fut = loop.create_task(coro)
    else:
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
    with held.lock:
        held.futures.append(fut)


async def _resolve_then_release(
    ctx: RequestContext, rt: Any, key: _consent.Key, held: _Held
) -> None:
    opted_out = True  # fail-closed unless the lookup says otherwise
    try:
        answer = await asyncio.wait_for(_consent.resolve_async(ctx, rt), bound(rt))
        opted_out = answer.opted_out
    except TimeoutError:
        rt.stats.error(PENDING_TIMEOUT, "consent", f"no answer within {bound(rt)}s")
    except Exception as e:  # our bug: contained, kept for the pytest tripwire
        rt.stats.error("internal_error", "consent_pending", repr(e))
        rt.stats.keep(e)
    finally:
        # Also on cancellation (the loop shutting down): withheld, counted, not lost silently.
        _release(rt, key, held, opted_out)


def _release(rt: Any, key: _consent.Key, held: _Held, opted_out: bool) -> None:
    with held.lock:
        items = held.records.pop(key, [])
        held.count -= len(items)
    for route, prepared in items:
        if opted_out:
            rt.stats.drop(_consent.CONSENT, _consent._label(prepared))
            continue
        for sink in rt.sinks.get(route, ()):
            try:
                sink.emit(prepared)
            except SinkDrop as e:  # as the facade does: per sink, counted
                rt.stats.drop(e.reason, f"{route}:{type(sink).__name__}", e.detail)
            except Exception as e:
                rt.stats.drop("sink_error", f"{route}:{type(sink).__name__}", type(e).__name__)
                rt.stats.keep(e)


async def settle(ctx: RequestContext, rt: Any) -> None:
    """Wait (bounded) until every record this request held is emitted or withheld."""
    held: _Held | None = ctx.state.get(_STATE) if in_request(ctx) else None
    if held is None:
        return
    with held.lock:
        futures = list(held.futures)
    waits = [f if isinstance(f, asyncio.Future) else asyncio.wrap_future(f) for f in futures]
    if waits:
        # asyncio.wait neither raises the tasks' errors nor cancels them at the bound.
        await asyncio.wait(waits, timeout=bound(rt))


def pending_count(ctx: RequestContext) -> int:
    """How many of this request's records are held now (for tests and health)."""
    held: _Held | None = ctx.state.get(_STATE) if in_request(ctx) else None
    return 0 if held is None else held.count
