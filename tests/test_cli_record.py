"""``fxa-metrics record``: each CLI point of issue 12, in a real process.

The command's stdout is compared line for line with what the API writes for
the same record in the same settings: over-limit values included, since
production truncates them, sends them and counts them.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics import cli
from fxa_metrics._recv_http import Receiver

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

UID = "0123456789abcdef0123456789abcdef"
IDENTITY = {"app_id": "accounts_backend", "app_version": "2.0.1", "channel": "production"}
BASE = [
    "--metrics-yaml", str(EXAMPLE_METRICS),
    "--pings-yaml", str(EXAMPLE_PINGS),
    "--app-id", "accounts_backend",
    "--app-version", "2.0.1",
    "--channel", "production",
]  # fmt: skip


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fxa_metrics", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _stable(line: str) -> dict[str, Any]:
    """A Glean line without what differs from one emission to the next."""
    parsed = json.loads(line)
    payload = json.loads(parsed["Fields"].pop("payload"))
    validate_payload(payload)
    for key in ("Timestamp", "Pid"):
        parsed.pop(key)
    parsed["Fields"].pop("document_id")
    payload.pop("ping_info")
    parsed["payload"] = payload
    return parsed


def api_lines(records: list[Any], **bound: Any) -> tuple[list[str], fm.StatsSnapshot]:
    """The lines the API writes for ``records``, in production mode, as the CLI is set up."""
    out = io.StringIO()
    fm.configure(
        service="fxa-metrics-cli",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=out,
        mozlog_handler="never",
        strict=False,
        **IDENTITY,
    )
    try:
        with fm.bind(**bound):
            for rec in records:
                fm.record(rec)
        snap = fm.stats()
    finally:
        fm.reset()
    return out.getvalue().splitlines(), snap


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"fxa-metrics {fm.__version__}"


def test_event_after_a_path_option_is_not_swallowed() -> None:
    # The positional comes right after --metrics-yaml: one PATH per option.
    r = run(
        "record", "--metrics-yaml", str(EXAMPLE_METRICS), "login.complete",
        "--pings-yaml", str(EXAMPLE_PINGS), "--app-id", "accounts_backend",
        "--app-version", "2.0.1", "--channel", "production",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()
    assert json.loads(json.loads(line)["Fields"]["payload"])["events"][0]["name"] == "complete"


def test_several_definition_files_repeat_the_option(tmp_path: Any) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text(
        "---\n$schema: moz://mozilla.org/schemas/glean/metrics/2-0-0\n"
        "more:\n  thing:\n    type: event\n    description: d\n    bugs: [https://x.test/1]\n"
        "    data_reviews: [https://x.test/2]\n    notification_emails: [a@example.com]\n"
        "    expires: never\n"
    )
    r = run("record", "more.thing", "--metrics-yaml", str(extra), *BASE)
    assert r.returncode == 0, r.stderr
    assert '\\"category\\":\\"more\\"' in r.stdout


def test_deletion_request_equals_the_api_line() -> None:
    r = run("record", "--deletion-request", "--uid", UID, *BASE)
    assert r.returncode == 0, r.stderr
    [cli_line] = r.stdout.splitlines()
    [api_line], _ = api_lines([fm.DeletionRequest()], uid=UID)
    assert _stable(cli_line) == _stable(api_line)
    assert json.loads(cli_line)["Fields"]["document_type"] == "server-deletion-request"


def test_deletion_request_is_sent_for_an_opted_out_user() -> None:
    r = run("record", "--deletion-request", "--uid", UID, "--opted-out", *BASE)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1


def test_deletion_request_without_uid_is_refused() -> None:
    assert run("record", "--deletion-request", "--strict", *BASE).returncode == 2
    lenient = run("record", "--deletion-request", *BASE)
    assert lenient.returncode == 0
    assert lenient.stdout == ""
    assert lenient.stderr.splitlines()[-1] == "dropped: invalid_value"


# Over-limit values: an extra over 500 bytes, a string metric over 255, in
# one or several bytes per character (Glean's limits are in UTF-8 bytes).
OVER = [
    ("extra", "reason", "x" * 501),
    ("extra", "reason", "é" * 300),
    ("metric", "activity.name", "y" * 256),
    ("metric", "activity.reason", "日" * 100),
]


@pytest.mark.parametrize(("where", "key", "value"), OVER)
def test_over_limit_lines_equal_the_api_lines(where: str, key: str, value: str) -> None:
    if where == "extra":
        args = ["login.complete", "--extra", f"{key}={value}"]
        rec: Any = fm.Event("login.complete", extra={key: value})
    else:
        args = ["--metric", f"{key}={value}"]
        rec = fm.Metrics({key: value})
    r = run("record", *args, "--uid", UID, *BASE)
    assert r.returncode == 0, r.stderr
    api, snap = api_lines([rec], uid=UID)
    assert [_stable(x) for x in r.stdout.splitlines()] == [_stable(x) for x in api]
    assert snap.errors == {"invalid_overflow": 1}  # production counts it ...
    assert r.stderr.splitlines()[-1].startswith("counted: invalid_overflow")  # ... so do we
    strict = run("record", *args, "--uid", UID, "--strict", *BASE)
    assert strict.returncode == 2
    assert strict.stdout == ""
    assert "longer than" in strict.stderr


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reason=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=700),
    attempts=st.integers(min_value=0, max_value=2**31),
)
def test_cli_line_equals_api_line_property(reason: str, attempts: int) -> None:
    args = ["login.complete", "--extra", f"reason={reason}", "--extra", f"attempts={attempts}"]
    r = run("record", *args, "--uid", UID, *BASE)
    api, _ = api_lines(
        [fm.Event("login.complete", extra={"reason": reason, "attempts": attempts})], uid=UID
    )
    assert [_stable(x) for x in r.stdout.splitlines()] == [_stable(x) for x in api]


def test_record_command_runs_in_process_too(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["record", "login.complete", "--uid", UID, *BASE])
    assert code == 0
    [line] = capsys.readouterr().out.splitlines()
    [api], _ = api_lines([fm.Event("login.complete")], uid=UID)
    assert _stable(line) == _stable(api)


def test_missing_identity_is_a_usage_error() -> None:
    r = run("record", "--deletion-request", "--uid", UID)
    assert r.returncode == 2
    assert "--app-id is required" in r.stderr
    r = run("record", "login.complete", "--app-id", "a", "--app-version", "1", "--channel", "c")
    assert r.returncode == 2
    assert "--metrics-yaml is required" in r.stderr


# ------------------------------------------------------------------ --crash


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def test_crash_delivered_prints_the_accepted_event_id() -> None:
    with Receiver() as recv:
        r = run("record", "--crash", "boom", "--sentry-dsn", recv.dsn("4"))
        assert r.returncode == 0, r.stderr
        event_id = r.stdout.split("sentry event_id: ")[1].split()[0]
        [body] = recv.envelopes()
    assert event_id.encode() in body


@pytest.mark.parametrize(
    ("dsn", "needle"),
    [
        (f"http://key@127.0.0.1:{_free_port()}/1", "could not be reached"),
        ("http://key@sentry.invalid/1", "could not be reached"),  # RFC 6761: never resolves
    ],
)
def test_crash_not_delivered_exits_1_with_the_reason(dsn: str, needle: str) -> None:
    r = run("record", "--crash", "boom", "--sentry-dsn", dsn, "--flush-timeout", "5")
    assert r.returncode == 1
    assert "sentry: not delivered:" in r.stderr
    assert needle in r.stderr
    assert "event_id" not in r.stdout


def test_crash_refused_by_the_endpoint_exits_1_with_its_answer() -> None:
    import http.server
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(403)
            self.send_header("X-Sentry-Error", "project disabled")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dsn = f"http://key@127.0.0.1:{server.server_address[1]}/1"
        r = run("record", "--crash", "boom", "--sentry-dsn", dsn)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert r.returncode == 1
    assert "answered HTTP 403: project disabled" in r.stderr


def test_crash_filtered_before_sending_is_not_delivered() -> None:
    from fxa_metrics import _cli_sentry

    assert _cli_sentry.report(None) == 1
    answers = _cli_sentry.Answers(1.0)
    assert _cli_sentry.report(answers) == 1
