"""``fxa-metrics demo``: an example instrumented service handling a scripted series of requests.

Every sink writes to an embedded local receiver, and the demo prints what each
one received: the Glean lines the logging pipeline would ingest, the MozLog
lines, and the drops (an opted-out user, a bad record).
"""

from __future__ import annotations

import io
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from . import _facade
from ._context import bind
from ._records import DeletionRequest, Event, Log, Metrics

ALICE = "0123456789abcdef0123456789abcdef"
BOB = "fedcba9876543210fedcba9876543210"


def definitions_dir() -> Path:
    """The example metrics.yaml/pings.yaml shipped inside the package."""
    return Path(str(resources.files("fxa_metrics") / "example"))


def _handle_login(uid: str, opted_out: bool, reason: str) -> None:
    # What a request handler in an FxA service does: bind, record, log.
    with bind(
        uid=uid,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        ip_address="203.0.113.7",
        flow_id="5d4b4e2a9c1f4b0e8a7d6c5b4a392817",
        entrypoint="preferences",
        service="sync",
        metrics_opt_out=opted_out,
        rid="req-1",
    ):
        _facade.record(Event("login.complete", {"reason": reason, "is_new_device": False}))
        _facade.record(
            Log(
                "request.summary",
                {"errno": 0, "method": "POST", "path": "/v1/account/login", "code": 200, "t": 12},
            )
        )


def main() -> int:
    here = definitions_dir()
    glean_out = io.StringIO()
    log_out = io.StringIO()
    # The demo owns its logging: MozLog lines go to an in-memory receiver.
    _facade.configure(
        service="fxa-example-api",
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=here / "metrics.yaml",
        pings_yaml=here / "pings.yaml",
        glean_stream=glean_out,
        mozlog_handler="always",
        mozlog_stream=log_out,
    )
    logging.getLogger("fxa_metrics").addHandler(logging.NullHandler())
    logging.getLogger("fxa_metrics").propagate = False
    try:
        print("== 1. Alice logs in (consenting user)")
        _handle_login(ALICE, opted_out=False, reason="password")
        print("== 2. Bob logs in (opted out: metricsOptOutAt is set)")
        _handle_login(BOB, opted_out=True, reason="passkey")
        print("== 3. a bad record: 'errorCode' where the definition says 'error_code'")
        with bind(uid=ALICE):
            _facade.record(Event("login.error", {"reason": "bad_password", "errorCode": 103}))
        print("== 4. an account activity in the custom accounts-activity ping")
        with bind(uid=ALICE):
            _facade.record(Metrics({"activity.name": "email_changed", "activity.reason": "user"}))
        print("== 5. Bob deletes his account: server-deletion-request goes out despite the opt-out")
        with bind(uid=BOB, metrics_opt_out=True):
            _facade.record(DeletionRequest())
        _facade.flush()
        _print_glean(glean_out.getvalue())
        _print_lines("MozLog receiver", log_out.getvalue())
        snap = _facade.stats()
        print("\n-- drops (fxa_metrics.stats().drops):", dict(sorted(snap.drops.items())))
    finally:
        _facade.reset()
    return 0


def _print_glean(text: str) -> None:
    lines = [json.loads(line) for line in text.splitlines()]
    print(f"\n-- Glean receiver (stdout of the service): {len(lines)} line(s)")
    for line in lines:
        fields = line["Fields"]
        payload: dict[str, Any] = json.loads(fields["payload"])
        events = [f"{e['category']}.{e['name']} {e.get('extra', {})}" for e in payload["events"]]
        strings = payload["metrics"].get("string", {})
        print(f"  {line['Type']} Logger={line['Logger']} ping={fields['document_type']}")
        print(f"    events={events} uid={strings.get('account.user_id')}")
        print(f"    metrics={ {k: v for k, v in payload['metrics'].items() if v} }")


def _print_lines(title: str, text: str) -> None:
    lines = text.splitlines()
    print(f"\n-- {title}: {len(lines)} line(s)")
    for line in lines:
        print("  " + line)
