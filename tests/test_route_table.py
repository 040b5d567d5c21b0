"""The routing table: a route is safe by construction, sinks cannot corrupt each other."""

from __future__ import annotations

import io
import json
import textwrap
from typing import Any

import attrs
import pytest

import fxa_metrics as fm
from fxa_metrics import _runtime

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

UID = "0123456789abcdef0123456789abcdef"


def _settings(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "service": "fxa-test-api",
        "app_id": "accounts_backend_dev",
        "app_version": "1.2.3",
        "channel": "development",
        "metrics_yaml": EXAMPLE_METRICS,
        "pings_yaml": EXAMPLE_PINGS,
        "mozlog_handler": "host",
    }
    base.update(kw)
    return base


# ------------------------------------------------------------------ a fifth route


@attrs.frozen
class Audit:
    """A new record kind, as a service would add one."""

    action: str


class ListSink(fm.Sink):
    def __init__(self) -> None:
        self.items: list[Any] = []

    def emit(self, record: Any) -> None:
        self.items.append(record)


def _audit_route(policy: fm.Policy | None, sink: ListSink) -> fm.Route:
    # A route in a few lines: kinds, check, consent policy, sinks.
    return fm.Route(
        name="audit",
        kinds=(Audit,),
        check=lambda rt, rec, ctx: rec,
        policy=policy,
        sinks=lambda settings, built: [sink],
    )


def test_a_route_without_a_policy_cannot_be_configured() -> None:
    with pytest.raises(fm.ConfigurationError, match=r"audit.*no consent policy"):
        fm.configure(**_settings(routes=[_audit_route(None, ListSink())]))
    assert not fm.is_configured()
    with pytest.raises(fm.ConfigurationError, match="no consent policy"):
        fm.configure(**_settings(routes=[_audit_route("per-user", ListSink())]))  # type: ignore[arg-type]


def test_a_route_is_required_to_name_its_policy() -> None:
    with pytest.raises(TypeError, match="policy"):
        fm.Route(name="x", kinds=(Audit,), check=lambda rt, rec, ctx: rec)  # type: ignore[call-arg]


def test_a_new_per_user_route_withholds_an_opted_out_users_record() -> None:
    sink = ListSink()
    fm.configure(**_settings(routes=[_audit_route(fm.Policy.PER_USER_PRODUCT, sink)]))
    with fm.bind(uid=UID, metrics_opt_out=True):
        fm.record(Audit("password.changed"))  # type: ignore[call-overload]
    assert sink.items == []
    assert fm.stats().drops == {"consent": 1}
    with fm.bind(uid=UID, metrics_opt_out=False):
        fm.record(Audit("password.changed"))  # type: ignore[call-overload]
    assert sink.items == [Audit("password.changed")]


def test_a_new_aggregate_route_is_sent_for_everyone() -> None:
    sink = ListSink()
    fm.configure(**_settings(routes=[_audit_route(fm.Policy.AGGREGATE, sink)], enabled=False))
    with fm.bind(uid=UID, metrics_opt_out=True):
        fm.record(Audit("x"))  # type: ignore[call-overload]
    assert len(sink.items) == 1


def test_a_kind_routed_twice_is_refused() -> None:
    clash = fm.Route(
        name="dup", kinds=(fm.Timing,), check=lambda rt, rec, ctx: rec, policy=fm.Policy.AGGREGATE
    )
    with pytest.raises(fm.ConfigurationError, match="Timing is routed twice"):
        fm.configure(**_settings(routes=[clash]))


def test_a_feed_to_an_unknown_route_is_refused() -> None:
    bad = fm.Route(
        name="feeder",
        kinds=(Audit,),
        check=lambda rt, rec, ctx: rec,
        policy=fm.Policy.AGGREGATE,
        feeds=[fm.Feed("nowhere", lambda rec: rec)],
    )
    with pytest.raises(fm.ConfigurationError, match="feeds 'nowhere'"):
        fm.configure(**_settings(routes=[bad]))


def test_every_policy_has_a_function_and_a_missing_one_fails_closed() -> None:
    from fxa_metrics import _consent

    assert set(_consent.POLICIES) == set(fm.Policy)
    fm.configure(**_settings())
    rt = _runtime.current()
    assert rt is not None
    with pytest.raises(LookupError):
        _consent.apply(None, object(), fm.current_context(), rt)


def test_routes_are_read_only() -> None:
    with pytest.raises(TypeError):
        fm.ROUTES["glean"] = fm.ROUTES["statsd"]  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fm.ROUTES["glean"].policy = fm.Policy.AGGREGATE  # type: ignore[misc]
    assert fm.ROUTES["glean"].policy is fm.Policy.PER_USER_PRODUCT
    assert fm.ROUTES["glean_deletion"].policy is fm.Policy.DELETION_REQUEST


# ------------------------------------------------------------------ immutable prepared records


class Mutator(fm.Sink):
    """A sink placed before the real one that tries to change what it was given."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def emit(self, record: Any) -> None:
        attempts = [
            lambda: record.metrics["string"].__setitem__("account.user_id", "attacker"),
            lambda: record.metrics.__setitem__("string", {}),
            lambda: record.events[0]["extra"].__setitem__("reason", "forged"),
            lambda: record.events[0].update({"name": "forged"}),
            lambda: record.events[0]["extra"].pop("reason"),
            lambda: record.metrics["string"].clear(),
        ]
        for attempt in attempts:
            try:
                attempt()
            except TypeError as e:
                self.failures.append(str(e))


def test_a_mutating_sink_cannot_change_the_wire() -> None:
    from fxa_metrics import _glean

    def payload(before: list[fm.Sink]) -> dict[str, Any]:
        out = io.StringIO()
        encoder = _glean.GleanEncoder("accounts_backend_dev", "1.2.3", "development", "x")
        real = _glean.GleanServerSink(encoder, out)
        fm.configure(**_settings(replace_sinks=True, sinks={"glean": [*before, real]}))
        with fm.bind(uid=UID, flow_id="f" * 32):
            fm.record("login.complete", extra={"reason": "password"})
        fm.reset()
        (text,) = out.getvalue().splitlines()
        sent: dict[str, Any] = json.loads(json.loads(text)["Fields"]["payload"])
        sent.pop("ping_info")  # times
        return sent

    clean = payload([])
    mutator = Mutator()
    mutated = payload([mutator])  # the mutator runs first, the real sink second
    assert len(mutator.failures) == 6  # every attempt refused
    assert mutated == clean
    assert mutated["metrics"]["string"]["account.user_id"] == UID
    assert mutated["events"][0]["extra"] == {"reason": "password"}


def test_a_mutating_sink_cannot_change_a_log_or_a_crash() -> None:
    seen: list[Any] = []

    class Nested(fm.Sink):
        def emit(self, record: Any) -> None:
            for action in (
                lambda: record.fields["ctx"].__setitem__("flow", "x"),
                lambda: record.extra["nested"].append(1),
            ):
                try:
                    action()
                except (TypeError, AttributeError, KeyError):
                    seen.append(type(record).__name__)

    cap_sink = ListSink()
    fm.configure(**_settings(replace_sinks=True, sinks={"mozlog": [Nested(), cap_sink]}))
    fm.record(fm.Log("op", {"ctx": {"flow": "a"}}))
    assert cap_sink.items[0].fields["ctx"] == {"flow": "a"}
    assert seen == ["Log", "Log"]


# ------------------------------------------------------------------ internal errors


def test_record_contains_an_internal_error_in_production() -> None:
    class Broken:
        @property
        def name(self) -> str:
            raise RuntimeError("hostile name")

    def exploding_check(rt: Any, rec: Any, ctx: Any) -> Any:
        raise ZeroDivisionError("our bug")

    route = fm.Route(
        name="audit", kinds=(Audit,), check=exploding_check, policy=fm.Policy.AGGREGATE
    )
    fm.configure(**_settings(routes=[route], strict=False))
    fm.record(Audit("x"))  # type: ignore[call-overload]
    fm.record(Broken())  # type: ignore[call-overload]
    assert fm.stats().drops == {"internal_error": 1, "invalid_record": 1}
    rt = _runtime.current()
    assert rt is not None
    assert [type(e) for e in rt.stats.internal_errors] == [ZeroDivisionError]


def test_the_pytest_tripwire_reraises_a_contained_internal_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_app=textwrap.dedent(
            """
            import os
            import attrs
            import pytest
            import fxa_metrics as fm

            @attrs.frozen
            class Audit:
                action: str

            def boom(rt, rec, ctx):
                raise ZeroDivisionError("a bug inside fxa_metrics")

            AUDIT = fm.Route(name="audit", kinds=(Audit,), check=boom, policy=fm.Policy.AGGREGATE)

            @pytest.mark.fxa_metrics(strict=False, routes=[AUDIT], metrics_yaml=os.environ["MY"],
                                     pings_yaml=os.environ["PY"])
            def test_records(fxa_metrics_capture):
                fm.record(Audit("x"))  # contained: production mode never raises here
                assert fm.stats().drops == {"internal_error": 1}
            """
        )
    )
    pytester._monkeypatch.setenv("MY", str(EXAMPLE_METRICS))
    pytester._monkeypatch.setenv("PY", str(EXAMPLE_PINGS))
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ZeroDivisionError*a bug inside fxa_metrics*"])


def test_a_feed_never_raises_the_callers_valid_record_into_strict_mode() -> None:
    seen = ListSink()
    fed = ListSink()
    fm.configure(
        **_settings(
            strict=True,
            replace_sinks=True,
            sentry_traces_sample_rate=1.0,
            sinks={"statsd": [seen], "sentry_performance": [fed]},
        )
    )
    fm.record(fm.Timing("job.run", 2 * 86_400_000.0))  # two days: fine for statsd
    fm.record(fm.Timing("job.run", 12.5))
    assert len(seen.items) == 2
    assert [t.duration_ms for t in fed.items] == [12.5]  # the feed refused the first, counted
    assert fm.stats().drops == {"invalid_record": 1}
