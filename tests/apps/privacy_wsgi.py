"""A Flask service for the gunicorn privacy test (tests/test_privacy_servers.py)."""

from __future__ import annotations

import flask

import fxa_metrics as fm

from .privacy_probe import configure, probe

configure("fxa-privacy-wsgi")

app = flask.Flask(__name__)
# A view's exception leaves wsgi_app, so the middleware sees the real crash.
app.config["PROPAGATE_EXCEPTIONS"] = True


@app.post("/v1/probe/<thing>")
def probe_view(thing: str) -> str:
    req = flask.request
    probe(dict(req.headers), req.path, req.query_string.decode(), thing)
    return "unreachable"


app.wsgi_app = fm.WSGIMiddleware(app.wsgi_app, trust_forwarded=True)  # type: ignore[method-assign]
