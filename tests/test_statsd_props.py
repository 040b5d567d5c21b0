"""Properties of the statsd route, over a real UDP socket.

- Arbitrary names, values, tags and rates never raise in production mode (and
  raise nothing but a RecordError in strict mode).
- Every datagram sent parses under the statsd grammar (as Telegraf reads it).
- No PII-shaped value is ever sent: planted emails, IPs, hex tokens and UUIDs
  are refused with reason ``pii``; and, checked independently with
  ``ipaddress``, no tag value or name that goes out is an address.
"""

from __future__ import annotations

import io
import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics._recv_udp import UdpReceiver

# The receiver fixture is shared by every example on purpose (one socket, one
# configure); each example still sees only its own datagrams (the sentinel).
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# The statsd line grammar, with Telegraf's tags in the name. Values as each kind
# formats them; a sample rate never in scientific notation (Etsy reads "1e-05" as 1).
_WORD = r"[A-Za-z0-9_-]+"
GRAMMAR = re.compile(
    rb"(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)"
    rb"(?P<tags>(?:,[A-Za-z_][A-Za-z0-9_.-]*=[A-Za-z0-9_./-]+)*)"
    rb":(?:"
    rb"(?P<ms>[0-9]+\.[0-9]{6})\|ms"
    rb"|(?P<c>-?[0-9]+)\|c"
    rb"|(?P<g>[+-]?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?)\|g"
    rb"|(?P<s>[A-Za-z0-9_./-]+)\|s"
    rb")(?:\|@(?P<rate>0\.[0-9]+))?"
)

# ---------------------------------------------------------------- strategies

safe_word = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
good_name = st.lists(safe_word, min_size=1, max_size=3).map(".".join)
good_value = st.from_regex(r"[A-Za-z0-9_./-]{1,12}", fullmatch=True)
hex_token = st.text("0123456789abcdefABCDEF", min_size=32, max_size=48)
pii = st.one_of(
    st.emails(),
    st.ip_addresses().map(str),
    hex_token,
    st.uuids().map(str),
)
anything = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
)


SEPARATORS = ":|,=@\n #\x00é"


@st.composite
def near_miss(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A good text with one separator or near-miss character slipped in: the inputs
    most likely to forge or split a line if a check were missing."""
    text = draw(base)
    i = draw(st.integers(0, len(text)))
    return text[:i] + draw(st.sampled_from(SEPARATORS)) + text[i:]


wild_text = st.one_of(near_miss(good_value), st.text(max_size=30), pii)
wild = st.one_of(near_miss(good_value), wild_text, anything)
good_number = {
    "timing": st.one_of(st.floats(0, 1e6), st.integers(0, 10**6)),
    "counter": st.integers(-(10**6), 10**6),
    "gauge": st.one_of(st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6)),
    "set": st.one_of(good_value, st.integers(0, 10**6)),
}
KINDS = {"timing": fm.Timing, "counter": fm.Counter, "gauge": fm.Gauge, "set": fm.Set}


@st.composite
def records(draw: st.DrawFn) -> Any:
    """A good record, or one with a single part made wild (so each check is hit alone)."""
    kind = draw(st.sampled_from(sorted(KINDS)))
    name: Any = draw(good_name)
    tags: Any = draw(st.dictionaries(safe_word, good_value, max_size=3))
    rate: Any = draw(st.sampled_from([None, 1.0, 0.5, 0.25]))
    value: Any = draw(good_number[kind])
    delta: Any = draw(st.booleans())
    broken = draw(st.sampled_from(["none", "name", "key", "tag", "tags", "rate", "value", "delta"]))
    if broken == "name":
        name = draw(st.one_of(near_miss(good_name), near_miss(good_name), wild))
    elif broken == "key":
        key = draw(st.one_of(near_miss(safe_word), near_miss(safe_word), wild_text, st.integers()))
        tags[key] = draw(good_value)
    elif broken == "tag":
        tags[draw(safe_word)] = draw(wild)
    elif broken == "tags":
        tags = draw(st.one_of(st.none(), st.dictionaries(safe_word, good_value, min_size=17)))
    elif broken == "rate":
        rate = draw(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.booleans()))
    elif broken == "value":
        value = draw(st.one_of(st.floats(), st.integers(), wild))
    elif broken == "delta":
        delta = draw(anything)
    if kind == "gauge":
        return fm.Gauge(name, value, tags=tags, rate=rate, delta=delta)
    return KINDS[kind](name, value, tags=tags, rate=rate)


@st.composite
def planted(draw: st.DrawFn) -> tuple[Any, str]:
    """A record that is good but for one PII-shaped value, glued between safe characters."""
    secret = draw(pii)
    glued = draw(st.from_regex(r"[A-Za-z0-9_/-]{0,4}", fullmatch=True)) + secret
    glued += draw(st.from_regex(r"[A-Za-z0-9_/-]{0,4}", fullmatch=True))
    where = draw(st.sampled_from(["tag", "set", "name"]))
    good_tags = draw(st.dictionaries(safe_word, good_value, max_size=2))
    if where == "tag":
        good_tags[draw(safe_word) + "_pii"] = glued
        return fm.Counter(draw(good_name), tags=good_tags), secret
    if where == "set":
        return fm.Set(draw(good_name), glued, tags=good_tags), secret
    return fm.Counter(draw(good_name) + "." + glued), secret


# ---------------------------------------------------------------- harness


@pytest.fixture
def route() -> Iterator[Callable[[Any], list[bytes]]]:
    """Record through a production-mode facade to a real UDP receiver; return what arrived."""
    with UdpReceiver() as rx:
        fm.configure(
            service="fxa-test-api",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="development",
            metrics_yaml=(),
            glean_stream=io.StringIO(),
            mozlog_handler="never",
            strict=False,
            statsd_host=rx.host,
            statsd_port=rx.port,
            statsd_prefix="fxa-auth-server.",
        )

        def send(rec: Any) -> list[bytes]:
            fm.record(rec)
            # The sentinel follows on the same socket: what came before it is this record's.
            fm.record(fm.Counter("sentinel", rate=1.0))
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                got = rx.datagrams()
                if got and got[-1] == b"fxa-auth-server.sentinel:1|c":
                    rx.clear()
                    return got[:-1]
                rx.wait_for(len(got) + 1, timeout=0.05)
            raise AssertionError(f"sentinel never arrived: {rx.datagrams()!r}")

        yield send


def _looks_like_an_address(text: str) -> bool:
    # Independent of the route's regex: ask ipaddress about every token and
    # every run of four dotted parts.
    tokens = re.split(r"[,=/_]", text)
    for token in tokens:
        parts = token.split(".")
        candidates = [token] + [".".join(parts[i : i + 4]) for i in range(len(parts))]
        for c in candidates:
            try:
                ipaddress.ip_address(c)
            except ValueError:
                continue
            return True
    return False


# ---------------------------------------------------------------- properties


@SETTINGS
@given(rec=records())
def test_arbitrary_records_never_raise_and_every_datagram_parses(
    route: Callable[[Any], list[bytes]], rec: Any
) -> None:
    before = fm.stats().dropped
    sent = route(rec)  # production mode: must not raise, whatever rec holds
    dropped = fm.stats().dropped - before
    assert dropped in (0, 1)
    if dropped:
        assert sent == []
    event("dropped" if dropped else "sent" if sent else "sampled out")
    rt = fm._facade.get_runtime()
    assert rt is not None
    assert rt.stats.internal_errors == []  # a drop is a verdict, never our own crash
    for datagram in sent:
        assert len(datagram) < 1500  # one MTU: never fragmented on a real network
        for line in datagram.split(b"\n"):
            m = GRAMMAR.fullmatch(line)
            assert m is not None, line
            text = line.decode("ascii")
            assert "@" not in text.split("|@")[0]
            assert not re.search(r"[0-9a-fA-F]{32}", text), text
            assert not _looks_like_an_address(m["name"].decode() + m["tags"].decode()), text
            if m["s"] is not None:
                assert not _looks_like_an_address(m["s"].decode()), text


def _slip(text: str, i: int, ch: str) -> str:
    i %= len(text) + 1
    return text[:i] + ch + text[i:]


@pytest.mark.parametrize("ch", list(SEPARATORS))
@pytest.mark.parametrize("part", ["name", "key", "value", "set"])
@settings(SETTINGS, max_examples=25)
@given(good=st.tuples(good_name, safe_word, good_value), at=st.integers(0, 40))
def test_a_grammar_separator_in_any_part_is_refused(
    route: Callable[[Any], list[bytes]], ch: str, part: str, good: tuple[str, str, str], at: int
) -> None:
    name, key, value = good
    if part == "name":
        name = _slip(name, at, ch)
    elif part == "key":
        key = _slip(key, at, ch)
    else:
        value = _slip(value, at, ch)
    rec = fm.Set(name, value) if part == "set" else fm.Counter(name, tags={key: value})
    before = fm.stats().dropped
    assert route(rec) == []
    assert fm.stats().dropped == before + 1


@SETTINGS
@given(case=planted())
def test_planted_pii_is_refused_as_pii_and_never_sent(
    route: Callable[[Any], list[bytes]], case: tuple[Any, str]
) -> None:
    rec, secret = case
    before = fm.stats().drops.get("pii", 0)
    assert route(rec) == [], secret
    assert fm.stats().drops.get("pii", 0) == before + 1


@settings(max_examples=300, deadline=None)
@given(rec=records())
def test_strict_mode_raises_only_record_errors(rec: Any) -> None:
    from fxa_metrics import testing

    with testing.capture(metrics_yaml=()) as cap:
        try:
            fm.record(rec)
        except fm.InvalidRecordError:  # anything else fails the test
            refused = True
        else:
            refused = False
        if refused:
            assert cap.records("statsd") == []
        else:
            [line] = cap.records("statsd")
            assert isinstance(line, fm.StatsdLine)
            assert list(line.tags) == sorted(line.tags)
