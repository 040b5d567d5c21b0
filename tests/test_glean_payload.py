"""The exact ``glean-server-event`` line (DESIGN 3.1): MozLog envelope, Fields, payload."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import fxa_metrics as fm

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

UID = "0123456789abcdef0123456789abcdef"
# sha256 of the uid's hex string: FxA's test vector, written out in full.
UID_SHA256 = "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9"
UA = "Mozilla/5.0 (Android 14; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0"
IP = "2001:db8::7"

TYPED = """\
---
$schema: moz://mozilla.org/schemas/glean/metrics/2-0-0

typed:
{metrics}
"""
TYPED_PINGS = """\
---
$schema: moz://mozilla.org/schemas/glean/pings/2-0-0

typed-ping:
  description: Carries one metric of every type the server route supports.
  include_client_id: false
  bugs: [https://mozilla-hub.atlassian.net/browse/FXA-0000]
  data_reviews: [https://bugzilla.mozilla.org/show_bug.cgi?id=1830504]
  notification_emails: [fxa-staff@mozilla.com]
"""


def _metric(name: str, kind: str, extra: str = "") -> str:
    return f"""\
  {name}:
    type: {kind}
    description: A {kind}.
    lifetime: ping
    send_in_pings: [typed-ping]
    notification_emails: [fxa-staff@mozilla.com]
    bugs: [https://mozilla-hub.atlassian.net/browse/FXA-0000]
    data_reviews: [https://bugzilla.mozilla.org/show_bug.cgi?id=1830504]
    expires: never
{extra}"""


@pytest.fixture
def typed_defs(tmp_path: Path) -> tuple[Path, Path]:
    body = "".join(
        [
            _metric("count", "quantity", "    unit: things\n"),
            _metric("flag", "boolean"),
            _metric(
                "settings",
                "object",
                "    structure:\n      type: object\n      properties:\n"
                "        lang: {type: string}\n        n: {type: number}\n",
            ),
            _metric("seen_at", "datetime"),
            _metric("scopes", "string_list"),
            _metric("label", "string"),
        ]
    )
    m, p = tmp_path / "metrics.yaml", tmp_path / "pings.yaml"
    m.write_text(TYPED.format(metrics=body))
    p.write_text(TYPED_PINGS)
    return m, p


def configure(
    metrics_yaml: Path = EXAMPLE_METRICS, pings_yaml: Path = EXAMPLE_PINGS
) -> io.StringIO:
    out = io.StringIO()
    fm.configure(
        service="fxa-auth-api",
        app_id="accounts_backend",
        app_version="1.301.0",
        channel="production",
        metrics_yaml=metrics_yaml,
        pings_yaml=pings_yaml,
        glean_stream=out,
        mozlog_handler="never",
        strict=True,
    )
    return out


def read(out: io.StringIO) -> list[dict[str, Any]]:
    text = out.getvalue()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        validate_payload(json.loads(line["Fields"]["payload"]))
    return lines


def payload_of(line: dict[str, Any]) -> dict[str, Any]:
    raw = line["Fields"]["payload"]
    assert isinstance(raw, str)  # a JSON *string* inside Fields, as the Decoder expects
    result: dict[str, Any] = json.loads(raw)
    return result


def test_mozlog_envelope_fields_and_types() -> None:
    out = configure()
    before = time.time_ns()
    with fm.bind(user_agent=UA, ip_address=IP):
        fm.record("login.complete", extra={"reason": "password"})
    after = time.time_ns()
    (line,) = read(out)
    assert list(line) == [
        "Timestamp",
        "Type",
        "Logger",
        "Hostname",
        "EnvVersion",
        "Severity",
        "Pid",
        "Fields",
    ]
    assert type(line["Timestamp"]) is int
    assert before <= line["Timestamp"] <= after  # nanoseconds, not seconds or an ISO string
    assert line["Type"] == "glean-server-event"
    assert line["Logger"] == "fxa-auth-api-glean"
    assert line["Hostname"] == socket.gethostname()
    assert line["EnvVersion"] == "2.0"
    assert line["Severity"] == 6
    assert line["Pid"] == os.getpid()


def test_fields_envelope_is_exact() -> None:
    out = configure()
    with fm.bind(user_agent=UA, ip_address=IP):
        fm.record("login.complete")
        fm.record("login.complete")
    first, second = read(out)
    fields = first["Fields"]
    assert list(fields) == [
        "document_namespace",
        "document_type",
        "document_version",
        "document_id",
        "user_agent",
        "ip_address",
        "payload",
    ]
    assert fields["document_namespace"] == "accounts_backend"
    assert fields["document_type"] == "events"
    assert fields["document_version"] == "1"
    assert fields["user_agent"] == UA
    assert fields["ip_address"] == IP
    doc_id = uuid.UUID(fields["document_id"])
    assert doc_id.version == 4
    assert doc_id.variant == uuid.RFC_4122
    assert str(doc_id) == fields["document_id"]  # canonical lower-case, hyphenated
    assert second["Fields"]["document_id"] != fields["document_id"]


def test_payload_shape_ping_info_and_client_info() -> None:
    out = configure()
    fm.record("login.complete")
    (line,) = read(out)
    payload = payload_of(line)
    assert list(payload) == ["metrics", "events", "ping_info", "client_info"]
    info = payload["ping_info"]
    assert info["seq"] == 0
    assert info["start_time"] == info["end_time"]
    start = dt.datetime.fromisoformat(info["start_time"])
    assert start.utcoffset() == dt.timedelta(0)
    # The same instant as the MozLog Timestamp, to the microsecond.
    assert abs(start.timestamp() * 1e9 - line["Timestamp"]) < 2_000
    assert payload["client_info"] == {
        "telemetry_sdk_build": f"fxa_metrics v{fm.__version__}",
        "first_run_date": "Unknown",
        "os": "Unknown",
        "os_version": "Unknown",
        "architecture": "Unknown",
        "app_build": "Unknown",
        "app_display_version": "1.301.0",
        "app_channel": "production",
    }


def test_event_extras_are_strings_booleans_lowercase_and_omitted_left_out() -> None:
    out = configure()
    fm.record("login.complete", extra={"reason": "password", "is_new_device": True, "attempts": 2})
    fm.record("login.complete", extra={"is_new_device": False})
    fm.record("login.complete", extra={"reason": "passkey", "attempts": None})
    fm.record("account.delete_complete")  # an event without extra_keys has no "extra"
    events = [payload_of(line)["events"] for line in read(out)]
    assert events == [
        [
            {
                "category": "login",
                "name": "complete",
                "extra": {"reason": "password", "is_new_device": "true", "attempts": "2"},
                "timestamp": 0,
            }
        ],
        [
            {
                "category": "login",
                "name": "complete",
                "extra": {"is_new_device": "false"},
                "timestamp": 0,
            }
        ],
        [{"category": "login", "name": "complete", "extra": {"reason": "passkey"}, "timestamp": 0}],
        [{"category": "account", "name": "delete_complete", "timestamp": 0}],
    ]


def test_common_metrics_come_from_the_bound_context() -> None:
    out = configure()
    ctx = {
        "uid": UID,
        "flow_id": "flow-1",
        "entrypoint": "fxa_app_menu",
        "device_type": "tablet",
        "service": "sync",
        "oauth_client_id": "5882386c6d801776",
        "utm_campaign": "c",
        "utm_content": "ct",
        "utm_medium": "email",
        "utm_source": "s",
        "utm_term": "t",
    }
    with fm.bind(**ctx):
        fm.record("login.complete")
    with fm.bind(uid=UID):
        fm.record("login.complete")
    full, only_uid = (payload_of(line)["metrics"] for line in read(out))
    assert full["string"] == {
        "account.user_id": UID,
        "account.user_id_sha256": UID_SHA256,
        "relying_party.oauth_client_id": "5882386c6d801776",
        "relying_party.service": "sync",
        "session.device_type": "tablet",
        "session.entrypoint": "fxa_app_menu",
        "session.flow_id": "flow-1",
        "utm.campaign": "c",
        "utm.content": "ct",
        "utm.medium": "email",
        "utm.source": "s",
        "utm.term": "t",
    }
    # Unbound context values are left out, not sent as null or "".
    assert only_uid["string"] == {"account.user_id": UID, "account.user_id_sha256": UID_SHA256}


def test_explicit_metric_overrides_context_and_none_removes_it() -> None:
    out = configure()
    with fm.bind(uid=UID, flow_id="from-context"):
        fm.record("login.complete", metrics={"session.flow_id": "explicit"})
        fm.record("login.complete", metrics={"session.flow_id": None})
    first, second = (payload_of(line)["metrics"]["string"] for line in read(out))
    assert first["session.flow_id"] == "explicit"
    assert "session.flow_id" not in second


def test_missing_user_agent_and_ip_are_empty_strings() -> None:
    out = configure()
    fm.record("login.complete")
    (line,) = read(out)
    assert (line["Fields"]["user_agent"], line["Fields"]["ip_address"]) == ("", "")


def test_skip_client_ip_per_event_and_per_request() -> None:
    out = configure()
    with fm.bind(user_agent=UA, ip_address=IP):
        fm.record(fm.Event("login.complete", skip_client_ip=True))
        fm.record("login.complete")
        with fm.bind(skip_client_ip=True):
            fm.record("login.complete")
    ips = [line["Fields"]["ip_address"] for line in read(out)]
    assert ips == ["", IP, ""]


def test_custom_ping_document_type_and_metrics() -> None:
    out = configure()
    settings = {"language": "fr", "marketing_opt_in": False}
    with fm.bind(uid=UID, flow_id="f"):
        fm.record(fm.Metrics({"activity.name": "changed", "activity.settings": settings}))
    (line,) = read(out)
    assert line["Fields"]["document_type"] == "accounts-activity"
    payload = payload_of(line)
    assert payload["events"] == []
    # The custom ping carries only its own metrics: no uid, no flow.
    assert payload["metrics"] == {
        "string": {"activity.name": "changed"},
        "object": {"activity.settings": settings},
    }


def test_server_deletion_request_carries_only_the_uid_metrics() -> None:
    out = configure()
    with fm.bind(
        uid=UID, flow_id="f", service="sync", utm_source="s", user_agent=UA, ip_address=IP
    ):
        fm.record(fm.DeletionRequest())
    fm.record(fm.DeletionRequest(uid="f" * 32))
    first, second = read(out)
    assert first["Fields"]["document_type"] == "server-deletion-request"
    assert payload_of(first)["metrics"] == {
        "string": {"account.user_id": UID, "account.user_id_sha256": UID_SHA256}
    }
    assert payload_of(first)["events"] == []
    assert payload_of(second)["metrics"]["string"] == {
        "account.user_id": "f" * 32,
        "account.user_id_sha256": fm.uid_sha256("f" * 32),
    }


def test_every_supported_metric_type(typed_defs: tuple[Path, Path]) -> None:
    out = configure(*typed_defs)
    seen = dt.datetime(2026, 3, 1, 13, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    fm.record(
        fm.Metrics(
            {
                "typed.count": 2**53 + 1,
                "typed.flag": False,
                "typed.settings": {"lang": "de", "n": 1.5},
                "typed.seen_at": seen,
                "typed.scopes": ("profile", "https://identity.mozilla.com/apps/oldsync"),
                "typed.label": "x",
            }
        )
    )
    fm.record(fm.Metrics({"typed.seen_at": seen.replace(microsecond=0)}))
    first, second = (payload_of(line)["metrics"] for line in read(out))
    assert first == {
        "quantity": {"typed.count": 2**53 + 1},
        "boolean": {"typed.flag": False},
        "object": {"typed.settings": {"lang": "de", "n": 1.5}},
        # UTC, milliseconds, "Z": glean_parser's Go server outputter's format.
        "datetime": {"typed.seen_at": "2026-03-01T11:04:05.678Z"},
        "string_list": {"typed.scopes": ["profile", "https://identity.mozilla.com/apps/oldsync"]},
        "string": {"typed.label": "x"},
    }
    # The same shape whatever the value (isoformat() would drop the fraction here).
    assert second["datetime"] == {"typed.seen_at": "2026-03-01T11:04:05.000Z"}


@pytest.mark.parametrize(
    ("ident", "value"),
    [
        ("typed.count", 2**63),
        ("typed.count", 1.0),
        ("typed.flag", 1),
        ("typed.settings", {"x": object()}),
        ("typed.settings", "not-an-object"),
        ("typed.seen_at", dt.datetime(2026, 1, 1)),  # naive: which zone?
        ("typed.seen_at", "2026-01-01T00:00:00Z"),
        ("typed.scopes", "profile"),  # a str is not a list of str
        ("typed.scopes", ["ok", 3]),
    ],
)
def test_wrong_value_types_are_rejected_naming_the_metric(
    typed_defs: tuple[Path, Path], ident: str, value: Any
) -> None:
    out = configure(*typed_defs)
    with pytest.raises(fm.InvalidValueError) as info:
        fm.record(fm.Metrics({ident: value}))
    assert (info.value.metric, info.value.field) == (ident, "value")
    assert out.getvalue() == ""


def test_string_list_limits_truncate_and_count(typed_defs: tuple[Path, Path]) -> None:
    out = io.StringIO()
    fm.configure(
        service="fxa-auth-api",
        app_id="accounts_backend",
        app_version="1",
        channel="production",
        metrics_yaml=typed_defs[0],
        pings_yaml=typed_defs[1],
        glean_stream=out,
        mozlog_handler="never",
        strict=False,
    )
    fm.record(fm.Metrics({"typed.scopes": ["s"] * 150 + ["x" * 120]}))
    (line,) = read(out)
    scopes = payload_of(line)["metrics"]["string_list"]["typed.scopes"]
    assert scopes == ["s"] * 100
    assert fm.stats().errors == {"invalid_overflow": 2}


def test_lone_surrogates_are_rejected_in_values_and_replaced_in_context() -> None:
    out = configure()
    with pytest.raises(fm.InvalidExtraError) as info:
        fm.record("login.complete", extra={"reason": "bad\udcff"})
    assert (info.value.metric, info.value.field) == ("login.complete", "reason")
    with pytest.raises(fm.InvalidValueError):
        fm.record("login.complete", metrics={"session.flow_id": "\ud800"})
    with pytest.raises(fm.InvalidValueError) as info2:
        fm.record(fm.DeletionRequest(uid="\ud800"))
    assert info2.value.field == "uid"
    # A header decoded with surrogateescape is request data: kept, made valid.
    with fm.bind(user_agent="Firefox\udcff", flow_id="f\ud800"):
        fm.record("login.complete")
    (line,) = read(out)
    assert line["Fields"]["user_agent"] == "Firefox\ufffd"
    assert payload_of(line)["metrics"]["string"]["session.flow_id"] == "f\ufffd"


def test_bind_rejects_non_text_values_loudly() -> None:
    with pytest.raises(fm.ConfigurationError, match="uid must be a str"), fm.bind(uid=123):
        pass
    configure()
    with pytest.raises(fm.InvalidValueError):
        fm.record(fm.DeletionRequest(uid=123))  # type: ignore[arg-type]


def test_document_ids_are_unique_v4_and_never_shared_with_a_forked_child() -> None:
    import os
    import uuid
    import warnings

    from fxa_metrics._glean import uuid4_hex

    ids = [uuid4_hex() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    uuid4_hex()  # the parent now holds pre-made ids
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process; this child only
        # computes ids and _exits, so the warning does not apply.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report the ids it would use, then leave at once
        os.close(read)
        os.write(write, ",".join(uuid4_hex() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = set(f.read().split(","))
    os.waitpid(pid, 0)
    parent = {uuid4_hex() for _ in range(50)}
    # Without the at-fork reset both would pop the same pre-made ids.
    assert len(child) == 50
    assert not child & parent
