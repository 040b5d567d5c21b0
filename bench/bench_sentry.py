"""Sentry capture cost on the caller's thread: fxa_metrics vs plain sentry-sdk, one run.

Rows (median µs per call, both sides measured in this run, interleaved):

- ``crash_disabled``: ``fm.record(Crash(exc))`` with no DSN and no host Sentry vs
  ``sentry_sdk.capture_exception(exc)`` with an uninitialised SDK (which still
  builds the event). Goal: <= 0.02x.
- ``crash_enabled``: the same record with an owned client vs ``capture_exception``
  after ``sentry_sdk.init(dsn, default_integrations=False,
  auto_enabling_integrations=False)``; both send to the same live loopback
  endpoint, queues drained between rounds (untimed). Ours includes the FxA
  scrubbing. Goal: <= 1.2x.

Run: ``python -m bench.bench_sentry``.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import sentry_sdk

import fxa_metrics as fm
from fxa_metrics import _facade
from fxa_metrics._recv_http import Receiver

ROUNDS = 30
PER_ROUND = 20


def _raise(depth: int, email: str) -> None:
    # A few frames with locals, as a request handler's crash would have.
    account = {"email": email, "uid": "0123456789abcdef0123456789abcdef", "n": depth}
    if depth:
        _raise(depth - 1, email)
    raise ValueError(f"lookup failed for {account['email']}")


def _exc() -> BaseException:
    try:
        _raise(3, "alice@example.com")
    except ValueError as e:
        return e
    raise AssertionError("unreachable")


def _configure(**kw: Any) -> None:
    fm.configure(
        service="fxa-bench",
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=(),
        glean_stream=io.StringIO(),
        mozlog_handler="never",
        **kw,
    )


def _time_calls(fn: Callable[[BaseException], object], n: int) -> list[float]:
    excs = [_exc() for _ in range(n)]  # raising is not part of the cost
    out = []
    for exc in excs:
        t = time.perf_counter()
        fn(exc)
        out.append(time.perf_counter() - t)
    return out


def _compare(
    name: str,
    ours: Callable[[BaseException], object],
    base: Callable[[BaseException], object],
    goal: float,
    between: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    o: list[float] = []
    b: list[float] = []
    _time_calls(ours, 5)
    _time_calls(base, 5)  # warm-up
    between()
    for _ in range(ROUNDS):
        o += _time_calls(ours, PER_ROUND)
        between()
        b += _time_calls(base, PER_ROUND)
        between()
    ours_us = statistics.median(o) * 1e6
    base_us = statistics.median(b) * 1e6
    return {
        "name": name,
        "ours_us": round(ours_us, 2),
        "baseline_us": round(base_us, 2),
        "ratio": round(ours_us / base_us, 4),
        "goal": f"<= {goal}",
        "met": ours_us / base_us <= goal,
    }


def _record(exc: BaseException) -> None:
    fm.record(fm.Crash(exc))


def run() -> list[dict[str, Any]]:
    rows = []
    assert not sentry_sdk.get_client().is_active(), "run without SENTRY_DSN / an initialised SDK"
    _configure()
    try:
        rows.append(_compare("crash_disabled", _record, sentry_sdk.capture_exception, 0.02))
    finally:
        _facade.reset()
    with Receiver() as recv:
        sentry_sdk.init(
            dsn=recv.dsn("1"), default_integrations=False, auto_enabling_integrations=False
        )
        host = sentry_sdk.get_client()
        _configure(sentry_dsn=recv.dsn("2"))

        def drain() -> None:
            fm.flush(timeout=5.0)
            host.flush(timeout=5.0)

        try:
            rows.append(
                _compare("crash_enabled", _record, sentry_sdk.capture_exception, 1.2, drain)
            )
        finally:
            _facade.reset()
            host.close(timeout=2.0)
            sentry_sdk.get_global_scope().set_client(None)
        got_ours, got_base = len(recv.envelopes("2")), len(recv.envelopes("1"))
    expected = 5 + ROUNDS * PER_ROUND
    assert got_ours == got_base == expected, (got_ours, got_base, expected)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
