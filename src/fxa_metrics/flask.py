"""Flask integration: ``fxa_metrics.flask.init_app(app)``.

Importing this module imports Flask; ``import fxa_metrics`` never does.

What it adds over wrapping ``app.wsgi_app`` in :class:`fxa_metrics.WSGIMiddleware`:

* Flask turns a view's exception into a 500 *inside* ``wsgi_app``, so no WSGI
  middleware sees it. Flask's own ``got_request_exception`` signal does, with
  ``PROPAGATE_EXCEPTIONS`` on or off: the crash goes to Sentry once, marked
  ``handled: false``, and the ``request.summary`` says ``errno: 999`` and is
  logged at ERROR;
* the statsd ``path`` tag is the matched ``url_rule`` (``/v1/account/<uid>/login``),
  or ``_unmatched_`` for a request no rule matched;
* the dockerflow health paths (``/__heartbeat__``, ``/__lbheartbeat__``,
  ``/__version__``), unless ``health=False``.

>>> import flask, fxa_metrics.flask
>>> app = flask.Flask("doc")
>>> fxa_metrics.flask.init_app(app)
>>> app.test_client().get("/__lbheartbeat__").status_code
200
"""

from __future__ import annotations

from typing import Any

import flask

from ._middleware import WSGIMiddleware, capture_unhandled, set_route

__all__ = ["init_app"]


def _started(sender: Any, **_: Any) -> None:
    rule = flask.request.url_rule
    set_route(rule.rule if rule is not None else None)


def _exception(sender: Any, exception: BaseException, **_: Any) -> None:
    capture_unhandled(exception)


def init_app(
    app: flask.Flask,
    *,
    health: bool = True,
    version_path: str | None = None,
    trust_forwarded: bool = False,
) -> None:
    """Instrument ``app``: request context, ``url_request`` timing, ``request.summary``, crashes.

    ``version_path``: the ``version.json`` served on ``/__version__`` (default:
    the working directory's). ``trust_forwarded``: take the client IP from
    ``X-Forwarded-For`` (only behind a proxy you control).
    """
    app.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        trust_forwarded=trust_forwarded,
        health=health,
        version_path=version_path,
    )
    # weak=False: module-level receivers live as long as the process anyway.
    flask.request_started.connect(_started, app, weak=False)
    flask.got_request_exception.connect(_exception, app, weak=False)
