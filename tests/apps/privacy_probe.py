"""The privacy probe shared by the gunicorn and uvicorn privacy apps (issue 10).

Configures fxa_metrics from the environment the test sets (the real statsd and
Sentry receivers' ports, a file for fxa_metrics' own warnings), and ``probe()``
pushes what a request carries into every input position: context fields,
Glean extras, MozLog fields (a nested metricsContext too), statsd tags, a
handled crash (message, notes, locals, tags, extra), then crashes for real.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fxa_metrics as fm

ROOT = Path(__file__).resolve().parents[2]
_OPT_OUT: dict[str, Any] = {"0": False, "1": True, "ts": 1_700_000_000_000}


def configure(service: str) -> None:
    if "E2E_WARN_FILE" not in os.environ:
        return  # imported by the suite's doctest collection, not served: configure nothing
    fm.configure(
        service=service,
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=ROOT / "metrics.yaml",
        pings_yaml=ROOT / "pings.yaml",
        mozlog_handler="always",
        strict=False,
        statsd_host="127.0.0.1",
        statsd_port=int(os.environ["E2E_STATSD_PORT"]),
        sentry_dsn=os.environ["E2E_SENTRY_DSN"],
        sentry_traces_sample_rate=1.0,
    )
    # Our own warnings, as a plain-text host log shows them: one record, one line.
    handler = logging.FileHandler(os.environ["E2E_WARN_FILE"])
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("fxa_metrics").addHandler(handler)


def probe(headers: Mapping[str, str], path: str, query: str, thing: str) -> None:
    h = {k.lower(): v for k, v in headers.items()}
    auth_header = h.get("authorization", "")  # locals Sentry would send
    cookie = h.get("cookie", "")
    with fm.bind(
        uid=h["x-plant-uid"],
        email=h["x-plant-email"],
        flow_id=h["x-plant-flow"],
        utm_source=h["x-plant-utm"],
        service=h["x-plant-service"],
        device_type=h["x-plant-device"],
        metrics_opt_out=_OPT_OUT[h["x-opt-out"]],
    ):
        fm.record("login.complete", extra={"reason": query[:400]})
        fm.record(fm.DeletionRequest())
        fm.record(
            fm.Log(
                "privacy.probe",
                {
                    "note": f"{auth_header} {cookie} {query}",
                    "flowId": h["x-plant-flow"],
                    "metricsContext": {
                        "flowId": h["x-plant-flow"],
                        "utm_source": h["x-plant-utm"],
                        "service": h["x-plant-service"],
                        "deviceType": h["x-plant-device"],
                    },
                },
            )
        )
        fm.record(fm.Timing("privacy.probe", 1.0, tags={"thing": thing}))  # refused: identity
        fm.record(fm.Timing("privacy.ok", 1.0, tags={"route": "probe"}))
        try:
            raise ValueError(f"refused {auth_header} with {cookie} for {thing}?{query}")
        except ValueError as e:
            e.add_note(f"Authorization: {auth_header}; query {query}")
            fm.record(fm.Crash(e, tags={"q": query[:150]}, extra={"headers": h}))
    raise RuntimeError(f"crashed on {path}?{query} for {h.get('user-agent')}")
