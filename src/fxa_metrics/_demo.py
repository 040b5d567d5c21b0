"""``fxa-metrics demo``: an example instrumented service handling a scripted series of requests.

The service is a small WSGI app behind :class:`fxa_metrics.WSGIMiddleware`.
Every sink writes to an embedded local receiver, and the demo prints what each
one received:

* Glean: the ``glean-server-event`` lines the logging pipeline would ingest;
* MozLog: the ``request.summary`` lines;
* statsd: the datagrams a real UDP socket on 127.0.0.1 received;
* Sentry: the envelopes a real HTTP endpoint on 127.0.0.1 received, scrubbed.

The script includes an opted-out user, a bad record (FxA's real ``errorCode``
vs ``error_code`` slip), a crash whose message carries an email, and an
account deletion.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from . import _facade
from ._context import bind
from ._records import Counter, DeletionRequest, Event, Metrics
from ._recv_http import Receiver
from ._recv_udp import UdpReceiver
from ._statsd import statsd_batch

ALICE = "0123456789abcdef0123456789abcdef"
BOB = "fedcba9876543210fedcba9876543210"
OPTED_OUT = {BOB}  # the accounts whose metricsOptOutAt is set

StartResponse = Callable[..., Any]


def definitions_dir() -> Path:
    """The example metrics.yaml/pings.yaml shipped inside the package."""
    return Path(str(resources.files("fxa_metrics") / "example"))


def example_service(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """What an FxA-style handler does: bind the user from its token, record, answer."""
    path = environ["PATH_INFO"]
    uid = environ.get("HTTP_X_UID", "")
    with bind(uid=uid or None, metrics_opt_out=uid in OPTED_OUT, flow_id="5d4b4e2a9c1f4b0e"):
        if path == "/v1/account/login":
            _facade.record(Event("login.complete", {"reason": "password", "is_new_device": False}))
        elif path == "/v1/account/login/fail":
            # The bad record: the definition says error_code.
            _facade.record(Event("login.error", {"reason": "bad_password", "errorCode": 103}))
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"bad password"]
        elif path == "/v1/account/email":
            _facade.record(Metrics({"activity.name": "email_changed", "activity.reason": "user"}))
            with statsd_batch():  # several stats, one datagram
                _facade.record(Counter("account.email_changed"))
                _facade.record(Counter("account.activity", tags={"kind": "email"}))
        elif path == "/v1/account/destroy":
            _facade.record(DeletionRequest())
        elif path == "/v1/boom":
            raise RuntimeError("mailer failed for alice@example.com from 203.0.113.7")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _request(app: Callable[..., Iterable[bytes]], method: str, path: str, uid: str = "") -> str:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.8",
    }
    if uid:
        environ["HTTP_X_UID"] = uid
    setup_testing_defaults(environ)
    status: list[str] = []

    def start_response(s: str, headers: Any, exc_info: Any = None) -> None:
        status.append(s)

    try:
        body = app(environ, start_response)
    except RuntimeError as e:
        return f"500 (raised {type(e).__name__}, re-raised unchanged by the middleware)"
    try:
        b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()  # as a WSGI server does: the request.summary line is written here
    return status[0]


def main() -> int:
    here = definitions_dir()
    glean_out = io.StringIO()
    log_out = io.StringIO()
    statsd = UdpReceiver()
    sentry = Receiver()
    try:
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
            statsd_host=statsd.host,
            statsd_port=statsd.port,
            statsd_prefix="fxa-example-api",
            # sentry-sdk is optional (fxa-metrics[sentry]): without it, no Sentry sink.
            sentry_dsn=sentry.dsn("42") if _has_sentry() else None,
        )
        # The demo prints drops itself; the once-per-kind warnings would repeat them.
        logging.getLogger("fxa_metrics").addHandler(logging.NullHandler())
        logging.getLogger("fxa_metrics").propagate = False
        app = _facade_app()
        script = [
            ("Alice logs in (consenting user)", "POST", "/v1/account/login", ALICE),
            ("Bob logs in (opted out: metricsOptOutAt is set)", "POST", "/v1/account/login", BOB),
            ("a bad record: 'errorCode' where metrics.yaml says 'error_code'",
             "POST", "/v1/account/login/fail", ALICE),
            ("Alice changes her email (custom accounts-activity ping, batched statsd)",
             "POST", "/v1/account/email", ALICE),
            ("a handler crashes with an email and an IP in its message", "GET", "/v1/boom", ""),
            ("Bob deletes his account: server-deletion-request goes out despite the opt-out",
             "POST", "/v1/account/destroy", BOB),
        ]  # fmt: skip
        for i, (title, method, path, uid) in enumerate(script, 1):
            print(f"== {i}. {title}\n   {method} {path} -> {_request(app, method, path, uid)}")
        _facade.flush()
        statsd.wait_for(len(script) + 2, timeout=2.0)
        if _has_sentry():
            sentry.wait_for(1, timeout=5.0)
        _print_glean(glean_out.getvalue())
        _print_lines("MozLog receiver (the service's log stream)", log_out.getvalue())
        _print_lines(
            f"statsd receiver (UDP 127.0.0.1:{statsd.port})",
            "\n".join(line.decode() for line in statsd.lines()),
        )
        if _has_sentry():
            _print_sentry(sentry)
        else:
            print("\n-- Sentry: sentry-sdk is not installed (pip install 'fxa-metrics[sentry]')")
        snap = _facade.stats()
        print("\n-- drops (fxa_metrics.stats().drops):", dict(sorted(snap.drops.items())))
    finally:
        _facade.reset()
        statsd.close()
        sentry.close()
    return 0


def _has_sentry() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentry_sdk") is not None


def _facade_app() -> Callable[..., Iterable[bytes]]:
    from ._middleware import WSGIMiddleware

    # The generic middleware knows no routes of its own: it is told the service's
    # templates, so statsd's path tag is the route, never "_unmatched_".
    return WSGIMiddleware(
        example_service,
        routes=[
            "/v1/account/login",
            "/v1/account/login/fail",
            "/v1/account/email",
            "/v1/account/destroy",
            "/v1/boom",
        ],
    )


def _print_glean(text: str) -> None:
    lines = [json.loads(line) for line in text.splitlines()]
    print(f"\n-- Glean receiver (the service's stdout): {len(lines)} line(s)")
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


def _print_sentry(sentry: Receiver) -> None:
    from sentry_sdk.envelope import Envelope

    bodies = sentry.envelopes()
    print(f"\n-- Sentry receiver (HTTP {sentry.url}): {len(bodies)} envelope(s)")
    for body in bodies:
        for item in Envelope.deserialize(body).items:
            event = item.payload.json
            if not event:
                continue
            values = (event.get("exception") or {}).get("values") or [{}]
            exc = values[-1]
            print(f"  {item.type}: {exc.get('type')}: {exc.get('value')}")
            print(f"    tags={event.get('tags')} user={event.get('user', {})}")
