"""``fxa-metrics tail`` on a real service's stdout, and its decoding, checks and filters alone.

The end-to-end test pipes gunicorn's stdout (pre-fork workers, no
PYTHONUNBUFFERED) straight into ``fxa-metrics tail`` running as its own
process, with one deliberately schema-invalid line written into the same pipe.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _tail, cli
from fxa_metrics._tail import Checker, Decoded, Filters, follow, schema_validator
from fxa_metrics._tail_view import Counts, Painter, render_json, render_text, run

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, ROOT
from .test_servers_e2e import _free_port, _wait_up

UIDS = [f"{i:032x}" for i in range(8)]
OPTED_OUT = {UIDS[0], UIDS[4]}
SERVICE = "fxa-e2e-wsgi"
BAD_DOC_ID = "0b7e2a46-33c4-4d2b-9a39-6f3f6f0d0b1e"


def _payload(**client: Any) -> dict[str, Any]:
    info = {
        "telemetry_sdk_build": "fxa_metrics 0.1.0",
        "first_run_date": "Unknown",
        "os": "Unknown",
        "os_version": "Unknown",
        "architecture": "Unknown",
        "app_build": "Unknown",
        "app_display_version": "1.0.0",
        "app_channel": "development",
    }
    info.update(client)
    return {
        "metrics": {"string": {"account.user_id_sha256": "ab" * 32}},
        "events": [
            {"category": "login", "name": "error", "extra": {"reason": "x"}, "timestamp": 0}
        ],
        "ping_info": {
            "seq": 0,
            "start_time": "2026-11-30T00:00:00.000Z",
            "end_time": "2026-11-30T00:00:00.000Z",
        },
        "client_info": {k: v for k, v in info.items() if v is not None},
    }


def _line(payload: Any, **over: Any) -> str:
    fields = {
        "document_namespace": "accounts_backend_dev",
        "document_type": "events",
        "document_version": "1",
        "document_id": BAD_DOC_ID,
        "user_agent": "",
        "ip_address": "",
        "payload": payload if isinstance(payload, str) else json.dumps(payload),
    }
    rec = {
        "Timestamp": 1_780_000_000_000_000_000,
        "Logger": f"{SERVICE}-glean",
        "Type": "glean-server-event",
        "Hostname": "h",
        "EnvVersion": "2.0",
        "Severity": 6,
        "Pid": 1,
        "Fields": fields,
    }
    for key, value in over.items():
        if key in fields:
            fields[key] = value
        else:
            rec[key] = value
    return json.dumps(rec)


# The deliberately schema-invalid line: client_info lacks telemetry_sdk_build.
INVALID = _line(_payload(telemetry_sdk_build=None))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """gunicorn's stdout piped into a real ``fxa-metrics tail --json`` process."""
    tmp = tmp_path_factory.mktemp("tail")
    out_path = tmp / "tail.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.pop("E2E_STATSD_PORT", None)
    read_end, write_end = os.pipe()
    port = _free_port()
    with out_path.open("wb") as out:
        tail = subprocess.Popen(
            [
                *(sys.executable, "-m", "fxa_metrics", "tail", "--json"),
                *("--metrics-yaml", str(EXAMPLE_METRICS), "--pings-yaml", str(EXAMPLE_PINGS)),
            ],
            stdin=read_end,
            stdout=out,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
    os.close(read_end)
    cmd = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    cmd += ["--graceful-timeout", "5", "--preload", "tests.apps.wsgi_app:app"]
    server = subprocess.Popen(cmd, stdout=write_end, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    try:
        _wait_up(port, server)
        for i, uid in enumerate(UIDS):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/account/{uid}/login",
                method="POST",
                data=b"",
                headers={"User-Agent": "tail/1.0", "X-Opt-Out": "1" if uid in OPTED_OUT else "0"},
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 200
            if i == 3:
                # One line the pipeline would reject, into the very same pipe (< PIPE_BUF: atomic).
                os.write(write_end, INVALID.encode() + b"\n")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        os.close(write_end)  # tail sees EOF once the workers are gone too
    _, err = tail.communicate(timeout=60)
    records = [json.loads(x) for x in out_path.read_text().splitlines()]
    return {"code": tail.returncode, "stderr": err.decode(), "records": records}


def _uid_hash(uid: str) -> str:
    return fm.uid_sha256(uid)


@pytest.mark.integration
def test_every_line_of_a_real_service_is_decoded(served: dict[str, Any]) -> None:
    records = served["records"]
    assert records, served["stderr"]
    assert {r["kind"] for r in records} == {"glean", "mozlog"}  # no line left undecoded
    glean = [r for r in records if r["kind"] == "glean"]
    summaries = [r for r in records if r["record"]["Type"] == "request.summary"]
    consenting = [u for u in UIDS if u not in OPTED_OUT]
    assert len(glean) == len(consenting) + 1
    assert len(summaries) == len(UIDS)
    for r in glean:
        assert r["payload"]["client_info"]["app_channel"] == "development"
    real = [r for r in glean if r["record"]["Fields"]["document_id"] != BAD_DOC_ID]
    assert {r["payload"]["metrics"]["string"]["account.user_id"] for r in real} == set(consenting)
    assert all(r["events"] == ["login.complete"] for r in real)
    # Lines decode in the order they were written: numbered 1..n without gaps.
    assert [r["line"] for r in records] == list(range(1, len(records) + 1))


@pytest.mark.integration
def test_the_schema_invalid_line_and_only_it_is_flagged(served: dict[str, Any]) -> None:
    flagged = [r for r in served["records"] if r["reject"] or r["warnings"]]
    assert len(flagged) == 1, flagged
    (bad,) = flagged
    assert bad["record"]["Fields"]["document_id"] == BAD_DOC_ID
    assert bad["ok"] is False
    assert bad["reject"] == ["schema: client_info: 'telemetry_sdk_build' is a required property"]
    assert served["code"] == 1  # a rejected line fails the run
    assert "1 rejected" in served["stderr"]


def _replay(served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, *argv: str) -> list[Any]:
    raw = "".join(r["raw"] + "\n" for r in served["records"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(raw))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    cli.main(["tail", "--json", *argv])
    return [json.loads(x) for x in out.getvalue().splitlines()]


@pytest.mark.integration
def test_filters_on_the_real_stream(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def shown(*argv: str) -> list[Any]:
        return _replay(served, monkeypatch, *argv)

    consenting = [u for u in UIDS if u not in OPTED_OUT]
    assert len(shown("--event", "login.complete")) == len(consenting)
    assert len(shown("--event", "login.*")) == len(consenting) + 1
    assert len(shown("--ping", "events")) == len(consenting) + 1
    assert len(shown("--ping", "accounts-activity")) == 0
    summaries = shown("--type", "request.summary")
    assert len(summaries) == len(UIDS)
    assert {r["record"]["Logger"] for r in shown("--logger", SERVICE)} == {SERVICE}
    assert len(shown("--logger", f"{SERVICE}-glean")) == len(consenting) + 1
    # One consenting user: their Glean event and their request.summary.
    uid = consenting[0]
    by_hash = shown("--uid-hash", _uid_hash(uid))
    assert sorted(r["kind"] for r in by_hash) == ["glean", "mozlog"]
    assert shown("--uid", uid) == by_hash
    # An opted-out user: only the operational summary, never a Glean event.
    assert [r["kind"] for r in shown("--uid", sorted(OPTED_OUT)[0])] == ["mozlog"]
    # Filters combine with AND.
    both = shown("--uid", uid, "--type", "request.summary")
    assert both == [r for r in by_hash if r["kind"] == "mozlog"]
    assert [r["record"]["Fields"]["document_id"] for r in shown("--flagged")] == [BAD_DOC_ID]


# ------------------------------------------------------------------ checks alone


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker(schema_validator(), fm.load_definitions(EXAMPLE_METRICS, EXAMPLE_PINGS))


def test_a_valid_line_from_the_library_passes(checker: Checker) -> None:
    from fxa_metrics import testing

    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as cap:
        with fm.bind(uid=UIDS[1], user_agent="ua/1"):
            fm.record("login.complete", extra={"reason": "password"})
        (line,) = cap.lines()
    d = checker.decode(1, json.dumps(line) + "\n")
    assert (d.kind, d.reject, d.warnings) == ("glean", (), ())
    assert d.events == ("login.complete",)


def test_text_and_non_object_json_are_passed_through(checker: Checker) -> None:
    assert checker.decode(1, "gunicorn says hi\n") == Decoded(1, "text", "gunicorn says hi")
    assert checker.decode(2, "[1, 2]").kind == "text"
    assert checker.decode(3, "[1, 2]").events == ()


def test_mozlog_envelope_problems(checker: Checker) -> None:
    d = checker.decode(1, json.dumps({"Type": "x", "Severity": True, "EnvVersion": "1.0"}))
    assert d.kind == "mozlog"
    assert "MozLog: missing Timestamp" in d.reject
    assert "MozLog: Severity must be int, got bool" in d.reject
    assert "MozLog: EnvVersion must be '2.0', got '1.0'" in d.reject
    assert d.fields == {}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (_line("{not json"), "Glean: the payload is not JSON"),
        (_line("[1]"), "Glean: the payload is not a JSON object"),
        (_line(_payload(), document_id="nope"), "Glean: Fields.document_id 'nope' is not a UUID"),
        (_line(_payload(), document_version="2"), "Glean: Fields.document_version must be '1'"),
        (_line(_payload(), ip_address=None), "Glean: Fields.ip_address must be a string"),
        (_line(_payload(), Fields=[]), "MozLog: Fields must be dict, got list"),
    ],
)
def test_glean_envelope_problems(checker: Checker, line: str, expected: str) -> None:
    d = checker.decode(1, line)
    assert d.kind == "glean"
    assert any(p.startswith(expected) for p in d.reject), d.reject


def _with(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**payload, **changes}


@pytest.mark.parametrize(
    ("line", "warning"),
    [
        (_line(_payload(), document_type="nope"), "ping 'nope' is not declared"),
        (
            _line(_with(_payload(), events=[{"category": "login", "name": "x", "timestamp": 0}])),
            "event 'login.x' is not defined",
        ),
        (
            _line(
                _with(
                    _payload(),
                    events=[
                        {"category": "login", "name": "error", "extra": {"e": "1"}, "timestamp": 0}
                    ],
                )
            ),
            "event 'login.error' has no extra 'e'",
        ),
        (
            _line(
                _with(_payload(), events=[{"category": "login", "name": "error", "timestamp": 0}]),
                document_type="accounts-activity",
            ),
            "event 'login.error' is not sent in ping 'accounts-activity'",
        ),
        (_line(_with(_payload(), metrics={"string": {"a.b": "x"}})), "metric 'a.b' is not defined"),
        (
            _line(_with(_payload(), metrics={"quantity": {"account.user_id": 1}})),
            "metric 'account.user_id' is a string, sent as quantity",
        ),
        (
            _line(_with(_payload(), metrics={"string": {"activity.name": "x"}})),
            "metric 'activity.name' is not sent in ping 'events'",
        ),
    ],
)
def test_definition_warnings(checker: Checker, line: str, warning: str) -> None:
    d = checker.decode(1, line)
    assert warning in d.warnings, d.warnings


def test_expired_and_disabled_events_warn(tmp_path: Path) -> None:
    text = EXAMPLE_METRICS.read_text()
    text = text.replace(
        "  error:\n    type: event\n", "  error:\n    type: event\n    disabled: true\n"
    )
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(text)
    defs = fm.load_definitions(metrics, EXAMPLE_PINGS)
    d = Checker(None, defs).decode(1, _line(_payload()))
    assert d.warnings == ("event 'login.error' is disabled",)


def test_without_definitions_only_the_schema_judges() -> None:
    d = Checker(None).decode(1, _line(_with(_payload(), events=[{"category": "a", "name": "b"}])))
    assert (d.reject, d.warnings) == ((), ())


# ------------------------------------------------------------------ presentation


def test_text_rendering_with_and_without_colour(checker: Checker) -> None:
    bad = checker.decode(7, INVALID)
    summary = checker.decode(
        8,
        json.dumps(
            {
                "Timestamp": 1_780_000_000_123_000_000,
                "Logger": SERVICE,
                "Type": "request.summary",
                "Hostname": "h",
                "EnvVersion": "2.0",
                "Severity": 3,
                "Pid": 42,
                "Fields": {"code": 500, "path": "/v1/a b", "errno": 0},
            }
        ),
    )
    plain = render_text(bad, Painter(False))
    assert "glean events login.error reason=x" in plain
    assert "\n    REJECT schema: client_info:" in plain
    assert "\x1b[" not in plain
    assert "\x1b[1;31mREJECT\x1b[0m" in render_text(bad, Painter(True))
    line = render_text(summary, Painter(False))
    assert line.endswith(
        'ERROR fxa-e2e-wsgi request.summary code=500 path="/v1/a b" errno=0 [pid 42]'
    )
    assert line.startswith(time.strftime("%H:%M:%S", time.gmtime(1_780_000_000)) + ".123 ")
    assert render_text(checker.decode(9, "plain"), Painter(True)) == "\x1b[2mplain\x1b[0m"
    odd = checker.decode(10, json.dumps({"Type": "t", "Timestamp": 10**30, "Severity": 7}))
    assert render_text(odd, Painter(False)).startswith("--:--:--.--- DEBUG ? t")
    warned = Checker(None, checker.defs).decode(11, _line(_payload(), document_type="nope"))
    assert "    WARN ping 'nope' is not declared" in render_text(warned, Painter(False))


def test_json_rendering_keeps_the_raw_line(checker: Checker) -> None:
    out = json.loads(render_json(checker.decode(3, INVALID + "\n")))
    assert out["raw"] == INVALID
    assert out["ok"] is False
    assert out["line"] == 3
    assert out["events"] == ["login.error"]


def test_counts_and_the_flagged_filter(checker: Checker) -> None:
    out = io.StringIO()
    counts = run(["x\n", INVALID, _line(_payload())], out, checker, Filters(flagged=True))
    assert counts == Counts(lines=3, glean=2, events=2, mozlog=0, text=1, rejected=1, shown=1)
    assert str(counts).startswith("3 lines: 2 glean (2 events), 0 MozLog, 1 other; 1 rejected")
    # A text line is shown only when no filter is given.
    assert not Filters(types=("x",)).match(Decoded(1, "text", "x"))
    assert Filters().match(Decoded(1, "text", "x"))


# ------------------------------------------------------------------ input


def test_follow_reads_appended_lines_holds_partial_ones_and_survives_truncation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.log"
    path.write_text("one\n")
    stop = threading.Event()
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(follow(path, stop, poll=0.01)))
    reader.start()

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(got) >= n, got

    try:
        wait_for(1)
        with path.open("a") as fh:
            fh.write("tw")
            fh.flush()
            time.sleep(0.1)
            assert got == ["one\n"]  # the partial line waits for its newline
            fh.write("o\n")
        wait_for(2)
        path.write_text("")  # copytruncate rotation
        time.sleep(0.1)
        path.write_text("three\n")
        wait_for(3)
        with path.open("a") as fh:
            fh.write("last, unterminated")
    finally:
        time.sleep(0.1)
        stop.set()
        reader.join(timeout=30)
    assert got == ["one\n", "two\n", "three\n", "last, unterminated"]


def _cli(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    return cli.main(argv), out.getvalue()


def test_tail_reads_a_file_and_exits_clean_without_rejections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out.log"
    path.write_text(_line(_payload()) + "\n")
    code, out = _cli(monkeypatch, ["tail", str(path), "--color", "never"])
    assert code == 0
    assert "login.error reason=x" in out
    assert "1 lines: 1 glean (1 events)" in capsys.readouterr().err
    code, out = _cli(monkeypatch, ["tail", str(path), "--color", "always", "--no-schema"])
    assert code == 0
    assert "\x1b[" in out


def test_tail_of_a_missing_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _cli(monkeypatch, ["tail", str(tmp_path / "nope.log")])
    assert code == 2
    assert "no such file" in capsys.readouterr().err


def test_tail_follow_ends_on_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(path: Any, stop: threading.Event, poll: float = 0.2) -> Iterator[str]:
        yield INVALID
        raise KeyboardInterrupt

    monkeypatch.setattr(_tail, "follow", interrupted)
    (tmp_path / "x").write_text("")
    code, out = _cli(monkeypatch, ["tail", "-f", str(tmp_path / "x"), "--json"])
    assert code == 0
    assert json.loads(out)["ok"] is False
    assert "interrupted" in capsys.readouterr().err


def test_tail_says_clearly_when_jsonschema_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    code, _ = _cli(monkeypatch, ["tail"], stdin=INVALID)
    assert code == 2
    assert "pip install 'fxa-metrics[testing]'" in capsys.readouterr().err
    # ...and still works without the schema when told to.
    code, out = _cli(monkeypatch, ["tail", "--no-schema", "--json"], stdin=INVALID)
    assert code == 0
    assert json.loads(out)["reject"] == []


def test_tail_with_bad_definitions_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _cli(monkeypatch, ["tail", "--metrics-yaml", str(tmp_path / "missing.yaml")])
    assert code == 2
    assert "file not found" in capsys.readouterr().err
