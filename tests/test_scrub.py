"""The FxA scrubber as pure functions: each rule, the caps, the drops, and a PII property."""

from __future__ import annotations

import ipaddress
import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fxa_metrics import _scrub
from fxa_metrics._scrub import FILTERED, TRUNCATED, scrub_event, scrub_string, scrub_value

UID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("uid " + UID, "uid " + FILTERED),
        ("session " + "ab" * 32, "session " + FILTERED),
        ("short hex deadbeef stays", "short hex deadbeef stays"),
        ("mail alice@example.com now", f"mail {FILTERED} now"),
        ("/v1/recovery/alice@example.com/x", f"/v1/recovery/{FILTERED}/x"),
        ("?email=alice%40example.com&x=1", f"?email={FILTERED}&x=1"),
        ("from 203.0.113.7.", f"from {FILTERED}."),
        ("v6 2001:db8::8a2e:370:7334 end", f"v6 {FILTERED} end"),
        ("mapped ::ffff:192.0.2.1", f"mapped {FILTERED}"),
        ("https://bob:hunter2@db.internal:5432/x", f"https://{FILTERED}@db.internal:5432/x"),
        ("at 12:34:56 on aa:bb:cc:dd:ee:ff", "at 12:34:56 on aa:bb:cc:dd:ee:ff"),
        ("std::vector and ::1", "std::vector and ::1"),
        ("version 1.2.3 and 1.2.3.4567", "version 1.2.3 and 1.2.3.4567"),
    ],
)
def test_scrub_string_rules(text: str, expected: str) -> None:
    assert scrub_string(text) == expected


@pytest.mark.parametrize(
    "key",
    ["uid", "email", "email_address", "emailVerified", "ip", "ip_addr", "user", "user_id",
     "username", "userName", "oidc-claim-id", "remote-groups", "Authorization", "Cookie"],
)  # fmt: skip
def test_pii_keys_are_filtered_whatever_the_value(key: str) -> None:
    assert scrub_value({key: {"nested": 1}, "keep": "ok"}) == {key: FILTERED, "keep": "ok"}


def test_keys_that_only_look_alike_are_kept() -> None:
    kept = {"users": "a", "userAgent": "b", "uid2": "c", "service": "d"}
    assert scrub_value(kept) == kept


def test_depth_cap_is_five() -> None:
    deep: Any = "leaf"
    for _ in range(7):
        deep = {"k": deep}
    out = scrub_value(deep)
    for _ in range(4):
        out = out["k"]
    assert out == {"k": TRUNCATED}  # the sixth container is cut


def test_breadth_cap_is_fifty() -> None:
    out = scrub_value({"d": {str(i): i for i in range(80)}, "l": list(range(80))})
    assert len(out["d"]) == 50
    assert out["l"] == list(range(50))


def test_non_data_values_become_scrubbed_reprs() -> None:
    class Account:
        def __repr__(self) -> str:
            return f"<Account {UID} alice@example.com>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert scrub_value([Account(), Broken(), b"x"]) == [
        f"<Account {FILTERED} {FILTERED}>",
        "<Broken object>",
        "b'x'",
    ]


def test_scrub_event_does_not_modify_its_input() -> None:
    event = {"extra": {"email": "a@b.co"}, "request": {"data": "pw"}, "user": {"id": UID}}
    before = json.dumps(event)
    out = scrub_event(event, service="fxa-auth-server")
    assert json.dumps(event) == before
    assert out == {
        "extra": {"email": FILTERED},
        "request": {},
        "tags": {"fxa.name": "fxa-auth-server"},
    }


def test_scrub_event_keeps_ids_and_sdk_fields() -> None:
    event = {
        "event_id": UID,
        "release": "fxa@1.2.3",
        "contexts": {"trace": {"trace_id": UID, "span_id": "0123456789abcdef"}, "app": {"x": UID}},
        "timestamp": "2026-01-01T00:00:00Z",
        "exception": {"values": [{"value": f"boom {UID}", "stacktrace": {"frames": [
            {"lineno": 3, "vars": {"uid": UID, "other": f"x {UID}"}, "context_line": UID}
        ]}}]},
    }  # fmt: skip
    out = scrub_event(event)
    assert out is not None
    assert out["event_id"] == UID
    assert out["release"] == "fxa@1.2.3"
    assert out["contexts"]["trace"]["trace_id"] == UID
    assert out["contexts"]["app"] == {"x": FILTERED}
    frame = out["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame == {"lineno": 3, "vars": {"uid": FILTERED, "other": f"x {FILTERED}"},
                     "context_line": FILTERED}  # fmt: skip
    assert out["exception"]["values"][0]["value"] == f"boom {FILTERED}"


def test_scrub_event_caps_data_not_the_stacktrace() -> None:
    frames = [{"function": f"f{i}", "vars": {str(j): j for j in range(60)}} for i in range(70)]
    out = scrub_event({"exception": {"values": [{"stacktrace": {"frames": frames}}]}})
    assert out is not None
    kept = out["exception"]["values"][0]["stacktrace"]["frames"]
    assert len(kept) == 70  # no frame is lost
    assert all(len(f["vars"]) == 50 for f in kept)


class HttpError(Exception):
    def __init__(self, status_code: int, errno: int = 999) -> None:
        super().__init__(f"http {status_code}")
        self.status_code = status_code
        self.errno = errno


@pytest.mark.parametrize(
    ("exc", "dropped"),
    [
        (HttpError(400), True),
        (HttpError(404), True),
        (HttpError(499), True),
        (HttpError(500), False),
        (HttpError(503), False),
        (HttpError(500, errno=133), True),  # BOUNCE_COMPLAINT
        (HttpError(500, errno=134), True),  # BOUNCE_HARD
        (HttpError(500, errno=135), True),  # BOUNCE_SOFT
        (HttpError(500, errno=132), False),  # MESSAGE_REJECTED is a real error
        (OSError(133, "EHWPOISON is a C errno, not FxA's"), False),
        (ValueError("no status at all"), False),
    ],
)
def test_errors_fxa_does_not_report_are_dropped(exc: BaseException, dropped: bool) -> None:
    hint = {"exc_info": (type(exc), exc, None)}
    assert (scrub_event({"message": "x"}, hint) is None) is dropped


def test_response_context_below_500_is_dropped() -> None:
    assert scrub_event({"contexts": {"response": {"status_code": 404}}}) is None
    assert scrub_event({"contexts": {"response": {"status_code": 502}}}) is not None


# ------------------------------------------------------------------ property

_SEPARATORS = st.sampled_from([" ", "/", "=", ",", "'", '"', "\n", "?", "&", "(", "<"])
_noise = st.text(alphabet=string.ascii_letters + string.digits + " -_", max_size=12)


def _interesting_v6(addr: ipaddress.IPv6Address) -> bool:
    # "::", "::1", "1::" identify no user and are left alone by design (see _scrub).
    return sum(g != "0000" for g in addr.exploded.split(":")) >= 2 or addr.ipv4_mapped is not None


pii = st.one_of(
    st.emails(),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).filter(_interesting_v6).map(str),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=64),
    st.uuids().map(lambda u: u.hex),
)


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(pii)
    text = draw(_noise) + draw(_SEPARATORS) + secret + draw(_SEPARATORS) + draw(_noise)
    return secret, text


@settings(max_examples=300, deadline=None)
@given(planted())
def test_planted_pii_never_survives_scrub_string(case: tuple[str, str]) -> None:
    secret, text = case
    assert secret not in scrub_string(text)


@settings(max_examples=150, deadline=None)
@given(planted(), st.sampled_from(["message", "url", "header", "crumb", "extra", "var", "query"]))
def test_planted_pii_never_survives_scrub_event(case: tuple[str, str], where: str) -> None:
    secret, text = case
    event: dict[str, Any] = {
        "message": text if where == "message" else "m",
        "request": {
            "url": f"https://accounts.example/v1/{text}" if where == "url" else "/",
            "query_string": f"a=1&x={text}" if where == "query" else "",
            "headers": {"X-Thing": text if where == "header" else "h", "Cookie": secret},
            "data": {"email": secret, "note": text},
        },
        "breadcrumbs": {"values": [{"message": text if where == "crumb" else "c",
                                    "data": {"url": text}}]},
        "extra": {"blob": [text] if where == "extra" else []},
        "exception": {"values": [{"value": "v", "stacktrace": {"frames": [
            {"vars": {"arg": text if where == "var" else 1}}
        ]}}]},
        "user": {"email": secret, "ip_address": secret},
    }  # fmt: skip
    out = scrub_event(event, service="fxa-test")
    assert secret not in json.dumps(out)


def test_public_regexes_are_exposed_for_other_sinks() -> None:
    # The statsd/MozLog sinks reuse these: keep them importable by name.
    for name in ("TOKEN", "EMAIL", "IPV4", "PII_KEY", "URL_USERINFO", "IGNORED_ERRNOS"):
        assert hasattr(_scrub, name)
