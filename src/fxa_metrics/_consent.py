"""Consent: may this prepared record go out on this route, for this request?

FxA's rule (auth-server): emit ⇔ service_enabled ∧ metrics_enabled(user).

``metrics_enabled(user)`` is resolved from the first source that applies, and
the answer is cached in the request's ``state`` (one lookup per request and
user at most):

1. the token credentials: ``RequestContext.metrics_opt_out`` (``metricsOptOutAt``);
2. the host's lookup by uid (``consent_lookup_uid``), sync or async;
3. the host's lookup by email (``consent_lookup_email``);
4. nobody known (anonymous, pre-account flows), or a user with no lookup wired: enabled.

A lookup that raises, returns something other than ``bool``/``None`` or takes
longer than ``consent_timeout`` counts as **opted out** (fail-closed), is
counted in ``stats().errors`` and logged once. Nothing here ever raises into
the host. The per-route matrix (DESIGN 5) is the :class:`Policy` each route
declares in the route table, applied by :func:`apply`, in one place:

==========================  ==============================  ==============================
route / record              opted-out user                  service disabled
==========================  ==============================  ==============================
PER_USER_PRODUCT (glean)    dropped (``consent``)           dropped (``service_disabled``)
DELETION_REQUEST            **sent**                        dropped (``service_disabled``)
AGGREGATE (statsd)          sent                            sent
OPERATIONAL_LOG (mozlog)    sent, analytics fields removed  sent
CRASH_NO_USER (sentry)      sent, no user context           sent
SERVICE_LEVEL (glean-sdk)   sent (never sees a user)        dropped (``service_disabled``)
==========================  ==============================  ==============================

Only a Glean product record that would otherwise go out triggers a lookup:
records that failed their definitions check, every record while the service
is disabled, deletion requests, statsd, MozLog and Sentry records never do.
docs/consent.md is the user-facing account of all this.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import attrs

from . import _lookup_pool
from . import _runtime as _runtime_mod
from ._config import ConsentLookup, Settings
from ._context import RequestContext, current, in_request
from ._records import Log
from ._runtime import Runtime

# Drop reasons (stats().drops): records withheld.
CONSENT = "consent"
SERVICE_DISABLED = "service_disabled"
# Error reasons (stats().errors): one per failed resolution, not per record.
LOOKUP_ERROR = "consent_lookup_error"  # the lookup raised or returned a non-bool
LOOKUP_TIMEOUT = "consent_lookup_timeout"  # it took longer than consent_timeout
# Only an async lookup applies and the caller is synchronous (record() without a
# prior ``await resolve_consent()``): we cannot await it there, so fail closed.
UNRESOLVED = "consent_unresolved"

# Where an answer came from.
TOKEN, UID, EMAIL, ANONYMOUS, UNWIRED, EXPLICIT = (
    "token",
    "uid",
    "email",
    "anonymous",
    "unwired",
    "explicit",
)


# privacy (issue 10): the analytics fields and their matcher live in _scrub, with
# strip_analytics(), the one function that removes them (MozLog and Sentry alike).

_CACHE = "fxa_metrics.consent"  # state[...] -> dict[Key, Answer]: what resolution found
_OVERRIDE = "fxa_metrics.consent_set"  # state[...] -> dict[User, bool]: set_opt_out()
# Set while a lookup runs: a record the lookup itself makes must not resolve
# (it would wait on its own request's lock, or recurse into the lookup).
_in_lookup: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fxa_metrics_in_consent_lookup", default=False
)

_LOCK = "fxa_metrics.consent_lock"  # state[...] -> threading.Lock (sync resolution)
_INFLIGHT = "fxa_metrics.consent_inflight"  # state[...] -> dict[Key, asyncio.Task]

# The consent inputs of a context: a cached answer holds only while they do, so
# rebinding metrics_opt_out (or another user) mid-request takes effect at once.
Key: TypeAlias = tuple[bool | None, str | None, str | None]
User: TypeAlias = tuple[str | None, str | None]  # (uid, email)


@attrs.frozen(slots=True)
class Answer:
    """A resolved ``metrics_enabled(user)``, negated: is this user opted out?"""

    opted_out: bool
    source: str
    # False: fail-closed only because an async lookup could not run on a sync
    # path; ``await resolve_consent()`` may still resolve it properly.
    final: bool = True


def _key(ctx: RequestContext) -> Key:
    return (ctx.metrics_opt_out, ctx.uid, ctx.email)


def _override(ctx: RequestContext) -> Answer | None:
    """What this request itself said with set_opt_out(): newer than any token or lookup."""
    overrides: dict[User, bool] | None = ctx.state.get(_OVERRIDE)
    if not overrides:
        return None
    value = overrides.get((ctx.uid, ctx.email))
    return None if value is None else Answer(value, EXPLICIT)


_Lookup: TypeAlias = tuple[str, ConsentLookup, str]  # (source, lookup, argument)


def _plan(ctx: RequestContext, settings: Settings | None) -> Answer | _Lookup:
    """The answer when no lookup is needed, else which lookup to make (the first that applies)."""
    if ctx.metrics_opt_out is not None:
        return Answer(ctx.metrics_opt_out, TOKEN)
    if settings is not None:
        if ctx.uid and settings.consent_lookup_uid is not None:
            return (UID, settings.consent_lookup_uid, ctx.uid)
        if ctx.email and settings.consent_lookup_email is not None:
            return (EMAIL, settings.consent_lookup_email, ctx.email)
    # A known user with no lookup wired is treated like an anonymous one: we
    # cannot know, and the host chose not to tell us (docs/consent.md says so).
    return Answer(False, UNWIRED if (ctx.uid or ctx.email) else ANONYMOUS)


def _interpret(source: str, result: Any) -> Answer | None:
    if result is True or result is False:
        return Answer(result, source)
    if result is None:
        # No such account. By email that is normal (sign-up: not created yet),
        # so enabled, as FxA. By uid it means a stale uid (account deleted):
        # opted out, as FxA, whose uid lookup throws AccountNotFound and fails closed.
        return Answer(source == UID, source)
    return None  # not a consent answer: the caller treats it as a lookup error


def _fail(rt: Runtime, source: str, reason: str, detail: str, final: bool = True) -> Answer:
    # The detail names the exception type only: its message may hold the email.
    rt.stats.error(reason, f"{source}_lookup", detail)
    return Answer(True, source, final)


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    )


def _discard(result: Any) -> None:
    # A sync-declared lookup that returned a coroutine: close it, or Python
    # warns "never awaited" at garbage collection, far from the cause.
    if inspect.iscoroutine(result):
        result.close()


# ------------------------------------------------------------------ worker pool

# Sync lookups run in a pool so that their duration can be bounded: the
# request thread waits at most consent_timeout from the lookup's own start,
# then fails closed. The pool grows a thread per concurrent lookup (see
# _lookup_pool), so load never turns into queueing and a hung lookup never
# starves the next. Each runtime (each configure()) gets its own pool; the
# old one is closed, and its idle threads leave.
_pool: _lookup_pool.Pool | None = None
_pool_owner: Any = None  # weakref to the runtime the pool serves
_pool_lock = threading.Lock()


def _executor(rt: Runtime) -> _lookup_pool.Pool:
    global _pool, _pool_owner
    pool = _pool
    if pool is not None and _pool_owner is not None and _pool_owner() is rt:
        return pool
    with _pool_lock:
        if _pool is None or _pool_owner is None or _pool_owner() is not rt:
            old = _pool
            owner = _pool_owner = weakref.ref(rt)
            _pool = _lookup_pool.Pool(alive=lambda: _runtime() is owner())
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _after_fork_in_child() -> None:
    # A pre-fork server (gunicorn) forks after import: the parent's workers do
    # not exist in the child, and a pool that believes they do never runs work.
    global _pool, _pool_owner, _pool_lock
    _pool = _pool_owner = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


# ------------------------------------------------------------------ resolution


def _cache(ctx: RequestContext) -> dict[Key, Answer] | None:
    if not in_request(ctx):
        return None  # the empty context's state is process-wide: never cache there
    cache: dict[Key, Answer] | None = ctx.state.get(_CACHE)
    if cache is None:
        cache = ctx.state.setdefault(_CACHE, {})
    return cache


def _lookup_sync(plan: _Lookup, rt: Runtime) -> Answer:
    source, fn, arg = plan
    if _is_async(fn):
        return _fail(rt, source, UNRESOLVED, "async lookup on a sync path", final=False)
    timeout: float | None = rt.settings.consent_timeout
    token = _in_lookup.set(True)
    try:
        if timeout is None:
            result: Any = fn(arg)
        else:
            # copy_context: a lookup may rely on the host's contextvars (Flask's app context).
            run = contextvars.copy_context().run
            # The timeout runs from the lookup's own start (issue 9), not from here.
            result = _lookup_pool.wait(_executor(rt).submit(run, fn, arg), timeout)
    except TimeoutError:
        return _fail(rt, source, LOOKUP_TIMEOUT, f"no answer within {timeout}s")
    except KeyboardInterrupt:
        if timeout is None:
            raise  # run in this thread: a real Ctrl-C, not the lookup's
        return _fail(rt, source, LOOKUP_ERROR, "KeyboardInterrupt")
    except BaseException as e:  # the host's lookup (even SystemExit): contained, fail closed
        return _fail(rt, source, LOOKUP_ERROR, type(e).__name__)
    finally:
        _in_lookup.reset(token)
    if inspect.isawaitable(result):
        _discard(result)
        return _fail(rt, source, UNRESOLVED, "lookup returned an awaitable", final=False)
    answer = _interpret(source, result)
    if answer is None:
        return _fail(rt, source, LOOKUP_ERROR, f"returned {type(result).__name__}")
    return answer


def resolve(ctx: RequestContext, rt: Runtime) -> Answer:
    """The request's answer, from the cache or resolved now with a sync lookup."""
    cache = _cache(ctx)
    key = _key(ctx)
    if cache is not None:
        hit = _override(ctx) or cache.get(key)
        if hit is not None:
            return hit
    plan = _plan(ctx, rt.settings)
    if isinstance(plan, Answer):
        return plan  # no lookup needed: as cheap to recompute as to cache
    if cache is None:  # pragma: no cover - the empty context never needs a lookup
        return _lookup_sync(plan, rt)
    if _in_lookup.get():
        return Answer(True, plan[0], final=False)  # made by the lookup itself: withheld
    lock: threading.Lock | None = ctx.state.get(_LOCK)
    if lock is None:
        lock = ctx.state.setdefault(_LOCK, threading.Lock())
    # Threads of one request wait for the first one's lookup instead of making their own.
    with lock:
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _lookup_sync(plan, rt)
    return hit


async def _lookup_async(plan: _Lookup, rt: Runtime, cache: dict[Key, Answer], key: Key) -> Answer:
    import asyncio  # here, not at import: a sync service never needs it

    source, fn, arg = plan
    timeout: float | None = rt.settings.consent_timeout
    _in_lookup.set(True)  # this task's own context: nothing to reset
    try:
        async with asyncio.timeout(timeout):
            if _is_async(fn):
                result: Any = await cast(Awaitable[Any], fn(arg))
            elif timeout is None:
                result = fn(arg)
            else:
                # Off the event loop, in our bounded pool (not the loop's default
                # executor, which asyncio.run() waits for at exit, hung lookup or not).
                loop = asyncio.get_running_loop()
                run = contextvars.copy_context().run
                result = await loop.run_in_executor(_executor(rt), run, fn, arg)
            if inspect.isawaitable(result):
                result = await result
    except TimeoutError:
        answer = _fail(rt, source, LOOKUP_TIMEOUT, f"no answer within {timeout}s")
    except asyncio.CancelledError:
        raise  # our task was cancelled: not the lookup's failure
    except BaseException as e:  # the host's lookup (even SystemExit): contained, fail closed
        answer = _fail(rt, source, LOOKUP_ERROR, type(e).__name__)
    else:
        interpreted = _interpret(source, result)
        if interpreted is None:
            interpreted = _fail(rt, source, LOOKUP_ERROR, f"returned {type(result).__name__}")
        answer = interpreted
    cache[key] = answer
    return answer


async def resolve_async(ctx: RequestContext, rt: Runtime) -> Answer:
    """As :func:`resolve`, awaiting async lookups (and running sync ones off the loop)."""
    import asyncio  # here, not at import: a sync service never needs it

    cache = _cache(ctx)
    key = _key(ctx)
    if cache is not None:
        hit = _override(ctx)
        if hit is not None:
            return hit
        hit = cache.get(key)
        if hit is not None and hit.final:
            return hit
    plan = _plan(ctx, rt.settings)
    if isinstance(plan, Answer):
        return plan
    if cache is None:  # pragma: no cover - the empty context never needs a lookup
        cache = {}
    inflight: dict[Key, asyncio.Task[Answer]] = ctx.state.setdefault(_INFLIGHT, {})
    task = inflight.get(key)
    # A done task here never finished its lookup (a completed one answered from
    # the cache above): it was cancelled, perhaps with another event loop.
    if task is None or task.done():
        # One task per request and user: concurrent tasks of the same request
        # (asyncio.gather in a handler) share its lookup. Shielded, so one
        # waiter being cancelled does not cancel the others' answer.
        task = inflight[key] = asyncio.ensure_future(_lookup_async(plan, rt, cache, key))
    return await asyncio.shield(task)


def _known(ctx: RequestContext, settings: Settings | None) -> Answer | None:
    """The answer if known without a lookup, None if only a lookup could tell."""
    if in_request(ctx):
        hit = _override(ctx)
        cache: dict[Key, Answer] | None = ctx.state.get(_CACHE)
        if hit is None and cache:
            hit = cache.get(_key(ctx))
        if hit is not None:
            return hit
    plan = _plan(ctx, settings)
    return plan if isinstance(plan, Answer) else None


def peek(ctx: RequestContext, settings: Settings | None) -> bool | None:
    """Opted out? True/False if known without a lookup, None if only a lookup could tell."""
    answer = _known(ctx, settings)
    return None if answer is None else answer.opted_out


def set_opt_out_for(ctx: RequestContext, opted_out: bool) -> None:
    if not in_request(ctx):
        return  # nothing is cached outside a request, so there is nothing to change
    # Per user, not per Key: it outranks the token (read at request start, now
    # stale) and survives invalidate_consent(), for the rest of the request.
    overrides: dict[User, bool] = ctx.state.setdefault(_OVERRIDE, {})
    overrides[(ctx.uid, ctx.email)] = opted_out


def invalidate_for(ctx: RequestContext) -> None:
    if in_request(ctx):
        # New dicts, not cleared ones: a lookup still in flight writes into the old one.
        ctx.state[_CACHE] = {}
        ctx.state[_INFLIGHT] = {}


# ------------------------------------------------------------------ the policies


class Policy(enum.Enum):
    """What consent means for a route: every route in the table names one, with no default.

    A route without a policy cannot be configured (``_route_table.validate``),
    and :func:`apply` has a function for every member, so a new route is safe
    by construction: there is no "pass through" case to fall into.
    """

    #: Glean product data about a user: sent only if the service is enabled and
    #: the user has not opted out (resolved, at most once per request).
    PER_USER_PRODUCT = "per-user product data"
    #: The server-deletion-request: sent for an opted-out user (so the data can
    #: be deleted); only a disabled service withholds it.
    DELETION_REQUEST = "deletion request"
    #: Aggregates with no identity by construction (statsd, front-end timings):
    #: sent in every cell.
    AGGREGATE = "aggregate without identity"
    #: Operational logs: always sent; the FxA analytics fields are stripped
    #: unless the user is known to consent.
    OPERATIONAL_LOG = "operational logs, analytics fields stripped"
    #: Crashes: always sent; user context only for a user known to consent.
    CRASH_NO_USER = "crashes without user context"
    #: Service-level data (the glean-sdk route): the service switch alone; the
    #: route never sees a user.
    SERVICE_LEVEL = "service-level, the service switch alone"


def _label(prepared: Any) -> str:
    events = getattr(prepared, "events", ())
    if events:
        return f"{events[0]['category']}.{events[0]['name']}"
    name = getattr(prepared, "ping", None) or getattr(prepared, "name", None)
    return str(name) if name is not None else type(prepared).__name__


def _per_user_product(prepared: Any, ctx: RequestContext, rt: Runtime) -> Any:
    if not rt.settings.enabled:
        rt.stats.drop(SERVICE_DISABLED, _label(prepared))
        return None
    # The hot path: the token said "not opted out", or nobody is known, and
    # this request has not said otherwise with set_opt_out(). resolve() would
    # answer the same (no lookup is ever made or cached for such a context).
    opt = ctx.metrics_opt_out
    if (opt is False or (opt is None and not ctx.uid and not ctx.email)) and not ctx.state.get(
        _OVERRIDE
    ):
        return prepared
    # issue 11: pending on an async-only lookup (sync record()): held by
    # _pending, then emitted or withheld when the lookup answers.
    from . import _pending  # here: it imports asyncio, which a sync service never needs

    if _pending.intercept("glean", prepared, ctx, rt):
        return None
    if resolve(ctx, rt).opted_out:
        rt.stats.drop(CONSENT, _label(prepared))
        return None
    return prepared


def _service_switch(prepared: Any, ctx: RequestContext, rt: Runtime) -> Any:
    if not rt.settings.enabled:
        rt.stats.drop(SERVICE_DISABLED, _label(prepared))
        return None
    return prepared


def _aggregate(prepared: Any, ctx: RequestContext, rt: Runtime) -> Any:
    return prepared


def _operational_log(rec: Log, ctx: RequestContext, rt: Runtime) -> Log:
    # Strip unless the user is known to consent. No lookup for a log line: an
    # unresolved user is treated as opted out here (nothing operational is lost).
    if peek(ctx, rt.settings) is False:
        return rec
    # privacy (issue 10): at any depth (a nested metricsContext too), by the one function.
    # (Imported here: its patterns are a fifth of `import fxa_metrics` otherwise.)
    from ._scrub import strip_analytics

    fields = strip_analytics(rec.fields)
    if fields is rec.fields:
        return rec
    # The constructor, not attrs.evolve: a third of the cost on every log line.
    return Log(rec.type, fields, rec.level, rec.message)


def user_context_allowed(ctx: RequestContext, rt: Runtime | None) -> bool:
    """May a crash carry this request's user context (hashed uid, FxA metrics context)?

    Only when the user is *known* not to have opted out: from the token, an
    answer this request already resolved (a uid or email lookup), or because
    nobody is known. A crash never triggers a lookup (the lookup's database
    may be why we crashed), so an unresolved user gets no user context: the
    conservative side. So is a known user with no lookup wired: Glean treats
    them as enabled (docs/consent.md), but nothing *says* they consent. This
    is the one place the decision is made; the CRASH_NO_USER policy applies it.
    """
    answer = _known(ctx, rt.settings if rt is not None else None)
    return answer is not None and not answer.opted_out and answer.source != UNWIRED


def _crash_no_user(prepared: Any, ctx: RequestContext, rt: Runtime) -> Any:
    if user_context_allowed(ctx, rt):
        return prepared
    strip = getattr(prepared, "without_user", None)
    return strip() if strip is not None else prepared


PolicyFn: TypeAlias = Callable[[Any, RequestContext, Runtime], Any]

POLICIES: dict[Policy, PolicyFn] = {
    Policy.PER_USER_PRODUCT: _per_user_product,
    Policy.DELETION_REQUEST: _service_switch,
    Policy.AGGREGATE: _aggregate,
    Policy.OPERATIONAL_LOG: _operational_log,
    Policy.CRASH_NO_USER: _crash_no_user,
    Policy.SERVICE_LEVEL: _service_switch,
}


def apply(policy: Policy | None, prepared: Any, ctx: RequestContext, rt: Runtime) -> Any:
    """The record to send under ``policy`` (possibly reduced), or None to withhold it.

    A withheld record is counted on ``rt.stats`` here, with its reason. A
    missing or unknown policy raises LookupError, so nothing is sent (fail
    closed); the route table refuses such a route at configure() anyway.
    """
    fn = POLICIES.get(policy) if policy is not None else None
    if fn is None:
        raise LookupError(f"no consent policy {policy!r}")
    return fn(prepared, ctx, rt)


# ------------------------------------------------------------------ public API


def _contained(rt: Runtime, e: BaseException) -> bool:
    """Count our own bug; True if strict mode wants it raised."""
    rt.stats.error("internal_error", "consent", repr(e))
    rt.stats.keep(e)
    return bool(rt.strict)


def _runtime() -> Runtime | None:
    return _runtime_mod.current()


async def resolve_consent() -> bool:
    """Resolve the current request's consent now, awaiting an async lookup; cache it.

    Returns whether a Glean product event recorded in this request would be
    emitted (service enabled and the user's metrics enabled). Call it at the
    start of an async request (the ASGI middleware does): ``record()`` is
    synchronous and cannot await an async lookup itself. Never raises
    (except cancellation); a failed lookup answers False.

    >>> import asyncio, fxa_metrics as fm
    >>> asyncio.run(fm.resolve_consent())  # unconfigured, anonymous: enabled
    True
    """
    rt = _runtime()
    ctx = current()
    if rt is None:
        return peek(ctx, None) is not True
    if not rt.settings.enabled:
        return False  # everything is dropped anyway: no lookup
    try:
        return not (await resolve_async(ctx, rt)).opted_out
    except Exception as e:
        if _contained(rt, e):
            raise
        return False


def resolve_consent_sync() -> bool:
    """As :func:`resolve_consent`, for synchronous code: sync lookups only.

    ``record()`` resolves lazily by itself; call this to resolve up front
    (e.g. to decide whether to compute an expensive event at all).
    """
    rt = _runtime()
    ctx = current()
    if rt is None:
        return peek(ctx, None) is not True
    if not rt.settings.enabled:
        return False
    try:
        return not resolve(ctx, rt).opted_out
    except Exception as e:
        if _contained(rt, e):
            raise
        return False


def set_opt_out(opted_out: bool) -> None:
    """The current request's user has just opted out (True) or in (False).

    Takes effect from the next record on, without a lookup: call it where the
    request changes the account's ``metricsOptOutAt`` (the settings toggle).
    For the rest of the request it outranks the token credentials (read when
    the request began, so now stale) and any looked-up answer, for this user
    (uid and email as bound now). Later requests resolve afresh and see the
    change through the token or the lookup. Outside a bound request it does nothing.
    """
    set_opt_out_for(current(), bool(opted_out))


def invalidate_consent() -> None:
    """Forget the current request's cached consent: the next product record resolves again.

    For when consent may have changed elsewhere mid-request and the new value
    is not known here. The re-resolution makes one more lookup. It follows the
    usual order, so the token credentials bound in the context still answer
    first; what this request said with :func:`set_opt_out` is kept.
    """
    invalidate_for(current())
