"""``fxa-metrics check``: every problem in one run, each with its file, line and metric.

Each glean_parser error form we can trigger is written out below (the
definitions are ours, built for these tests), and every one must come back
naming the file, a line and the metric, category or ping at fault.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fxa_metrics import _cli_check, cli

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

METRICS = "---\n$schema: moz://mozilla.org/schemas/glean/metrics/2-0-0\n"
PINGS = "---\n$schema: moz://mozilla.org/schemas/glean/pings/2-0-0\n"
BODY = (
    "    description: d\n    bugs: [https://x.test/1]\n    data_reviews: [https://x.test/2]\n"
    "    notification_emails: [a@example.com]\n    expires: never\n    send_in_pings: [events]\n"
)
PING = (
    "    description: d\n    include_client_id: false\n    bugs: [https://x.test/1]\n"
    "    data_reviews: [https://x.test/2]\n    notification_emails: [a@example.com]\n"
)

# name -> (files {name: text}, expected [(file, line, metric)] in any order)
FORMS: dict[str, tuple[dict[str, str], list[tuple[str, int, str]]]] = {
    "yaml_syntax": ({"m.yaml": METRICS + "cat:\n  m: [unclosed\n"}, [("m.yaml", 4, "cat.m")]),
    "empty_file": ({"m.yaml": ""}, [("m.yaml", 1, "-")]),
    "unknown_schema": (
        {"m.yaml": "---\n$schema: moz://mozilla.org/schemas/glean/nope/9-0-0\n"},
        [("m.yaml", 2, "$schema")],
    ),
    "unknown_type": (
        {"m.yaml": METRICS + "cat:\n  m:\n    type: nonsense\n" + BODY},
        [("m.yaml", 4, "cat.m")],
    ),
    "bad_metric_name": (
        {"m.yaml": METRICS + "cat:\n  BadName:\n    type: string\n" + BODY},
        [("m.yaml", 4, "cat.BadName")],
    ),
    "bad_extra_type": (
        {
            "m.yaml": METRICS
            + "cat:\n  m:\n    type: event\n    extra_keys:\n      k:\n"
            + "        description: d\n        type: float\n"
            + BODY
        },
        [("m.yaml", 4, "cat.m")],
    ),
    "reserved_category": (
        {"m.yaml": METRICS + "glean.foo:\n  m:\n    type: string\n" + BODY},
        [("m.yaml", 3, "glean.foo")],
    ),
    "semi_reserved_category": (
        {"m.yaml": METRICS + "glean.attribution:\n  m:\n    type: string\n" + BODY},
        [("m.yaml", 4, "glean.attribution.m")],
    ),
    "all_pings": (
        {
            "m.yaml": METRICS
            + "cat:\n  m:\n    type: string\n"
            + BODY.replace("[events]", "[all-pings]")
        },
        [("m.yaml", 4, "cat.m")],
    ),
    "bad_expiry_date": (
        {
            "m.yaml": METRICS
            + "cat:\n  m:\n    type: string\n"
            + BODY.replace("never", "2020-13-45")
        },
        [("m.yaml", 4, "cat.m")],
    ),
    "duplicate_metric": (
        {
            "a.yaml": METRICS + "cat:\n  m:\n    type: string\n" + BODY,
            "b.yaml": METRICS + "cat:\n  m:\n    type: string\n" + BODY,
        },
        [("b.yaml", 4, "cat.m")],
    ),
    "reserved_ping": ({"p.yaml": PINGS + "metrics:\n" + PING}, [("p.yaml", 3, "metrics")]),
    "ping_schedules_itself": (
        {
            "p.yaml": PINGS
            + "my-report:\n"
            + PING
            + "    metadata:\n      ping_schedule: [my-report]\n"
        },
        [("p.yaml", 3, "my-report")],
    ),
    "ping_schema": (
        {"p.yaml": PINGS + "my-report:\n" + PING + "    reasons: 3\n"},
        [("p.yaml", 3, "my-report")],
    ),
    "duplicate_ping_key": (
        {"p.yaml": PINGS + "my-report:\n" + PING + "my-report:\n" + PING},
        [("p.yaml", 9, "my-report")],
    ),
    "duplicate_ping": (
        {"p.yaml": PINGS + "my-report:\n" + PING, "q.yaml": PINGS + "my-report:\n" + PING},
        [("q.yaml", 3, "my-report")],
    ),
}


def _write(tmp_path: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    metrics, pings = [], []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        (pings if text.startswith(PINGS) else metrics).append(str(tmp_path / name))
    return metrics, pings


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_glean_parser_error_keeps_file_line_and_metric(tmp_path: Path, form: str) -> None:
    files, expected = FORMS[form]
    metrics, pings = _write(tmp_path, files)
    problems = _cli_check.check(metrics, pings, None)
    located = {(Path(p.file).name, p.line, p.metric) for p in problems}
    for want in expected:
        assert want in located, [str(p) for p in problems]
    for p in problems:
        assert Path(p.file).is_file(), str(p)
        assert p.line is not None, str(p)
        assert p.metric != "-" or form == "empty_file", str(p)


def test_check_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    # An unsupported type used to stop the rules: the expired and disabled
    # metrics after it went unreported.
    text = (
        METRICS
        + "cat:\n  a_uuid:\n    type: uuid\n"
        + BODY
        + "  old:\n    type: string\n"
        + BODY.replace("never", "2020-01-01")
        + "  turned_off:\n    type: string\n    disabled: true\n"
        + BODY
    )
    (tmp_path / "m.yaml").write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "fxa_metrics", "check", "--metrics-yaml", str(tmp_path / "m.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    out = r.stderr
    assert "cat.a_uuid: type 'uuid'" in out
    assert "cat.old: expired (2020-01-01)" in out
    assert "cat.turned_off: disabled: true" in out
    # ... and glean_parser's linter in the same run (ping lifetime on the events ping).
    assert out.count("glinter METRIC_ON_EVENTS_LIFETIME") == 3
    assert out.splitlines()[-1] == "6 problem(s)"


def test_glean_parser_errors_and_our_rules_in_the_same_run(tmp_path: Path) -> None:
    text = (
        METRICS
        + "cat:\n  broken:\n    type: nonsense\n"
        + BODY
        + "  old:\n    type: string\n"
        + BODY.replace("never", "2020-01-01")
    )
    (tmp_path / "m.yaml").write_text(text)
    problems = [str(p) for p in _cli_check.check([str(tmp_path / "m.yaml")], [], None)]
    assert any("cat.broken" in p and "nonsense" in p for p in problems)
    assert any("cat.old: expired" in p for p in problems)


def test_glinter_nits_without_a_location_are_located(tmp_path: Path) -> None:
    # glinter reports a ping by name only: check finds where it is defined.
    pings = tmp_path / "p.yaml"
    pings.write_text(EXAMPLE_PINGS.read_text() + "my-ping:\n" + PING)
    problems = _cli_check.check([str(EXAMPLE_METRICS)], [str(pings)], None)
    [nit] = [p for p in problems if "REDUNDANT_PING" in p.message]
    assert (nit.file, nit.metric) == (str(pings), "my-ping")
    assert pings.read_text().splitlines()[nit.line - 1] == "my-ping:"


def test_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check", "--metrics-yaml", str(tmp_path / "nope.yaml")])
    assert code == 1
    assert "nope.yaml: -: file not found" in capsys.readouterr().err


def test_clean_definitions_pass(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check", "--metrics-yaml", str(EXAMPLE_METRICS), "--pings-yaml", str(EXAMPLE_PINGS)]
    assert cli.main(args) == 0
    assert "ok" in capsys.readouterr().out
