"""Properties of the beacon checks (hypothesis).

- Arbitrary bytes, arbitrary JSON, and valid beacons broken in one place never
  raise, never emit anything, and each is one counted drop.
- Valid beacons with random values produce exactly the documented datagrams
  (tests/beacon_data.py: expected_lines) on a real UDP receiver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics import testing
from fxa_metrics._beacon import MAX_MS, NAV_MARKS, TOP_FIELDS
from fxa_metrics._recv_udp import UdpReceiver

from .beacon_data import NAV_ORDER, expected_lines, valid_beacon

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# No rate limit in the way: these properties are about the checks.
ENDPOINT = fm.BeaconEndpoint(
    pages=["settings", "signin"], routes=["/account/<uid>/devices"], per_minute=1e9, burst=10**9
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.fixture
def cap() -> Iterator[testing.Capture]:
    # Production mode: a refusal must not raise there either; Sentry Performance on,
    # so a PageLoad that slipped through would be captured too.
    with testing.capture(metrics_yaml=[], strict=False, sentry_traces_sample_rate=1.0) as c:
        yield c


def _refused_and_counted(cap: testing.Capture, raw: bytes, ctype: str | None = None) -> None:
    before = fm.stats().dropped
    response = ENDPOINT.handle(raw, ctype, "192.0.2.1")
    assert response.status == 400
    assert response.body.startswith(b"beacon refused: ")
    assert len(response.body) < 120  # a short reason
    assert cap.records() == []
    assert fm.stats().dropped == before + 1


@SETTINGS
@given(raw=st.binary(max_size=5000), ctype=st.sampled_from([None, "text/plain", "text/html"]))
def test_arbitrary_bytes_are_refused(cap: testing.Capture, raw: bytes, ctype: str | None) -> None:
    _refused_and_counted(cap, raw, ctype)


@SETTINGS
@given(value=json_values)
def test_arbitrary_json_is_refused(cap: testing.Capture, value: Any) -> None:
    _refused_and_counted(cap, json.dumps(value).encode())


@SETTINGS
@given(
    where=st.sampled_from(["top", "nav", "paint", "vitals"]),
    key=st.text(min_size=1, max_size=40),
    value=json_values,
)
def test_an_unknown_field_anywhere_is_refused(
    cap: testing.Capture, where: str, key: str, value: Any
) -> None:
    beacon = valid_beacon()
    target = beacon if where == "top" else beacon[where]
    known = TOP_FIELDS if where == "top" else set(target)
    if where == "nav":
        known = NAV_MARKS
    if key in known:
        key += "_"
    target[key] = value
    _refused_and_counted(cap, json.dumps(beacon).encode())


bad_numbers = (
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)
    | st.floats(min_value=MAX_MS + 1, allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=2)
)


@SETTINGS
@given(mark=st.sampled_from(sorted(NAV_MARKS)), value=bad_numbers)
def test_a_bad_mark_is_refused(cap: testing.Capture, mark: str, value: Any) -> None:
    beacon = valid_beacon()
    beacon["nav"][mark] = value
    _refused_and_counted(cap, json.dumps(beacon).encode())


@SETTINGS
@given(field=st.sampled_from(["v", "page", "type", "device", "nav"]), data=st.data())
def test_a_missing_or_mistyped_top_field_is_refused(
    cap: testing.Capture, field: str, data: st.DataObject
) -> None:
    beacon = valid_beacon()
    if data.draw(st.booleans()):
        del beacon[field]
    else:
        beacon[field] = data.draw(json_values.filter(lambda v: v != beacon[field]))
    _refused_and_counted(cap, json.dumps(beacon).encode())


@SETTINGS
@given(i=st.integers(0, len(NAV_ORDER) - 2), gap=st.floats(0.1, 1000.0))
def test_marks_out_of_order_are_refused(cap: testing.Capture, i: int, gap: float) -> None:
    beacon = valid_beacon()
    nav = beacon["nav"]
    later = NAV_ORDER[i + 1]
    nav[NAV_ORDER[i]] = nav[later] + gap  # mark i now after mark i+1
    _refused_and_counted(cap, json.dumps(beacon).encode())


# ------------------------------------------------------------------ valid beacons

ms = st.floats(0.0, MAX_MS, allow_nan=False)


@st.composite
def beacons(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    marks = sorted(draw(st.lists(ms, min_size=len(NAV_ORDER), max_size=len(NAV_ORDER))))
    nav = dict(zip(NAV_ORDER, marks, strict=True))
    reached = draw(st.integers(8, len(NAV_ORDER)))  # the network phase is always complete
    for name in NAV_ORDER[reached:]:
        nav[name] = 0
    nav["redirectStart"] = nav["redirectEnd"] = 0
    if draw(st.booleans()):
        nav["redirectStart"], nav["redirectEnd"] = sorted(
            draw(st.lists(st.floats(0.0, nav["fetchStart"]), min_size=2, max_size=2))
        )
    tls = draw(st.floats(nav["connectStart"], nav["connectEnd"])) if draw(st.booleans()) else 0
    nav["secureConnectionStart"] = tls
    paint = {}
    if draw(st.booleans()):
        fp, fcp = sorted(draw(st.lists(ms, min_size=2, max_size=2)))
        paint = {"first-paint": fp, "first-contentful-paint": fcp}
    vitals = draw(st.dictionaries(st.sampled_from(["lcp", "inp", "fcp", "ttfb"]), ms))
    if draw(st.booleans()):
        vitals["cls"] = draw(st.floats(0.0, 100.0))
    page, tag = draw(
        st.sampled_from(["settings", "signin"]).map(lambda p: (p, p))
        | st.from_regex(r"[a-z0-9]{1,40}", fullmatch=True).map(
            lambda uid: (f"/account/{uid}/devices", "/account/_uid_/devices")
        )
    )
    beacon = {
        "v": 1,
        "page": page,
        "type": draw(st.sampled_from(["navigate", "reload", "back_forward", "prerender"])),
        "device": draw(st.sampled_from(["desktop", "mobile", "tablet", "unknown"])),
        "nav": nav,
    }
    if paint or draw(st.booleans()):
        beacon["paint"] = paint
    if vitals or draw(st.booleans()):
        beacon["vitals"] = vitals
    return beacon, tag


@pytest.fixture
def udp() -> Iterator[UdpReceiver]:
    """A real receiver, configured once per test (its examples share it; each clears it)."""
    with UdpReceiver() as rx:
        fm.configure(
            service="fxa-beacon-props",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="development",
            metrics_yaml=[],
            mozlog_handler="never",
            strict=True,
            statsd_host=rx.host,
            statsd_port=rx.port,
            statsd_prefix="fxa-content-server",
        )
        yield rx


@SETTINGS
@given(case=beacons())
def test_valid_beacons_produce_exactly_the_documented_datagrams(
    udp: UdpReceiver, case: tuple[dict[str, Any], str]
) -> None:
    beacon, tag = case
    udp.clear()
    response = ENDPOINT.handle(json.dumps(beacon).encode(), "text/plain", "192.0.2.1")
    assert response.status == 204, response.body
    expected = expected_lines(beacon, tag, "fxa-content-server")
    deadline = time.monotonic() + 10.0
    while len(udp.lines()) < len(expected) and time.monotonic() < deadline:
        udp.wait_for(udp.count + 1, timeout=0.2)
    time.sleep(0.005)  # nothing more may follow
    assert [line.decode() for line in udp.lines()] == expected
    assert fm.stats().dropped == 0
