"""Privacy in process (issue 10): planted secrets in every input position, every output
channel grepped (Glean and MozLog lines, statsd datagrams through the real UDP receiver,
Sentry envelope bytes through the real HTTP receiver, our own warnings), for each consent
state; plus the malformed opt-out flags and the deletion request's fields."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics._recv_http import Receiver
from fxa_metrics._recv_udp import UdpReceiver

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload
from .privacy_plant import Plant, check_glean, check_mozlog, check_no_identity, plants

SERVICE = "fxa-privacy-test"
STATES = ("consenting", "opted_out", "malformed_flag", "service_disabled")
_OPT_OUT: dict[str, Any] = {
    "consenting": False,
    "opted_out": True,
    # FxA stores metricsOptOutAt as a timestamp in ms: it means opted out.
    "malformed_flag": 1_700_000_000_000,
    "service_disabled": False,
}


class _Warnings(logging.Handler):
    """fxa_metrics' own warnings, as a plain-text host log would show them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("fxa_metrics")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _configure(
    recv: Receiver, udp: UdpReceiver, state: str, **kw: Any
) -> tuple[io.StringIO, io.StringIO]:
    glean, mozlog = io.StringIO(), io.StringIO()
    fm.configure(
        service=SERVICE,
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=glean,
        mozlog_handler="always",
        mozlog_stream=mozlog,
        statsd_host="127.0.0.1",
        statsd_port=udp.port,
        sentry_dsn=recv.dsn("7"),
        sentry_traces_sample_rate=1.0,
        enabled=state != "service_disabled",
        strict=False,
        **kw,
    )
    return glean, mozlog


# ------------------------------------------------------------------ the inputs


def _crash(p: Plant) -> BaseException:
    # Not a local of the crashing frame: its repr holds an email's parts apart,
    # which no scrubber could recognise (a real object holds the whole address).
    return _crash_with(p.bearer, p.session_token, p.password, p.cookie, p)


def _crash_with(
    bearer: str, session_token: str, password: str, cookie: str, plant: Plant
) -> BaseException:
    """An exception chain carrying secrets in messages, notes and frame locals."""
    auth_header = f"Bearer {bearer}"  # noqa: F841 - a local Sentry would send
    account = {"email": plant.email, "sessionToken": session_token, "ip": plant.ipv4}
    p = _Secrets(plant)
    del plant
    try:
        try:
            raise KeyError(f"no account for {p.email} from {p.ipv4} / {p.ipv6}")
        except KeyError as inner:
            inner.add_note(f"Cookie: session={cookie}")
            err = ValueError(f"login to {p.userinfo_url} failed for {account}")
            err.add_note(f"Authorization: Bearer {bearer}; token {p.jwt}; password={password}")
            raise err from inner
    except ValueError as e:
        return e


class _Secrets:
    """The plant as a crashing frame's local: a repr that is not the test's own."""

    def __init__(self, plant: Plant) -> None:
        self.email, self.ipv4, self.ipv6 = plant.email, plant.ipv4, plant.ipv6
        self.userinfo_url, self.jwt = plant.userinfo_url, plant.jwt

    def __repr__(self) -> str:
        return f"<Secrets {self.email} {self.ipv4} {self.ipv6} {self.userinfo_url} {self.jwt}>"


def _context(p: Plant, state: str) -> dict[str, Any]:
    return {
        "uid": p.uid,
        "email": p.email,
        "ip_address": p.ipv4,
        "user_agent": f"Mozilla/5.0 (Bearer {p.bearer}) {p.jwt}",
        "path": f"/v1/recovery/{p.email_local}%2540{p.email_domain}.com/{p.jwt}",
        "flow_id": p.flow_id,
        "utm_source": p.utm_source,
        "service": p.service,
        "device_type": p.device_type,
        "metrics_opt_out": _OPT_OUT[state],
    }


def _record_everything(p: Plant, state: str) -> None:
    with fm.bind(**_context(p, state)):
        # Glean extras (and, for a bad key, a warning that names it).
        fm.record("login.complete", extra={"reason": f"password={p.password} {p.email}"})
        fm.record("login.complete", extra={f"Bearer {p.bearer}": "x"})
        fm.record(f"probe.{p.email}\ninjected")  # undefined: warned about, never echoed
        fm.record(fm.DeletionRequest())
        # MozLog fields: the host's own, and a nested metrics context.
        fm.record(
            fm.Log(
                "privacy.probe",
                {
                    "note": f"Bearer {p.bearer} for {p.email}",
                    "flowId": p.flow_id,
                    "metricsContext": {
                        "flowId": p.flow_id,
                        "utm_source": p.utm_source,
                        "service": p.service,
                        "deviceType": p.device_type,
                    },
                },
            )
        )
        # statsd tags and names: refused (counted, warned), never sent.
        fm.record(fm.Timing("privacy.timing", 1.0, tags={"path": f"/r/{p.email_local}%2540x.io"}))
        fm.record(fm.Timing("privacy.timing", 1.0, tags={"seg": p.jwt}))
        fm.record(fm.Counter(f"privacy.{p.uid}"))
        fm.record(fm.Timing("privacy.ok", 2.0, tags={"route": "/v1/x"}))  # also a transaction
        # Sentry Performance: a transaction's name, tags and span ops.
        fm.record(
            fm.Transaction(
                f"/v1/recovery/{p.email}?token={p.bearer}",
                5.0,
                tags={"auth": f"Bearer {p.bearer}", "from": p.ipv6},
                spans=((f"db.query password={p.password} session={p.cookie}", 0.0, 1.0),),
            )
        )
        # Sentry: tags, extra, exception chain, notes, locals, the bound UA and path.
        fm.record(
            fm.Crash(
                _crash(p),
                tags={"hdr": f"Bearer {p.bearer}", "sid": f"session={p.cookie}"},
                extra={
                    "auth_header": p.bearer,
                    "blob": {"k": f"cookie: session={p.cookie}", "u": p.userinfo_url},
                    "ips": [p.ipv4, p.ipv6],
                },
            )
        )


def _through_middleware(p: Plant) -> None:
    """A real WSGI call: the path, the query, the headers, and a crash quoting them."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        auth = environ.get("HTTP_AUTHORIZATION")
        raise RuntimeError(
            f"upstream refused {environ['PATH_INFO']}?{environ['QUERY_STRING']} with {auth}"
        )

    environ = {
        "REQUEST_METHOD": "POST",
        # As a server passes it: decoded once, so a double-encoded email is "%40" here.
        "PATH_INFO": f"/v1/recovery/{p.email_local}%40{p.email_domain}.com/{p.jwt}/{p.uid}",
        "QUERY_STRING": f"password={p.password}&session={p.cookie}&code={p.bearer}",
        "HTTP_AUTHORIZATION": f"Bearer {p.bearer}",
        "HTTP_COOKIE": f"session={p.cookie}",
        "HTTP_USER_AGENT": f"agent Bearer {p.bearer} {p.email}",
        "HTTP_X_FORWARDED_FOR": p.ipv6,
        "REMOTE_ADDR": p.ipv4,
        "wsgi.input": io.BytesIO(),
    }
    with pytest.raises(RuntimeError):
        fm.WSGIMiddleware(app, trust_forwarded=True)(environ, lambda *a: None)


# ------------------------------------------------------------------ the property


def _mozlog_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _sentinel(udp: UdpReceiver) -> None:
    # UDP is fire-and-forget: a last datagram tells us everything before it arrived.
    fm.record(fm.Counter("privacy.sentinel"))
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if any(b"privacy.sentinel" in d for d in udp.datagrams()):
            return
        time.sleep(0.02)
    raise AssertionError("the statsd sentinel never arrived")


def _check_all(
    p: Plant,
    state: str,
    glean: str,
    mozlog: str,
    udp: UdpReceiver,
    recv: Receiver,
    warnings: list[str],
) -> None:
    # The user's choice decides what analytics may travel with operational data;
    # a service that disabled collection only stops its Glean pings (docs/privacy.md).
    consenting = state in ("consenting", "service_disabled")
    glean_lines = _mozlog_lines(glean)
    for line in glean_lines:
        validate_payload(json.loads(line["Fields"]["payload"]))
    check_glean(glean_lines, p, state == "consenting")
    if state == "service_disabled":
        assert glean_lines == []
    else:
        # The deletion request is sent whatever the user chose.
        types = [ln["Fields"]["document_type"] for ln in glean_lines]
        assert "server-deletion-request" in types
        assert ("events" in types) is (state == "consenting")
    check_mozlog(_mozlog_lines(mozlog), p, consenting)
    statsd = b"\n".join(udp.datagrams()).decode()
    assert "privacy.ok" in statsd  # the channel works: a clean record went out
    check_no_identity("statsd", statsd, p, consenting=False)
    envelopes = recv.envelopes()
    assert len(envelopes) >= 2, "Sentry received too little to judge"
    check_no_identity("Sentry", b"".join(envelopes).decode("utf-8", "replace"), p, consenting)
    assert warnings, "the bad records were not warned about"
    for message in warnings:
        assert "\n" not in message, message
        assert "\u2028" not in message, message
    check_no_identity("our warnings", "\n".join(warnings), p, consenting=False)


@pytest.mark.parametrize("state", STATES)
def test_planted_secrets_reach_only_what_docs_privacy_allows(state: str) -> None:
    with Receiver() as recv, UdpReceiver() as udp, _warnings() as warned:

        @settings(
            max_examples=8,
            deadline=None,
            # No shrinking: each example runs every sink, and the failure report
            # already names each leaked secret and where it was.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(plants)
        def run(p: Plant) -> None:
            recv.clear()
            udp.clear()
            warned.lines.clear()
            glean, mozlog = _configure(recv, udp, state)
            try:
                _record_everything(p, state)
                _through_middleware(p)
                _sentinel(udp)
                fm.flush(timeout=10.0)
            finally:
                fm.reset()
            _check_all(p, state, glean.getvalue(), mozlog.getvalue(), udp, recv, warned.lines)

        run()


# ------------------------------------------------------------------ malformed opt-out flags


def _configure_capture(strict: bool) -> io.StringIO:
    out = io.StringIO()
    fm.configure(
        service=SERVICE,
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=out,
        mozlog_handler="never",
        strict=strict,
    )
    return out


@pytest.mark.parametrize(
    "flag",
    [
        1_700_000_000_000,  # FxA's metricsOptOutAt, ms
        1_700_000_000.5,
        1,
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_a_timestamp_flag_means_opted_out_silently(flag: Any, strict: bool) -> None:
    out = _configure_capture(strict)
    with fm.bind(uid="0" * 32, metrics_opt_out=flag):
        assert fm.current_context().metrics_opt_out is True
        fm.record("login.complete")
    assert out.getvalue() == ""
    assert fm.stats().drops == {"consent": 1}
    assert fm.stats().errors == {}


@pytest.mark.parametrize(
    "flag", ["true", "false", "1", 0, -5, float("nan"), float("inf"), b"1", [], object()]
)
def test_any_other_non_bool_flag_fails_closed_and_is_counted(
    flag: Any, caplog: pytest.LogCaptureFixture
) -> None:
    out = _configure_capture(strict=False)
    with fm.bind(uid="0" * 32, metrics_opt_out=flag):
        assert fm.current_context().metrics_opt_out is True
        fm.record("login.complete")
    assert out.getvalue() == ""  # not emitted: the flag did not fail open
    assert fm.stats().errors == {"invalid_opt_out": 1}
    assert fm.stats().drops == {"consent": 1}
    [warning] = [r.getMessage() for r in caplog.records if "invalid_opt_out" in r.getMessage()]
    assert "metrics_opt_out" in warning
    assert "treated as opted out" in warning


@pytest.mark.parametrize("flag", ["true", 0, object()])
def test_strict_mode_raises_for_a_flag_that_is_neither_bool_nor_timestamp(flag: Any) -> None:
    _configure_capture(strict=True)
    with (
        pytest.raises(fm.ConfigurationError, match="metrics_opt_out must be a bool"),
        fm.bind(metrics_opt_out=flag),
    ):
        pass


@pytest.mark.parametrize("flag", [True, False, None])
def test_bool_and_none_flags_are_unchanged(flag: bool | None) -> None:
    _configure_capture(strict=True)
    with fm.bind(metrics_opt_out=flag):
        assert fm.current_context().metrics_opt_out is flag
    assert fm.stats().errors == {}


@settings(max_examples=100, deadline=None)
@given(
    flag=st.one_of(
        st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=3), st.none()
    )
)
def test_no_flag_ever_makes_a_user_count_as_consenting(flag: Any) -> None:
    _configure_capture(strict=False)
    try:
        with fm.bind(uid="0" * 32, metrics_opt_out=flag):
            assert fm.current_context().metrics_opt_out in ((None,) if flag is None else (True,))
    finally:
        fm.reset()


# ------------------------------------------------------------------ deletion request


def test_the_deletion_request_carries_only_the_uid_metrics_and_no_ua_or_ip() -> None:
    out = _configure_capture(strict=True)
    uid = "0123456789abcdef0123456789abcdef"
    with fm.bind(
        uid=uid,
        user_agent="Mozilla/5.0 planted",
        ip_address="203.0.113.9",
        flow_id="f" * 16,
        service="sync",
        utm_source="newsletter",
        metrics_opt_out=True,
    ):
        fm.record(fm.DeletionRequest())
    [line] = [json.loads(x) for x in out.getvalue().splitlines()]
    fields = line["Fields"]
    assert fields["document_type"] == "server-deletion-request"
    assert (fields["user_agent"], fields["ip_address"]) == ("", "")
    payload = json.loads(fields["payload"])
    validate_payload(payload)
    assert payload["metrics"] == {
        "string": {"account.user_id": uid, "account.user_id_sha256": fm.uid_sha256(uid)}
    }
    assert payload["events"] == []
    for planted in ("planted", "203.0.113.9", "f" * 16, "sync", "newsletter"):
        assert planted not in out.getvalue()


# ------------------------------------------------------------------ each hook, directly


def test_an_opted_out_users_nested_metrics_context_never_reaches_mozlog() -> None:
    out = io.StringIO()
    fm.configure(
        service=SERVICE,
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=io.StringIO(),
        mozlog_handler="always",
        mozlog_stream=out,
        strict=True,
    )
    fields = {"errno": 0, "metricsContext": {"flowId": "F1", "utm_source": "S1", "kept": "K"}}
    with fm.bind(uid="0" * 32, metrics_opt_out=True):
        fm.record(fm.Log("account.login", fields))
    with fm.bind(uid="0" * 32, metrics_opt_out=False):
        fm.record(fm.Log("account.login", fields))
    opted_out, consenting = (json.loads(x)["Fields"] for x in out.getvalue().splitlines())
    assert opted_out["metricsContext"] == {"kept": "K"}
    assert consenting["metricsContext"] == fields["metricsContext"]


@pytest.mark.parametrize(
    ("opt_out", "uid", "expected"),
    [
        (True, "0" * 32, {"lang": "de"}),
        (None, "0" * 32, {"lang": "de"}),  # unknown: no lookup for a crash, so stripped
        (False, "0" * 32, {"lang": "de", "service": "sync", "entrypoint": "menu",
                           "device_type": "mobile", "oauth_client_id": "5882386c6d801776"}),
    ],
)  # fmt: skip
def test_sentry_contexts_fxa_follow_consent(
    opt_out: bool | None, uid: str, expected: dict[str, str]
) -> None:
    with Receiver() as recv:
        fm.configure(
            service=SERVICE,
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="development",
            metrics_yaml=EXAMPLE_METRICS,
            pings_yaml=EXAMPLE_PINGS,
            glean_stream=io.StringIO(),
            mozlog_handler="never",
            sentry_dsn=recv.dsn("3"),
            consent_lookup_uid=lambda uid: False,
            strict=True,
        )
        with fm.bind(
            uid=uid,
            metrics_opt_out=opt_out,
            lang="de",
            service="sync",
            entrypoint="menu",
            device_type="mobile",
            oauth_client_id="5882386c6d801776",
        ):
            fm.record(fm.Crash(ValueError("boom")))
        fm.flush(timeout=10.0)
        fm.reset()
        from sentry_sdk.envelope import Envelope

        [body] = recv.envelopes()
        event = Envelope.deserialize(body).get_event()
        assert event is not None
        assert event["contexts"]["fxa"] == expected


def test_a_warning_names_without_values_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    _configure_capture(strict=False)
    fm.record("login.complete", extra={"reason": "ok", "bob@example.com\nFAKE LINE": "v"})
    [message] = [r.getMessage() for r in caplog.records if r.name == "fxa_metrics"]
    assert "bob@example.com" not in message
    assert "\n" not in message
    assert "FAKE LINE" in message  # still says which key: escaped, not dropped


def test_a_sink_failing_to_close_is_warned_about_without_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(fm.Sink):
        def emit(self, record: object) -> None:
            pass

        def close(self, timeout: float | None = None) -> None:
            raise ValueError("token for bob@example.com\nforged line")

    fm.configure(
        service=SERVICE,
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=io.StringIO(),
        mozlog_handler="never",
        sinks={"mozlog": [Failing()]},
        strict=False,
    )
    fm.reset()
    [message] = [r.getMessage() for r in caplog.records if "closing" in r.getMessage()]
    assert "Failing" in message
    assert "bob@example.com" not in message
    assert "\n" not in message
