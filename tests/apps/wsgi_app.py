"""A Flask service instrumented with fxa_metrics, for the gunicorn end-to-end test."""

from __future__ import annotations

import os
from pathlib import Path

import flask

import fxa_metrics as fm
import fxa_metrics.flask

ROOT = Path(__file__).resolve().parents[2]

fm.configure(
    service="fxa-e2e-wsgi",
    app_id="accounts_backend_dev",
    app_version="1.0.0",
    channel="development",
    metrics_yaml=ROOT / "metrics.yaml",
    pings_yaml=ROOT / "pings.yaml",
    mozlog_handler="always",
    **({"statsd_host": "127.0.0.1", "statsd_port": int(os.environ["E2E_STATSD_PORT"])}
       if os.environ.get("E2E_STATSD_PORT") else {}),
)  # fmt: skip

app = flask.Flask(__name__)


@app.post("/v1/account/<uid>/login")
def login(uid: str) -> tuple[str, int]:
    with fm.bind(uid=uid, metrics_opt_out=flask.request.headers.get("X-Opt-Out") == "1"):
        fm.record("login.complete", extra={"reason": "password"})
    return "ok", 200


fxa_metrics.flask.init_app(app)  # Flask's own hooks: url_rule tags, crashes
