"""fxa_metrics.fastapi: crashes, route tags, and consent held while an async lookup runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

import fxa_metrics as fm
import fxa_metrics.fastapi
from fxa_metrics import _pending, testing

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

OPTED_IN = "0123456789abcdef0123456789abcde1"
OPTED_OUT = "0123456789abcdef0123456789abcde0"


async def lookup(uid: str) -> bool:
    await asyncio.sleep(0.01)
    return uid.endswith("0")


def _app(order: str, *, resolve: bool) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/account/{uid}/login")
    async def login(uid: str) -> dict[str, str]:
        fm.record("login.complete", extra={"reason": "passkey"})
        return {"ok": "yes"}

    @app.post("/v1/account/{uid}/sync")
    def login_sync(uid: str) -> dict[str, str]:
        for _ in range(3):  # held together, one lookup
            fm.record("login.complete", extra={"reason": "password"})
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("async view failed")

    async def bind_user(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        parts = request.url.path.split("/")
        with fm.bind(uid=parts[3] if len(parts) > 3 else None):
            if resolve:
                await fm.resolve_consent()
            return await call_next(request)

    if order == "metrics-inner":
        fxa_metrics.fastapi.init_app(app)
        app.middleware("http")(bind_user)
    else:
        app.middleware("http")(bind_user)
        fxa_metrics.fastapi.init_app(app)
    return app


@pytest.fixture
def acap() -> Any:
    with testing.capture(
        metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS, consent_lookup_uid=lookup
    ) as c:
        yield c


@pytest.mark.parametrize("order", ["metrics-outer", "metrics-inner"])
@pytest.mark.parametrize("resolve", [True, False], ids=["resolve_consent", "no-resolve"])
def test_consent_does_not_depend_on_middleware_order(
    acap: testing.Capture, order: str, resolve: bool
) -> None:
    with TestClient(_app(order, resolve=resolve)) as client:
        for uid in (OPTED_IN, OPTED_OUT):
            assert client.post(f"/v1/account/{uid}/login").status_code == 200
            assert client.post(f"/v1/account/{uid}/sync").status_code == 200
    users = [p.metrics["string"]["account.user_id"] for p in acap.pings()]
    assert users == [OPTED_IN] * 4
    snap = fm.stats()
    assert snap.drops == {"consent": 4}
    assert "consent_unresolved" not in snap.errors


def test_a_crash_is_unhandled_once_with_an_error_summary(acap: testing.Capture) -> None:
    with TestClient(_app("metrics-outer", resolve=False), raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
        assert client.get("/nowhere/0123456789abcdef0123456789abcdef").status_code == 404
    [crash] = acap.records("sentry")
    assert crash.handled is False
    boom, missing = [r for r in acap.records("mozlog") if r.type == "request.summary"]
    assert (boom.level, boom.fields["code"], boom.fields["errno"]) == (logging.ERROR, 500, 999)
    assert (missing.level, missing.fields["code"]) == (logging.INFO, 404)
    assert [dict(t.tags)["path"] for t in acap.records("statsd")] == ["/boom", "_unmatched_"]


def test_health_paths_are_served(acap: testing.Capture) -> None:
    with TestClient(_app("metrics-outer", resolve=False)) as client:
        assert client.get("/__lbheartbeat__").status_code == 200
        resp = client.get("/__heartbeat__")
        assert resp.status_code == 200
        assert resp.json()["checks"]["fxa_metrics.sinks"] == "ok"
        assert client.get("/__version__").status_code == 404  # no version.json here


# ------------------------------------------------------------------ the holding itself


async def _in_request(uid: str, fn: Callable[[], Awaitable[None]]) -> None:
    with fm.bind(uid=uid) as ctx:
        _pending.remember_loop(ctx)
        await fn()
        rt = fm._facade.get_runtime()  # type: ignore[attr-defined]
        await _pending.settle(ctx, rt)


def test_held_records_are_bounded_in_count() -> None:
    with testing.capture(
        metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS, consent_lookup_uid=lookup
    ) as cap:

        async def many() -> None:
            for _ in range(_pending.HOLD_MAX + 5):
                fm.record("login.complete")
            assert _pending.pending_count(fm.current_context()) == _pending.HOLD_MAX

        asyncio.run(_in_request(OPTED_IN, many))
        assert len(cap.pings()) == _pending.HOLD_MAX
        assert fm.stats().drops == {"consent_pending_overflow": 5}


def test_held_records_are_bounded_in_time() -> None:
    async def hung(uid: str) -> bool:
        await asyncio.sleep(30)
        return False  # pragma: no cover - never reached

    with testing.capture(
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        consent_lookup_uid=hung,
        consent_timeout=0.2,
        strict=False,
    ) as cap:

        async def one() -> None:
            fm.record("login.complete")

        loop_time = asyncio.run(_timed(_in_request(OPTED_IN, one)))
        assert loop_time < 5.0
        assert cap.pings() == []
        snap = fm.stats()
        assert snap.drops == {"consent": 1}  # fail-closed
        assert snap.errors.get("consent_lookup_timeout") == 1


async def _timed(coro: Awaitable[None]) -> float:
    t0 = asyncio.get_running_loop().time()
    await coro
    return asyncio.get_running_loop().time() - t0


def test_without_a_loop_nothing_is_held_and_consent_fails_closed() -> None:
    # A WSGI thread wired with an async-only lookup: documented as unsupported.
    with testing.capture(
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        consent_lookup_uid=lookup,
        strict=False,
    ) as cap:
        with fm.bind(uid=OPTED_IN):
            fm.record("login.complete")
        assert cap.pings() == []
        assert fm.stats().errors.get("consent_unresolved") == 1


def test_a_record_made_by_the_lookup_itself_is_not_held() -> None:
    async def recording_lookup(uid: str) -> bool:
        fm.record("login.complete")  # would wait on its own answer
        return False

    with testing.capture(
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        consent_lookup_uid=recording_lookup,
        strict=False,
    ) as cap:

        async def one() -> None:
            fm.record("login.complete", extra={"reason": "outer"})

        asyncio.run(_in_request(OPTED_IN, one))
        assert [e["extra"] for e in cap.events()] == [{"reason": "outer"}]
