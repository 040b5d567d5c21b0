"""A Flask service instrumented with ``fxa_metrics.flask``.

Run it: ``gunicorn --workers 2 --bind 127.0.0.1:8000 examples.flask_app:app``.
``EXAMPLE_PROPAGATE=1`` turns Flask's ``PROPAGATE_EXCEPTIONS`` on; crashes are
captured either way.
"""

from __future__ import annotations

import os

import flask

import fxa_metrics as fm
import fxa_metrics.flask

from ._setup import VERSION_JSON, opted_out, setup

setup("fxa-example-flask", consent_lookup_uid=opted_out)

app = flask.Flask(__name__)
app.config["PROPAGATE_EXCEPTIONS"] = os.environ.get("EXAMPLE_PROPAGATE") == "1"


@app.post("/v1/account/<uid>/login")
def login(uid: str) -> str:
    with fm.bind(uid=uid):
        fm.record("login.complete", extra={"reason": "password"})
    return "ok"


@app.get("/v1/boom")
def boom() -> str:
    raise RuntimeError("the example view crashed")


fxa_metrics.flask.init_app(app, version_path=VERSION_JSON)
