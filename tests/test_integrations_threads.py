"""fm.with_context and fm.Thread carry the request context into threads and executors."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import fxa_metrics as fm
from fxa_metrics import testing

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

UID = "0123456789abcdef0123456789abcdef"


def _users(cap: testing.Capture) -> list[str | None]:
    return [p.metrics.get("string", {}).get("account.user_id") for p in cap.pings()]


def test_a_plain_thread_does_not_see_the_request(cap: testing.Capture) -> None:
    # Why the helpers exist: this event goes out with no uid, and an opted-out
    # user's consent is not applied to it.
    with fm.bind(uid=UID, metrics_opt_out=True):
        t = threading.Thread(target=fm.record, args=("login.complete",))
        t.start()
        t.join()
    assert _users(cap) == [None]


def test_fm_thread_carries_the_request_and_its_consent(cap: testing.Capture) -> None:
    with fm.bind(uid=UID, metrics_opt_out=True):
        t = fm.Thread(target=fm.record, args=("login.complete",))
    t.start()  # started after the request's bind exited: still that request's context
    t.join()
    assert cap.pings() == []
    assert fm.stats().drops == {"consent": 1}
    with fm.bind(uid=UID, metrics_opt_out=False):
        t = fm.Thread(target=fm.record, args=("login.complete",))
        t.start()
        t.join()
    assert _users(cap) == [UID]


def test_with_context_in_an_executor_shares_the_requests_consent_answer() -> None:
    calls: list[str] = []

    def lookup(uid: str) -> bool:
        calls.append(uid)
        return False

    with (
        testing.capture(
            metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS, consent_lookup_uid=lookup
        ) as cap,
        ThreadPoolExecutor(4) as pool,
    ):
        with fm.bind(uid=UID):
            fm.record("login.complete")
            work = fm.with_context(fm.record)
            futures = [pool.submit(work, "login.complete") for _ in range(8)]
            for f in futures:
                f.result()
        # Outside the request, the pool's threads are back to no request at all.
        assert pool.submit(lambda: fm.current_context().uid).result() is None
        assert _users(cap) == [UID] * 9
    assert calls == [UID]  # one lookup for the request, threads included


def test_with_context_keeps_the_function_and_its_result() -> None:
    def add(a: int, b: int = 0) -> int:
        """Adds."""
        return a + b + (1 if fm.current_context().flow_id == "f" else 0)

    with fm.bind(flow_id="f"):
        wrapped = fm.with_context(add)
    assert wrapped(1, b=2) == 4
    assert wrapped.__doc__ == "Adds."
    assert fm.current_context().flow_id is None
