"""The facade: routing, strict vs production, containment, reset."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import pytest

import fxa_metrics as fm
from fxa_metrics import testing

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

UID = "0123456789abcdef0123456789abcdef"


def _configure(**kw: object) -> io.StringIO:
    out = io.StringIO()
    settings: dict[str, object] = {
        "service": "fxa-test-api",
        "app_id": "accounts_backend_dev",
        "app_version": "1.2.3",
        "channel": "development",
        "metrics_yaml": EXAMPLE_METRICS,
        "pings_yaml": EXAMPLE_PINGS,
        "glean_stream": out,
        "mozlog_handler": "never",
    }
    settings.update(kw)
    fm.configure(**settings)
    return out


def test_record_before_configure_is_a_noop() -> None:
    assert not fm.is_configured()
    fm.record("login.complete", extra={"reason": "password"})
    fm.record(fm.Timing("x", 1.0))
    fm.record(42)
    assert fm.stats().dropped == 0


def test_routing_table_covers_every_record_kind() -> None:
    kinds = {fm.Event, fm.Metrics, fm.DeletionRequest, fm.Log, fm.Transaction}
    kinds |= {fm.Timing, fm.Counter, fm.Gauge, fm.Set, fm.Crash, fm.GleanMetric}
    kinds |= {fm.PageLoad}  # issue 15: front-end page loads, to Sentry Performance
    routed = [kind for route in fm.ROUTES.values() for kind in route.kinds]
    assert sorted(routed, key=repr) == sorted(kinds, key=repr)  # each kind exactly once
    assert all(isinstance(route.policy, fm.Policy) for route in fm.ROUTES.values())
    with pytest.raises(TypeError):
        fm.ROUTES["x"] = fm.ROUTES["glean"]  # type: ignore[index]


def test_records_are_frozen_and_copy_their_mappings() -> None:
    extra = {"reason": "password"}
    ev = fm.Event("login.complete", extra)
    extra["reason"] = "changed"
    assert ev.extra["reason"] == "password"
    with pytest.raises(AttributeError):
        ev.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ev.extra["reason"] = "x"  # type: ignore[index]


def test_configure_fails_loudly_on_bad_settings() -> None:
    with pytest.raises(fm.ConfigurationError, match="app_id"):
        _configure(app_id="Not An Id")
    with pytest.raises(fm.ConfigurationError, match="unexpected keyword"):
        _configure(chanel="typo")
    with pytest.raises(fm.DefinitionsError, match="file not found"):
        _configure(metrics_yaml="/nonexistent/metrics.yaml")
    with pytest.raises(fm.ConfigurationError, match="unknown route"):
        _configure(sinks={"nowhere": []})
    assert not fm.is_configured()


def test_strict_mode_raises_precise_errors() -> None:
    _configure(strict=True)
    with pytest.raises(fm.UndefinedMetricError) as e:
        fm.record("login.nope")
    assert e.value.metric == "login.nope"
    with pytest.raises(fm.InvalidExtraError) as e2:
        fm.record("login.error", extra={"errorCode": 103})
    assert (e2.value.metric, e2.value.field) == ("login.error", "errorCode")
    with pytest.raises(fm.InvalidExtraError) as e3:
        fm.record("login.complete", extra={"attempts": "three"})
    assert e3.value.field == "attempts"
    with pytest.raises(fm.InvalidRecordError):
        fm.record(42)
    assert all(isinstance(x, fm.FxaMetricsError) for x in (e.value, e2.value, e3.value))


def test_production_mode_drops_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    out = _configure(strict=False)
    for _ in range(3):
        fm.record("login.error", extra={"errorCode": 103})
    fm.record("login.nope")
    fm.record(object())
    fm.record("login.complete", extra={"reason": "ok"})
    snap = fm.stats()
    assert snap.drops == {"invalid_extra": 3, "undefined": 1, "invalid_record": 1}
    assert snap.drops_by_metric[("invalid_extra", "login.error")] == 3
    warnings = [r for r in caplog.records if r.name == "fxa_metrics"]
    assert len(warnings) == 3  # once per (reason, metric), not once per drop
    assert "errorCode" in warnings[0].getMessage()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # only the good record went out
    assert json.loads(json.loads(lines[0])["Fields"]["payload"])["events"][0]["name"] == "complete"


class _Boom(fm.Sink):
    def emit(self, record: object) -> None:
        raise RuntimeError("sink down")


@pytest.mark.parametrize("strict", [True, False])
def test_a_failing_sink_is_contained_and_others_still_get_the_record(strict: bool) -> None:
    out = _configure(strict=strict, sinks={"glean": [_Boom()]})
    fm.record("login.complete", extra={"reason": "ok"})  # never raises into the host
    assert len(out.getvalue().splitlines()) == 1
    assert fm.stats().drops == {"sink_error": 1}
    rt = fm._facade.get_runtime()
    assert rt is not None
    assert [type(e) for e in rt.stats.internal_errors] == [RuntimeError]


def test_reset_returns_to_noop_and_closes_sinks() -> None:
    closed = []

    class Closing(fm.Sink):
        def emit(self, record: object) -> None:
            pass

        def close(self, timeout: float | None = None) -> None:
            closed.append(timeout)

    _configure(sinks={"mozlog": [Closing()]})
    fm.reset(timeout=1.5)
    assert closed == [1.5]
    assert not fm.is_configured()


def test_record_from_threads_and_tasks_keeps_each_context() -> None:
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as cap:

        def worker(i: int) -> None:
            with fm.bind(uid=f"{i:032x}", flow_id=f"flow-{i}"):
                fm.record("login.complete", extra={"reason": str(i)})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        async def task(i: int) -> None:
            with fm.bind(uid=f"{100 + i:032x}", flow_id=f"flow-{100 + i}"):
                await asyncio.sleep(0)
                fm.record("login.complete", extra={"reason": str(100 + i)})

        async def main() -> None:
            await asyncio.gather(*(task(i) for i in range(8)))

        asyncio.run(main())
        pings = cap.pings()
        assert len(pings) == 16
        for p in pings:
            n = int(p.events[0]["extra"]["reason"])
            assert p.metrics["string"]["account.user_id"] == f"{n:032x}"
            assert p.metrics["string"]["session.flow_id"] == f"flow-{n}"


def test_uid_sha256_matches_fxa_test_vector() -> None:
    assert fm.uid_sha256(UID) == (
        "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9"
    )


def test_bind_rejects_unknown_fields() -> None:
    with pytest.raises(fm.ConfigurationError, match="flowId"), fm.bind(flowId="x"):
        pass


def test_opted_out_user_product_events_dropped_but_deletion_sent(cap: testing.Capture) -> None:
    with fm.bind(uid=UID, metrics_opt_out=True):
        fm.record("login.complete", extra={"reason": "password"})
        fm.record(fm.DeletionRequest())
    assert [p.ping for p in cap.pings()] == ["server-deletion-request"]
    assert fm.stats().drops == {"consent": 1}


def test_reconfiguring_closes_the_previous_sinks() -> None:
    closed: list[str] = []

    class Closing(fm.Sink):
        def __init__(self, name: str) -> None:
            self.name = name

        def emit(self, record: object) -> None:
            pass

        def close(self, timeout: float | None = None) -> None:
            closed.append(self.name)

    _configure(sinks={"mozlog": [Closing("first")]})
    _configure(sinks={"mozlog": [Closing("second")]})
    assert closed == ["first"]
    fm.reset()
    assert closed == ["first", "second"]


def test_bad_bind_fields_in_production_are_dropped_and_counted_not_raised() -> None:
    out = _configure(strict=False)
    with fm.bind(flowId="x", uid=UID, metrics_opt_out="yes", user_agent=42):  # type: ignore[arg-type]
        ctx = fm.current_context()
        fm.record("login.complete")
    # The good fields stay; the bad ones are gone, counted, and the request goes on.
    # A malformed opt-out flag fails closed (issue 10): the user counts as opted out.
    assert (ctx.uid, ctx.metrics_opt_out, ctx.user_agent) == (UID, True, None)
    assert fm.stats().errors == {"invalid_context": 2, "invalid_opt_out": 1}
    assert out.getvalue() == ""


def test_bad_bind_fields_in_strict_mode_raise() -> None:
    _configure(strict=True)
    with (
        pytest.raises(fm.ConfigurationError, match="metrics_opt_out must be a bool"),
        fm.bind(metrics_opt_out="yes"),  # type: ignore[arg-type]
    ):
        pass
