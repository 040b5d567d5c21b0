"""Issue 9: consent lookups sized for load, timed from their own start, never starved.

Real threads, real timing; every bound is generous (the machine has two
shared cores), and each test asserts a count that fails without the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _consent, _lookup_pool, testing

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload


@contextlib.contextmanager
def consent(lookup: Callable[[str], Any], **kw: Any) -> Iterator[testing.Capture]:
    kw.setdefault("strict", False)
    with testing.capture(
        metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS, consent_lookup_uid=lookup, **kw
    ) as cap:
        yield cap
        for payload in cap.payloads():
            validate_payload(payload)


def login(uid: str) -> None:
    with fm.bind(uid=uid):
        fm.record("login.complete", extra={"reason": "password"})


def run_threads(n: int, target: Callable[[int], None], timeout: float = 60.0) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a request thread never returned"


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fxa_metrics-consent"]


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_64_concurrent_requests_with_a_healthy_lookup_lose_no_consented_event() -> None:
    # A 0.1 s lookup that only returns once all 64 are running at once: with
    # the old fixed pool of 8 threads the rest queued (and 24 of 64 timed out
    # at 0.5 s); here every lookup gets its own thread, so none waits in a
    # queue. The barrier makes that independent of how loaded the machine is.
    requests = threading.Barrier(64)
    lookups = threading.Barrier(64)

    def lookup(uid: str) -> bool:
        lookups.wait(30)
        time.sleep(0.1)
        return False  # every user consents

    def request(i: int) -> None:
        requests.wait(30)
        login(f"{i:032x}")

    with consent(lookup, consent_timeout=10.0) as cap:
        run_threads(64, request)
        assert len(cap.pings()) == 64
        snap = fm.stats()
        assert snap.drops.get("consent", 0) == 0
        assert snap.errors == {}


def test_the_timeout_runs_from_the_lookups_own_start() -> None:
    # The job waits 0.6 s for a thread, then runs 0.6 s: 1.2 s after submit,
    # but 0.6 s after its own start, within the 1.0 s timeout. Timed from the
    # submit (as future.result(timeout) was), it would fail.
    gate = threading.Event()
    job = _lookup_pool.Job(lambda: time.sleep(0.6) or "answer", ())

    def late_start() -> None:
        gate.wait(10)
        job.run()

    starter = threading.Thread(target=late_start)
    starter.start()
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(_lookup_pool.wait(job, 1.0)))
    waiter.start()
    time.sleep(0.6)
    gate.set()
    waiter.join(10)
    starter.join(10)
    assert result == ["answer"]


def test_a_lookup_that_runs_past_its_own_timeout_fails_closed() -> None:
    release = threading.Event()

    def slow(uid: str) -> bool:
        release.wait(10)
        return False

    try:
        with consent(slow, consent_timeout=0.2) as cap:
            start = time.monotonic()
            login("a" * 32)
            took = time.monotonic() - start
            assert cap.pings() == []
            assert fm.stats().errors == {"consent_lookup_timeout": 1}
            assert took < 5.0
    finally:
        release.set()


def test_a_job_that_never_starts_is_cancelled_and_times_out() -> None:
    job = _lookup_pool.Job(lambda: True, ())
    with pytest.raises(TimeoutError):
        _lookup_pool.wait(job, 0.05)
    assert job.cancelled()
    job.run()  # a worker reaching it later skips it
    assert not job.started.is_set()


def test_hung_lookups_never_starve_later_ones() -> None:
    # Eight hung lookups once held the whole pool: every later lookup, even
    # after a fresh configure(), failed closed.
    release = threading.Event()
    answered: list[str] = []

    def lookup(uid: str) -> bool:
        if uid.startswith("0"):
            release.wait(30)  # hung
        answered.append(uid)
        return False

    try:
        with consent(lookup, consent_timeout=1.0) as cap:
            run_threads(8, lambda i: login("0" + f"{i:031x}"))
            assert fm.stats().errors == {"consent_lookup_timeout": 8}
            run_threads(16, lambda i: login("1" + f"{i:031x}"))
            assert len(cap.pings()) == 16
            assert fm.stats().errors == {"consent_lookup_timeout": 8}
        with consent(lookup, consent_timeout=1.0) as cap:  # a fresh configure()
            run_threads(8, lambda i: login("2" + f"{i:031x}"))
            assert len(cap.pings()) == 8
            assert fm.stats().errors == {}
    finally:
        release.set()


def test_configure_starts_a_fresh_pool_and_idle_threads_leave_after_reset() -> None:
    with consent(lambda uid: False):
        login("a" * 32)
        first = _consent._pool
        assert first is not None
        assert pool_threads()
    with consent(lambda uid: False):
        login("b" * 32)
        assert _consent._pool is not first
        assert first.closed
    # Reset: the runtime is gone, so the idle threads leave (within their poll).
    assert wait_until(lambda: not pool_threads(), timeout=10.0), pool_threads()


def test_an_idle_thread_leaves_after_its_idle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lookup_pool, "IDLE_SECONDS", 0.1)
    pool = _lookup_pool.Pool(name="fxa_metrics-idle-test")
    try:
        assert pool.submit(lambda: 1).result(10) == 1
        assert wait_until(lambda: pool.size == 0, timeout=10.0)
    finally:
        pool.shutdown()


def test_a_closed_pool_refuses_work() -> None:
    pool = _lookup_pool.Pool()
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: 1)


def test_the_pool_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past MAX_WORKERS every thread is busy: a new job waits for one, within
    # the caller's bound, instead of a thread per hung lookup forever.
    monkeypatch.setattr(_lookup_pool, "MAX_WORKERS", 2)
    pool = _lookup_pool.Pool(name="fxa_metrics-bound-test")
    release = threading.Event()
    try:
        hung = [pool.submit(release.wait, 30) for _ in range(2)]
        queued = pool.submit(lambda: "late")
        assert pool.size == 2
        with pytest.raises(TimeoutError):
            _lookup_pool.wait(queued, 0.1)
        assert queued.cancelled()
        release.set()
        assert all(h.result(10) for h in hung)
    finally:
        release.set()
        pool.shutdown()


class Interrupt(BaseException):
    """A host callback's own BaseException (not Exception)."""


@pytest.mark.parametrize("exc", [Interrupt, KeyboardInterrupt, SystemExit])
def test_a_base_exception_from_a_lookup_counts_as_the_lookup_failing(
    exc: type[BaseException],
) -> None:
    def lookup(uid: str) -> bool:
        raise exc("from the host's lookup")

    with consent(lookup) as cap:
        try:
            login("a" * 32)  # never raises into the host
            with fm.bind(uid="b" * 32):
                assert fm.resolve_consent_sync() is False
        except BaseException as e:  # a KeyboardInterrupt escaping would stop the whole run
            pytest.fail(f"the lookup's {e!r} escaped into the host")
        assert cap.pings() == []
        assert fm.stats().errors == {"consent_lookup_error": 2}
        assert fm.stats().drops == {"consent": 1}


def test_a_base_exception_without_a_timeout_counts_too() -> None:
    def lookup(uid: str) -> bool:
        raise Interrupt("from the host's lookup")

    with consent(lookup, consent_timeout=None) as cap:
        login("a" * 32)
        assert cap.pings() == []
        assert fm.stats().errors == {"consent_lookup_error": 1}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_resolve_consent_contains_a_base_exception(kind: str) -> None:
    def sync_lookup(uid: str) -> bool:
        raise Interrupt("sync")

    async def async_lookup(uid: str) -> bool:
        raise Interrupt("async")

    lookup = sync_lookup if kind == "sync" else async_lookup

    async def main() -> bool:
        with fm.bind(uid="a" * 32):
            return await fm.resolve_consent()

    with consent(lookup):
        assert asyncio.run(main()) is False
        assert fm.stats().errors == {"consent_lookup_error": 1}


def test_async_lookups_share_the_sized_pool() -> None:
    # A sync lookup on the async path runs in the same pool: 32 concurrent
    # requests with a 0.1 s lookup all resolve within the default timeout.
    def lookup(uid: str) -> bool:
        time.sleep(0.1)
        return False

    async def one(i: int) -> bool:
        with fm.bind(uid=f"{i:032x}"):
            return await fm.resolve_consent()

    async def main() -> list[bool]:
        return await asyncio.gather(*(one(i) for i in range(32)))

    with consent(lookup):
        assert asyncio.run(main()) == [True] * 32
        assert fm.stats().errors == {}


def test_closing_a_pool_cancels_what_is_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lookup_pool, "MAX_WORKERS", 1)
    pool = _lookup_pool.Pool(name="fxa_metrics-close-test")
    release = threading.Event()
    try:
        running = pool.submit(release.wait, 30)
        assert running.started.wait(10)
        queued = pool.submit(lambda: "never")
        pool.shutdown(wait=False)
        assert queued.cancelled()
        release.set()
        assert running.result(10) is True
    finally:
        release.set()
        pool.shutdown()
