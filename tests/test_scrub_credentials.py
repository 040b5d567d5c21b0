"""The scrubber beyond FxA's rules (issue 10): credential shapes, key-name patterns,
decoding before matching, identity() for refusing channels, strip_analytics(), log_safe()."""

from __future__ import annotations

import base64
import json
import string
import time
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fxa_metrics import _scrub
from fxa_metrics._scrub import (
    FILTERED,
    TRUNCATED,
    decode,
    identity,
    log_safe,
    pii_key,
    scrub_event,
    scrub_string,
    scrub_value,
    strip_analytics,
)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


# ------------------------------------------------------------------ credential shapes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer mF_9.B5f-4.1JqM", f"Authorization: Bearer {FILTERED}"),
        ("auth failed: basic dXNlcjpwYXNz", f"auth failed: basic {FILTERED}"),
        ("Digest c2VjcmV0 end", f"Digest {FILTERED} end"),
        ("Negotiate YIIabc", f"Negotiate {FILTERED}"),
        ('Hawk id="dh37fgj492je", ts="1353832234", mac="6R4r+V5i="', f"Hawk {FILTERED}"),
        (f"token was {JWT} here", f"token was {FILTERED} here"),
        ("Cookie: session=abc123; theme=dark", f"Cookie: {FILTERED}"),
        ("set-cookie=sid=42", f"set-cookie={FILTERED}"),
        ("/v1/x?password=hunter2&keep=1", f"/v1/x?password={FILTERED}&keep=1"),
        ("a=1&newPassword=p4ss&b=2", f"a=1&newPassword={FILTERED}&b=2"),
        ("?code=Splx10BeZQQYbYS6WxSbIA&state=xyz", f"?code={FILTERED}&state=xyz"),
        ("sessionToken=abc;other", f"sessionToken={FILTERED};other"),
        ("api_key=k-123 client_secret=s", f"api_key={FILTERED} client_secret={FILTERED}"),
        ("user[password]=pw", f"user[password]={FILTERED}"),
        ("{'password': 'hunter2', 'n': 1}", f"{{'password': '{FILTERED}', 'n': 1}}"),
        ('{"access_token": "abc.def"}', f'{{"access_token": "{FILTERED}"}}'),
        ("https://bob:hunter2@db.internal/x", f"https://{FILTERED}@db.internal/x"),
    ],
)
def test_credential_shapes_are_filtered(text: str, expected: str) -> None:
    assert scrub_string(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/v1/recovery/bob%40example.com", f"/v1/recovery/{FILTERED}"),
        ("/v1/recovery/bob%2540example.com", f"/v1/recovery/{FILTERED}"),  # double
        ("/v1/recovery/bob%252540example.com", f"/v1/recovery/{FILTERED}"),  # triple
        ("q=password%3Dhunter2", f"q=password={FILTERED}"),
        ("a=b=c&token=t0k3n", f"a=b=c&token={FILTERED}"),
        ("Authorization%3A%20Bearer%20abc", f"Authorization: Bearer {FILTERED}"),
        ("Authorization:+Bearer+abc", f"Authorization: Bearer {FILTERED}"),
        ("ip=203%2E0%2E113%2E9", f"ip={FILTERED}"),
    ],
)
def test_rules_match_after_decoding(text: str, expected: str) -> None:
    assert scrub_string(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "status code 500 on /v1/account/login",
        "reason=password&attempts=3",  # a secret *word* as a value is not a secret
        "50% done, 100%% sure",
        "a+b+c and c++",
        "keep=%41%42",  # encoded but nothing found: returned as given, not decoded
        "cookies are mentioned here",
        "eyJ alone is no JWT",
        "oauth_client_id=5882386c6d801776",  # a public id, not a secret
    ],
)
def test_benign_text_is_returned_unchanged(text: str) -> None:
    assert scrub_string(text) == text


def test_decode_is_bounded_to_three_rounds() -> None:
    assert decode("%25252540") == "%40"  # four levels: the fourth stays
    assert decode("no percent") == "no percent"
    assert decode("%zz") == "%zz"


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    "key",
    ["auth_header", "Authorization", "X-Auth-Token", "bearer", "sessionToken", "session",
     "refresh_token", "client_secret", "newPassword", "passwd", "Cookie", "set-cookie",
     "jwt", "credentials", "csrf_token", "api_key", "apiKey", "private_key", "pwd", "otp"],
)  # fmt: skip
def test_credential_key_names_match_by_pattern(key: str) -> None:
    assert pii_key(key)
    assert scrub_value({key: "anything at all", "keep": "ok"}) == {key: FILTERED, "keep": "ok"}


@pytest.mark.parametrize(
    "key", ["reason", "userAgent", "oauth_client_id", "oauthClientId", "service", "errno"]
)
def test_other_key_names_are_kept(key: str) -> None:
    assert not pii_key(key)


def test_key_cache_is_bounded() -> None:
    for i in range(5000):
        pii_key(f"k{i}")
    assert len(_scrub._KEY_CACHE) <= 4096


# ------------------------------------------------------------------ Sentry events


def test_every_event_position_is_scrubbed() -> None:
    secret = "hunter2-Zq9xW"
    event: dict[str, Any] = {
        "message": f"login failed password={secret}",
        "logentry": {"message": "x %s", "params": [f"Bearer {secret}"]},
        "transaction": f"/v1/x?token={secret}",
        "tags": {"hdr": f"Bearer {secret}", "session": secret},
        "extra": {"auth_header": secret, "blob": {"note": f"cookie: s={secret}"}},
        "contexts": {"fxa": {"sessionToken": secret}, "trace": {"trace_id": "ab" * 16}},
        "request": {
            "url": f"https://u:{secret}@h/x",
            "query_string": f"password={secret}",
            "headers": {"Authorization": secret, "X-Auth-Token": secret, "User-Agent": "ua"},
            "cookies": {"sid": secret},
            "data": secret,
        },
        "breadcrumbs": {"values": [{"message": f"Bearer {secret}", "data": {"bearer": secret}}]},
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": f"bad Authorization: Bearer {secret}\nnote: password={secret}",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "handler",
                                "context_line": "x = 1",
                                "vars": {"auth_header": secret, "bearer": secret},
                            }
                        ]
                    },
                }
            ]
        },
        "spans": [{"op": "db", "description": f"token={secret}", "data": {"jwt": secret}}],
    }
    out = scrub_event(event, service="fxa-test")
    assert out is not None
    assert secret not in json.dumps(out)
    assert out["contexts"]["trace"]["trace_id"] == "ab" * 16  # SDK ids stay
    assert "data" not in out["request"]
    assert out["tags"]["fxa.name"] == "fxa-test"


# ------------------------------------------------------------------ identity()


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("/v1/recovery/planted.victim%2540example.com/x", "an email address"),
        (JWT, "a JWT"),
        ("/v1/" + JWT + "/x", "a JWT"),
        ("https://u:p@h", "user info in a URL"),
        ("Bearer+abcdef", "an authorization credential"),
        ("cookie=abc", "a cookie"),
        ("password=x", "a secret parameter"),
        ("0123456789abcdef0123456789abcdef", "a 32+ hex token"),
        ("203.0.113.9", "an IP address"),
        ("2001:db8::8a2e:370:7334", "an IP address"),
    ],
)
def test_identity_names_what_it_found(text: str, what: str) -> None:
    assert identity(text) == what


@pytest.mark.parametrize(
    "text", ["/v1/account/_id_/login", "url_request", "reason=password", "std::vector", "1.2.3"]
)
def test_identity_finds_nothing_in_ordinary_names(text: str) -> None:
    assert identity(text) is None


# ------------------------------------------------------------------ strip_analytics


def test_strip_analytics_at_any_depth_and_in_any_spelling() -> None:
    fields = {
        "errno": 0,
        "uid": "u",  # operational: kept
        "flowId": "f",
        "metricsContext": {
            "flowBeginTime": 1,
            "utm_source": "s",
            "utmMedium": "m",
            "service": "sync",
            "entrypoint": "e",
            "clientId": "c",
            "deviceType": "mobile",
            "kept": [{"session.flow_id": "x", "n": 1}],
        },
    }
    assert strip_analytics(fields) == {
        "errno": 0,
        "uid": "u",
        "metricsContext": {"kept": [{"n": 1}]},
    }
    assert fields["metricsContext"]["service"] == "sync"  # the input is not modified


def test_strip_analytics_returns_the_same_object_when_nothing_is_stripped() -> None:
    fields = {"errno": 0, "nested": {"a": [1, {"b": 2}]}, "t": (1, 2)}
    assert strip_analytics(fields) is fields


def test_strip_analytics_cuts_what_is_nested_too_deep() -> None:
    deep: Any = {"utm_source": "s"}
    for _ in range(_scrub.MAX_STRIP_DEPTH + 2):
        deep = {"k": [deep]}
    out = strip_analytics(deep)
    assert "utm_source" not in json.dumps(out)
    assert TRUNCATED in json.dumps(out)


def test_strip_analytics_survives_a_cycle() -> None:
    cyclic: dict[str, Any] = {"flowId": "f"}
    cyclic["self"] = cyclic
    out = strip_analytics(cyclic)
    assert "flowId" not in out


# ------------------------------------------------------------------ log_safe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb", "a\\u000ab"),
        ("a\r\nb", "a\\u000d\\u000ab"),
        ("x\u2028y\u2029z", "x\\u2028y\\u2029z"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("lone\udc80", "lone\\udc80"),
        ("bob@example.com", FILTERED),
        ("Bearer abcdef", f"Bearer {FILTERED}"),
    ],
)
def test_log_safe_scrubs_and_escapes_onto_one_line(text: str, expected: str) -> None:
    assert log_safe(text) == expected


def test_log_safe_clips_and_takes_any_object() -> None:
    assert log_safe("x" * 1000).endswith("...")
    assert len(log_safe("x" * 1000)) == _scrub.LOG_SAFE_MAX + 3
    assert log_safe(42) == "42"
    assert log_safe(ValueError("mail bob@example.com")) == f"ValueError('mail {FILTERED}')"


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize(
    "text",
    [
        "token" + "a" * 50_000,
        "a" * 50_000 + "@",
        "eyJ" + "a" * 50_000,
        "%25" * 20_000,
        "1." * 25_000,
        "a=b&" * 12_000,
        "bearer " + "a" * 50_000,
    ],
)
def test_hostile_input_is_scrubbed_in_linear_time(text: str) -> None:
    # Generous: each takes milliseconds; a quadratic regex took minutes.
    t0 = time.perf_counter()
    scrub_string(text)
    identity(text)
    assert time.perf_counter() - t0 < 5.0


# ------------------------------------------------------------------ properties

_token = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=12, max_size=40)
_noise = st.text(alphabet=string.ascii_letters + string.digits + " -_", max_size=12)
_sep = st.sampled_from([" ", "\n", "(", "'", '"', ", ", "; "])


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@st.composite
def credential(draw: st.DrawFn) -> tuple[str, str]:
    """(secret, text that carries it in a recognisable shape)."""
    secret = draw(_token)
    kind = draw(st.sampled_from(["bearer", "basic", "jwt", "cookie", "param", "userinfo"]))
    if kind == "bearer":
        text = f"Authorization: Bearer {secret}"
    elif kind == "basic":
        secret = base64.b64encode(f"user:{secret}".encode()).decode()
        text = f"Basic {secret}"
    elif kind == "jwt":
        secret = f"{_b64({'alg': 'HS256'})}.{_b64({'sub': secret})}.{secret}"
        text = secret
    elif kind == "cookie":
        text = f"Cookie: session={secret}; theme=dark"
    elif kind == "param":
        name = draw(st.sampled_from(["password", "token", "client_secret", "code", "session"]))
        text = f"/v1/x?a=1&{name}={secret}&b=2"
    else:
        text = f"https://user:{secret}@accounts.example/v1"
    encoding = draw(st.sampled_from(["plain", "percent", "double"]))
    if encoding != "plain":
        from urllib.parse import quote

        text = quote(text, safe="")
        if encoding == "double":
            text = quote(text, safe="")
    return secret, text


@settings(max_examples=300, deadline=None)
@given(credential(), _noise, _sep, _noise)
def test_planted_credentials_never_survive(
    case: tuple[str, str], before: str, sep: str, after: str
) -> None:
    secret, text = case
    assume(secret not in before + after)
    out = scrub_string(before + sep + text + sep + after)
    assert secret not in out
    assert secret not in decode(out)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_scrubbing_is_total_and_idempotent(text: str) -> None:
    once = scrub_string(text)
    assert scrub_string(once) == once
    assert "\n" not in log_safe(text)
    assert "\u2028" not in log_safe(text)


# ------------------------------------------------------------------ edges


def test_skeleton_keys_named_like_credentials_are_filtered_whole() -> None:
    out = scrub_event({"session": {"id": "x"}, "message": "m", "platform": "python"})
    assert out == {"session": FILTERED, "message": "m", "platform": "python"}


def test_subclasses_and_deep_sequences_are_plain_data_too() -> None:
    import enum

    class Tag(str):
        pass

    class Level(enum.IntEnum):
        HIGH = 3

    assert scrub_value(Tag("mail bob@example.com")) == f"mail {FILTERED}"
    assert scrub_value(Level.HIGH) is Level.HIGH
    deep: Any = ["leaf"]
    for _ in range(6):
        deep = [deep]
    out = scrub_value({"k": deep})
    assert TRUNCATED in json.dumps(out)
    assert scrub_value({"k": {"a", "b"}})["k"] in (["a", "b"], ["b", "a"])


def test_a_secret_name_with_no_value_is_left_alone() -> None:
    assert scrub_string("password= and token=") == "password= and token="


def test_strip_analytics_cuts_deep_lists_and_keeps_its_cache_bounded() -> None:
    deep: Any = [{"flowId": "f"}]
    for _ in range(_scrub.MAX_STRIP_DEPTH + 1):
        deep = [deep]
    assert TRUNCATED in json.dumps(strip_analytics({"k": deep}))
    for i in range(5000):
        _scrub.is_analytics(f"field{i}")
    assert len(_scrub._ANALYTICS_VERDICT) <= 4096


def test_frames_code_and_plain_skeleton_values() -> None:
    event = {
        "exception": {
            "values": [
                {
                    "stacktrace": {
                        "frames": [
                            {
                                "context_line": "token = 'Bearer abcdef123'",
                                "pre_context": ["a = 1", {"odd": "bob@example.com"}],
                                "module": None,
                                "lineno": 3,
                            }
                        ]
                    },
                    "count": 3,
                    "ratio": 0.5,
                    "nothing": None,
                }
            ]
        }
    }
    out = scrub_event(event, {"exc_info": "not a tuple"})
    assert out is not None
    [value] = out["exception"]["values"]
    [frame] = value["stacktrace"]["frames"]
    assert frame["context_line"] == f"token = 'Bearer {FILTERED}'"
    assert frame["pre_context"] == ["a = 1", {"odd": FILTERED}]
    assert frame["module"] is None
    assert (value["count"], value["ratio"], value["nothing"]) == (3, 0.5, None)
