"""A Flask service that serves pages carrying the beacon snippet, for the headless Chromium test.

Run by gunicorn (pre-fork workers) on 127.0.0.1. The environment says where
statsd (``BEACON_STATSD_PORT``) and Sentry (``BEACON_SENTRY_DSN``, with Sentry
Performance on) are: the test's loopback receivers.
"""

from __future__ import annotations

import os
from pathlib import Path

import flask

import fxa_metrics as fm

ROOT = Path(__file__).resolve().parents[3]
DSN = os.environ.get("BEACON_SENTRY_DSN")

fm.configure(
    service="fxa-beacon-page",
    app_id="accounts_backend_dev",
    app_version="1.0.0",
    channel="development",
    metrics_yaml=ROOT / "metrics.yaml",
    pings_yaml=ROOT / "pings.yaml",
    mozlog_handler="never",
    statsd_prefix="fxa-content-server",
    **({"statsd_host": "127.0.0.1", "statsd_port": int(os.environ["BEACON_STATSD_PORT"])}
       if os.environ.get("BEACON_STATSD_PORT") else {}),
    **({"sentry_dsn": DSN, "sentry_traces_sample_rate": 1.0} if DSN else {}),
)  # fmt: skip

app = flask.Flask(__name__)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script src="/__beacon__" {page_attr} data-flush-ms="200" defer></script></head>
<body><h1>{title}</h1><p>{body}</p></body></html>
"""


@app.get("/settings")
def settings() -> str:
    return PAGE.format(
        title="Account settings", page_attr='data-page="settings"', body="Your account. " * 40
    )


@app.get("/account/<uid>/devices")
def devices(uid: str) -> str:
    # No data-page: the snippet sends the path; the server tags the route template.
    return PAGE.format(title="Devices", page_attr="", body="Connected devices. " * 40)


# The allow-listed name for /settings; other pages are matched to the app's own
# route templates (the devices page sends its path, tagged /account/_uid_/devices).
endpoint = fm.BeaconEndpoint(pages=["settings"], routes=fm.BeaconEndpoint.route_templates(app))
app.register_blueprint(endpoint.flask_blueprint("/__beacon__"))

app.wsgi_app = fm.WSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
