"""Sentry rows: the capture's cost on the caller's thread, fxa_metrics vs plain sentry-sdk.

- disabled: ``fm.record(Crash(exc))`` with no DSN and no host Sentry vs
  ``sentry_sdk.capture_exception(exc)`` on an uninitialised SDK (which still
  builds the event);
- enabled: the same record with fxa_metrics' own client (our scopes, FxA
  scrubbing) vs ``capture_exception`` after ``sentry_sdk.init(dsn,
  default_integrations=False, auto_enabling_integrations=False)``; both send to
  one endpoint in a child process, queues drained between blocks (untimed).
  Sending happens on each SDK's transport thread, which thread CPU time does
  not count, on both sides alike.

Every block gets fresh exceptions, raised untimed. Run: ``python -m bench.bench_sentry``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sentry_sdk

import fxa_metrics as fm

from . import _fxa
from ._receivers import HttpEndpoint
from ._timing import ROUNDS, abba


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


class _Pool:
    """Fresh exceptions for each block, made before it is timed (raising is not the cost)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.excs: list[BaseException] = []

    def refill(self, side: str) -> None:
        self.excs = [_exc() for _ in range(self.n)]

    def runner(self, capture: Callable[[BaseException], object]) -> Callable[[int], None]:
        def run(k: int) -> None:
            pop = self.excs.pop
            for _ in range(k):
                capture(pop())

        return run


def _record(exc: BaseException) -> None:
    fm.record(fm.Crash(exc))


def _disabled() -> dict[str, Any]:
    assert not sentry_sdk.get_client().is_active(), "run without SENTRY_DSN / an initialised SDK"
    pool = _Pool(200)
    _fxa.configure(metrics_yaml=())
    try:
        out = abba(
            "Sentry disabled: record(Crash) vs naive capture_exception",
            pool.runner(_record),
            pool.runner(sentry_sdk.capture_exception),
            target="<= 0.02",
            ours_label="fm.record(fm.Crash(exc)), no DSN",
            base_label="sentry_sdk.capture_exception(exc), SDK not initialised",
            switch=pool.refill,
            n=pool.n,
        )
        _fxa.check_clean("Sentry disabled")
    finally:
        fm.reset()
    return out


def _enabled() -> dict[str, Any]:
    pool = _Pool(20)
    with HttpEndpoint() as recv:
        sentry_sdk.init(
            dsn=recv.dsn("1"), default_integrations=False, auto_enabling_integrations=False
        )
        host = sentry_sdk.get_client()
        _fxa.configure(metrics_yaml=(), sentry_dsn=recv.dsn("2"))

        def drain() -> None:
            fm.flush(timeout=10.0)
            host.flush(timeout=10.0)

        try:
            out = abba(
                "Sentry enabled: record(Crash) vs capture_exception, integrations off",
                pool.runner(_record),
                pool.runner(sentry_sdk.capture_exception),
                target="<= 1.2",
                ours_label="fm.record(fm.Crash(exc)), fxa_metrics' client, FxA scrubbing",
                base_label="sentry_sdk.capture_exception(exc) after init(dsn, integrations off)",
                switch=pool.refill,
                between=drain,
                n=pool.n,
            )
            _fxa.check_clean("Sentry enabled")
        finally:
            fm.reset()
            host.close(timeout=5.0)
            sentry_sdk.get_global_scope().set_client(None)
        got_ours, got_base = recv.count("2"), recv.count("1")
    expected = 3 + ROUNDS * 2 * pool.n
    assert got_ours == got_base == expected, (got_ours, got_base, expected)
    out["envelopes_each_side"] = expected
    return out


def run() -> list[dict[str, Any]]:
    return [_disabled(), _enabled()]


if __name__ == "__main__":
    for r in run():
        print(r)
