"""Sentry Performance for page loads, against the real loopback HTTP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics._recv_http import Receiver
from fxa_metrics._recv_udp import UdpReceiver

from .beacon_data import valid_beacon

UID = "0123456789abcdef0123456789abcdef"


def transactions(recv: Receiver) -> list[dict[str, Any]]:
    out = []
    for envelope in recv.envelopes():
        lines = envelope.split(b"\n")
        for header, item in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "transaction":
                out.append(json.loads(item))
    return out


@pytest.fixture
def sentry() -> Iterator[Receiver]:
    with Receiver() as recv, UdpReceiver() as statsd:
        fm.configure(
            service="fxa-content-server",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="development",
            metrics_yaml=[],
            mozlog_handler="never",
            strict=True,
            statsd_host=statsd.host,
            statsd_port=statsd.port,
            sentry_dsn=recv.dsn("5"),
            sentry_traces_sample_rate=1.0,
        )
        yield recv


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_one_transaction_per_page_load_with_a_span_per_phase(sentry: Receiver) -> None:
    endpoint = fm.BeaconEndpoint(routes=["/account/<uid>/devices"])
    beacon = valid_beacon(page=f"/account/{UID}/devices")
    beacon["nav"].update(connectStart=5.0, secureConnectionStart=6.0, connectEnd=8.0)
    beacon["vitals"]["inp"] = 48.0
    # A consenting, known user: a crash would carry their hashed id; a page load never does.
    with fm.bind(uid=UID, metrics_opt_out=False, user_agent="Firefox/150"):
        assert endpoint.handle(json.dumps(beacon).encode(), None, "c").status == 204
    fm.flush(5.0)
    assert sentry.wait_for(1, timeout=10)
    # Exactly one: the frontend.* timings are not turned into transactions of their own.
    (tx,) = transactions(sentry)
    assert tx["transaction"] == "/account/_uid_/devices"
    assert tx["transaction_info"] == {"source": "route"}
    assert tx["contexts"]["trace"]["op"] == "pageload"
    assert tx["tags"] == {
        "page": "/account/_uid_/devices",
        "nav_type": "navigate",
        "device_type": "desktop",
        "fxa.name": "fxa-content-server",  # the scrubber ran
    }
    assert "user" not in tx
    assert UID not in json.dumps(tx)
    assert tx["measurements"] == {
        "ttfb": {"value": 32.1, "unit": "millisecond"},
        "fp": {"value": 70.1, "unit": "millisecond"},
        "fcp": {"value": 70.1, "unit": "millisecond"},
        "lcp": {"value": 120.5, "unit": "millisecond"},
        "inp": {"value": 48.0, "unit": "millisecond"},
        "cls": {"value": 0.0123, "unit": ""},
    }
    spans = {s["description"]: s for s in tx["spans"]}
    assert list(spans) == [
        "domainLookup",
        "connect",
        "TLS/SSL",
        "request",
        "response",
        "domProcessing",
        "domContentLoadedEvent",
        "loadEvent",
    ]  # no redirect happened
    start = _ts(tx["start_timestamp"])
    assert (_ts(tx["timestamp"]) - start).total_seconds() * 1000 == pytest.approx(120.5, abs=0.01)
    request = spans["request"]
    assert request["op"] == "browser.request"
    assert request["parent_span_id"] == tx["contexts"]["trace"]["span_id"]
    assert request["trace_id"] == tx["contexts"]["trace"]["trace_id"]
    ms = [
        (_ts(request[k]) - start).total_seconds() * 1000 for k in ("start_timestamp", "timestamp")
    ]
    assert ms == pytest.approx([20.5, 32.1], abs=0.01)


def test_an_unfinished_page_load_has_no_spans_for_what_did_not_happen(sentry: Receiver) -> None:
    beacon = valid_beacon(vitals={}, paint={})
    beacon["nav"].update(redirectStart=1.0, redirectEnd=2.0)
    for name in ("domContentLoadedEventStart", "domContentLoadedEventEnd", "domComplete"):
        beacon["nav"][name] = 0
    beacon["nav"].update(loadEventStart=0, loadEventEnd=0)
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    assert endpoint.handle(json.dumps(beacon).encode(), None, "c").status == 204
    fm.flush(5.0)
    assert sentry.wait_for(1, timeout=10)
    (tx,) = transactions(sentry)
    assert [s["description"] for s in tx["spans"]] == [
        "redirect",
        "domainLookup",
        "connect",
        "request",
        "response",
        "domProcessing",
    ]
    assert "measurements" not in tx
    assert tx["transaction_info"] == {"source": "custom"}


def test_other_timings_still_become_transactions(sentry: Receiver) -> None:
    fm.record(fm.Timing("url_request", 5.0))
    fm.flush(5.0)
    assert sentry.wait_for(1, timeout=10)
    assert [t["transaction"] for t in transactions(sentry)] == ["url_request"]
