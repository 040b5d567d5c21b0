"""Glean event and MozLog line: ours vs upstream generated code and dockerflow's formatter.

Run: ``python -m bench.bench_glean`` (or ``make bench`` for every route).
"""

from __future__ import annotations

import importlib
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import fxa_metrics as fm

from ._timing import compare

ROOT = Path(__file__).resolve().parent.parent
FXA = ROOT / "tests" / "data" / "fxa-backend"
METRICS = FXA / "fxa-backend-metrics.yaml"
PINGS = FXA / "fxa-backend-pings.yaml"

UID = "0123456789abcdef0123456789abcdef"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
IP = "203.0.113.7"
CONTEXT: dict[str, str] = {
    "flow_id": "5d4b4e2a9c1f4b0e8a7d6c5b4a392817",
    "entrypoint": "preferences",
    "service": "sync",
    "oauth_client_id": "5882386c6d801776",
    "device_type": "desktop",
    "utm_source": "fx-website",
    "utm_medium": "email",
    "utm_campaign": "welcome",
}


def _generate_upstream(outdir: Path) -> Any:
    """glean_parser's python_server code for the FxA definitions: generated now, never committed."""
    from glean_parser import translate

    translate.translate([METRICS, PINGS], "python_server", outdir, {}, {})
    sys.path.insert(0, str(outdir.parent))
    try:
        return importlib.import_module(f"{outdir.name}.server_events")
    finally:
        sys.path.pop(0)


def bench_glean_event(devnull: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        upstream = _generate_upstream(Path(tmp) / "fxa_upstream_bench")
    logger = upstream.create_events_server_event_logger("accounts_backend", "1.0.0", "production")
    sha = fm.uid_sha256(UID)

    def theirs() -> None:
        logger.record_login_complete(
            user_agent=UA,
            ip_address=IP,
            account_user_id=UID,
            account_user_id_sha256=sha,
            relying_party_oauth_client_id=CONTEXT["oauth_client_id"],
            relying_party_service=CONTEXT["service"],
            session_device_type=CONTEXT["device_type"],
            session_entrypoint=CONTEXT["entrypoint"],
            session_flow_id=CONTEXT["flow_id"],
            utm_campaign=CONTEXT["utm_campaign"],
            utm_medium=CONTEXT["utm_medium"],
            utm_source=CONTEXT["utm_source"],
        )

    fm.configure(
        service="fxa-auth-api",
        app_id="accounts_backend",
        app_version="1.0.0",
        channel="production",
        metrics_yaml=METRICS,
        pings_yaml=PINGS,
        glean_stream=devnull,
        mozlog_handler="never",
    )

    def ours() -> None:
        fm.record("login.complete")

    real_stdout = sys.stdout
    sys.stdout = devnull  # upstream writes to sys.stdout; same file for both sides
    try:
        with fm.bind(uid=UID, user_agent=UA, ip_address=IP, **CONTEXT):
            row = compare(
                "Glean event: record() vs upstream record_login_complete()",
                ours,
                theirs,
                goal="<= 1.0 (target <= 0.5)",
                ours_label='fm.record("login.complete") in a bound request',
                baseline_label="glean_parser python_server record_login_complete(...)",
            )
    finally:
        sys.stdout = real_stdout
        fm.reset()
    return row


FIELDS = {
    "errno": 0,
    "agent": UA,
    "lang": "en-US",
    "method": "POST",
    "path": "/v1/account/login",
    "rid": "f6a7c2b9-6f1d-4b7e-9a55-0d3c2e1f4a8b",
    "t": 12,
    "code": 200,
}


def bench_mozlog(devnull: Any) -> list[dict[str, Any]]:
    from dockerflow.logging import MozlogFormatter

    # Baseline: the way a Dockerflow service logs request.summary today.
    base_logger = logging.getLogger("bench.dockerflow.request.summary")
    base_logger.propagate = False
    base_logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(devnull)
    handler.setFormatter(MozlogFormatter(logger_name="fxa-auth-api"))
    base_logger.addHandler(handler)

    def theirs() -> None:
        base_logger.info("", extra=FIELDS)

    fm.configure(
        service="fxa-auth-api",
        app_id="accounts_backend",
        app_version="1.0.0",
        channel="production",
        metrics_yaml=(),
        mozlog_handler="always",
        mozlog_stream=devnull,
    )
    logging.getLogger("request.summary").propagate = False
    record = fm.Log("request.summary", FIELDS)

    def ours() -> None:
        fm.record(record)

    rows = [
        compare(
            "MozLog line: record(Log) vs stdlib logging + dockerflow MozlogFormatter",
            ours,
            theirs,
            goal="<= 1.0 (target <= 0.5)",
            ours_label='fm.record(fm.Log("request.summary", fields))',
            baseline_label='logger.info("", extra=fields), dockerflow MozlogFormatter',
        )
    ]
    fm.reset()
    logging.getLogger("request.summary").propagate = True

    # The formatter alone, same LogRecord: what our encoder saves, logging aside.
    rec = base_logger.makeRecord(
        "request.summary", logging.INFO, __file__, 1, "", (), None, extra=FIELDS
    )
    ours_fmt = fm.MozLogFormatter("fxa-auth-api")
    theirs_fmt = MozlogFormatter(logger_name="fxa-auth-api")
    rows.append(
        compare(
            "MozLog formatter alone (same LogRecord)",
            lambda: ours_fmt.format(rec),
            lambda: theirs_fmt.format(rec),
            goal="(informative)",
            ours_label="fxa_metrics.MozLogFormatter.format",
            baseline_label="dockerflow MozlogFormatter.format",
        )
    )
    base_logger.removeHandler(handler)
    return rows


def run() -> list[dict[str, Any]]:
    with open("/dev/null", "w") as devnull:
        return [bench_glean_event(devnull), *bench_mozlog(devnull)]


if __name__ == "__main__":
    for row in run():
        print(row)
