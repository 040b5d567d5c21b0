"""The real FxA backend definitions load unchanged, pass ``check`` and every event records."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

import fxa_metrics as fm
from fxa_metrics import testing

from .conftest import FXA_METRICS, FXA_PINGS, OLDER_METRICS, OLDER_PINGS, validate_payload

UID = "0123456789abcdef0123456789abcdef"


def _value(kind: str, key: str) -> Any:
    return {"boolean": True, "quantity": 3}.get(kind, f"{key}-value")


def test_fxa_definitions_load_with_the_expected_shape() -> None:
    defs = fm.load_definitions(FXA_METRICS, FXA_PINGS)
    types = Counter(m.type for m in defs.metrics.values())
    assert len(defs.metrics) == 97
    assert types == {"event": 83, "string": 14}
    assert len({m.category for m in defs.metrics.values()}) == 20
    # No custom pings: only the built-in ones, and the deletion ping carries the uid pair.
    assert set(defs.pings) == {"events", "server-deletion-request"}
    assert defs.pings["server-deletion-request"].metrics_by_type == {
        "string": ("account.user_id", "account.user_id_sha256")
    }
    # Every string metric is a common metric filled from the request context.
    assert {ident for ident, _ in defs.pings["events"].common} == {
        i for i, m in defs.metrics.items() if m.type == "string"
    }
    assert defs.warnings == ()


def test_fxa_metrics_check_exits_zero_on_the_fxa_definitions() -> None:
    args = ["check", "--metrics-yaml", str(FXA_METRICS), "--pings-yaml", str(FXA_PINGS)]
    proc = subprocess.run(
        [sys.executable, "-m", "fxa_metrics", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("ok")


def test_every_fxa_event_records_in_strict_mode_and_validates(fxa_cap: testing.Capture) -> None:
    defs = fm.load_definitions(FXA_METRICS, FXA_PINGS)
    events = [m for m in defs.metrics.values() if m.type == "event"]
    with fm.bind(uid=UID, user_agent="ua", ip_address="198.51.100.1", flow_id="f" * 64):
        for md in events:
            fm.record(md.identifier, extra={k: _value(t, k) for k, t in md.extras.items()})
    recorded = fxa_cap.events()
    assert [f"{e['category']}.{e['name']}" for e in recorded] == [m.identifier for m in events]
    payloads = fxa_cap.payloads()
    assert len(payloads) == 83
    for payload in payloads:
        validate_payload(payload)
        assert payload["metrics"]["string"]["account.user_id"] == UID
    # Every line, as the pipeline receives it, is a glean-server-event for accounts_backend.
    for line in fxa_cap.lines():
        assert line["Fields"]["document_namespace"] == "accounts_backend"
        assert line["Fields"]["document_type"] == "events"


def test_older_definitions_load_and_their_accounts_events_ping_works() -> None:
    defs = fm.load_definitions(OLDER_METRICS, OLDER_PINGS)
    assert defs.pings["accounts-events"].custom
    assert "event.name" in defs.pings["accounts-events"].metrics_by_type["string"]
    with (
        testing.capture(metrics_yaml=OLDER_METRICS, pings_yaml=OLDER_PINGS) as cap,
        fm.bind(uid=UID, service="sync"),
    ):
        fm.record(fm.Metrics({"event.name": "reg_complete", "event.reason": "password"}))
        for md in defs.metrics.values():
            if md.type == "event":
                fm.record(md.identifier, extra={k: _value(t, k) for k, t in md.extras.items()})
        pings = cap.pings()
        assert pings[0].ping == "accounts-events"
        assert pings[0].metrics["string"]["event.name"] == "reg_complete"
        assert pings[0].metrics["string"]["event.reason"] == "password"
        assert pings[0].metrics["string"]["relying_party.service"] == "sync"
        assert pings[0].events == ()
        assert {p.ping for p in pings[1:]} == {"events"}
        assert len(pings) == 1 + sum(m.type == "event" for m in defs.metrics.values())
        for payload in cap.payloads():
            validate_payload(payload)
