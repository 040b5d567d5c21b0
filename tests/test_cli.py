"""``fxa-metrics record``: what an engineer sees is exactly what the pipeline receives."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import fxa_metrics as fm

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

UID = "0123456789abcdef0123456789abcdef"
BASE = [
    "--metrics-yaml",
    str(EXAMPLE_METRICS),
    "--pings-yaml",
    str(EXAMPLE_PINGS),
    "--app-id",
    "accounts_backend",
    "--app-version",
    "2.0.1",
    "--channel",
    "production",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # A real process: the console entry point's module, as a user would run it.
    return subprocess.run(
        [sys.executable, "-m", "fxa_metrics", "record", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(out: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in out.splitlines()]
    for line in parsed:
        validate_payload(json.loads(line["Fields"]["payload"]))
    return parsed


def test_record_event_prints_the_exact_line() -> None:
    r = run(
        "login.complete",
        "--extra", "reason=password",
        "--extra", "is_new_device=true",
        "--extra", "attempts=2",
        "--uid", UID,
        "--user-agent", "Firefox/140",
        "--ip-address", "203.0.113.7",
        "--logger", "fxa-auth-api-glean",
        *BASE,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    [line] = lines(r.stdout)
    assert line["Type"] == "glean-server-event"
    assert line["Logger"] == "fxa-auth-api-glean"
    assert line["EnvVersion"] == "2.0"
    fields = line["Fields"]
    assert fields["document_namespace"] == "accounts_backend"
    assert fields["document_type"] == "events"
    assert (fields["user_agent"], fields["ip_address"]) == ("Firefox/140", "203.0.113.7")
    payload = json.loads(fields["payload"])
    assert payload["events"] == [
        {
            "category": "login",
            "name": "complete",
            "extra": {"reason": "password", "is_new_device": "true", "attempts": "2"},
            "timestamp": 0,
        }
    ]
    assert payload["metrics"]["string"]["account.user_id"] == UID
    assert payload["metrics"]["string"]["account.user_id_sha256"] == fm.uid_sha256(UID)
    assert payload["client_info"]["app_display_version"] == "2.0.1"
    assert payload["client_info"]["app_channel"] == "production"


def test_record_metrics_alone_into_a_custom_ping() -> None:
    r = run(
        "--metric", "activity.name=email_changed",
        "--metric", 'activity.settings={"language": "de"}',
        *BASE,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [line] = lines(r.stdout)
    assert line["Fields"]["document_type"] == "accounts-activity"
    metrics = json.loads(line["Fields"]["payload"])["metrics"]
    assert metrics["string"] == {"activity.name": "email_changed"}
    assert metrics["object"] == {"activity.settings": {"language": "de"}}


def test_event_with_metric_values_in_the_same_ping() -> None:
    r = run("account.delete_complete", "--metric", "session.devices_count=3", *BASE)
    assert r.returncode == 0, r.stderr
    [line] = lines(r.stdout)
    assert json.loads(line["Fields"]["payload"])["metrics"]["quantity"] == {
        "session.devices_count": 3
    }


@pytest.mark.parametrize(
    ("args", "reason", "needle"),
    [
        (["login.error", "--extra", "errorCode=103"], "invalid_extra", "login.error.errorCode"),
        (["login.nope"], "undefined", "login.nope"),
        (
            ["login.complete", "--extra", "attempts=three"],
            "invalid_extra",
            "login.complete.attempts",
        ),
        (["--metric", "session.devices_count=-1"], "invalid_value", "session.devices_count"),
    ],
)
def test_bad_record_strict_exits_2_with_a_precise_message(
    args: list[str], reason: str, needle: str
) -> None:
    r = run(*args, "--strict", *BASE)
    assert r.returncode == 2
    assert r.stdout == ""
    assert needle in r.stderr
    assert "dropped:" not in r.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["login.error", "--extra", "errorCode=103"], "invalid_extra"),
        (["login.nope"], "undefined"),
        (["login.complete", "--extra", "attempts=three"], "invalid_extra"),
    ],
)
def test_bad_record_lenient_exits_0_emits_nothing_and_says_dropped(
    args: list[str], reason: str
) -> None:
    r = run(*args, *BASE)
    assert r.returncode == 0
    assert r.stdout == ""
    assert r.stderr.splitlines()[-1] == f"dropped: {reason}"


def test_message_names_the_definition_file_and_line() -> None:
    r = run("login.error", "--extra", "errorCode=103", "--strict", *BASE)
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{EXAMPLE_METRICS}:")
    assert "error_code" in first  # the declared keys are listed, so the typo is obvious


def test_opted_out_user_is_dropped_for_consent() -> None:
    r = run("login.complete", "--uid", UID, "--opted-out", *BASE)
    assert r.returncode == 0
    assert r.stdout == ""
    assert r.stderr.strip() == "dropped: consent"


def test_definitions_error_exits_2(tmp_path: Any) -> None:
    bad = tmp_path / "metrics.yaml"
    bad.write_text("---\n$schema: moz://mozilla.org/schemas/glean/metrics/2-0-0\nx:\n  y: 3\n")
    r = run("x.y", "--metrics-yaml", str(bad), "--app-id", "a", "--app-version", "1",
            "--channel", "c")  # fmt: skip
    assert r.returncode == 2
    assert str(bad) in r.stderr


def test_nothing_to_record_is_a_usage_error() -> None:
    r = run(*BASE)
    assert r.returncode == 2
    assert "nothing to record" in r.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fxa_metrics", *args], capture_output=True, text=True, timeout=60
    )


def test_check_reports_glinter_errors_with_file_and_metric(tmp_path: Any) -> None:
    text = EXAMPLE_METRICS.read_text().replace(
        "      Whether the account has two-step authentication turned on.\n"
        "    lifetime: application",
        "      Whether the account has two-step authentication turned on.\n    lifetime: ping",
    )
    assert text != EXAMPLE_METRICS.read_text()
    bad = tmp_path / "metrics.yaml"
    bad.write_text(text)
    r = _cli("check", "--metrics-yaml", str(bad), "--pings-yaml", str(EXAMPLE_PINGS))
    assert r.returncode == 1
    [problem, summary] = r.stderr.splitlines()
    assert problem.startswith(f"{bad}:")
    assert "account.two_factor_enabled" in problem
    assert "METRIC_ON_EVENTS_LIFETIME" in problem
    assert summary == "1 problem(s)"


def test_docs_renders_markdown_to_stdout_only() -> None:
    r = _cli("docs", "--metrics-yaml", str(EXAMPLE_METRICS), "--pings-yaml", str(EXAMPLE_PINGS),
             "--title", "Example service")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<!-- AUTOGENERATED BY glean_parser")
    assert "collected by Example service" in r.stdout
    assert "login.complete" in r.stdout
    assert "accounts-activity" in r.stdout
    assert "Glean!" not in r.stdout  # glean_parser's chatter goes to stderr
