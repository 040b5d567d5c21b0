"""MozLog with the host's own logging configuration: every field reaches the line, exactly once.

Each case runs in its own interpreter (logging configuration is process-wide),
writing to real stdout/stderr pipes, without PYTHONUNBUFFERED.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, ROOT

_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
_ENV["PYTHONPATH"] = str(ROOT / "src")

_CONFIGURE = f"""
import fxa_metrics as fm
fm.configure(service="fxa-test-api", app_id="accounts_backend_dev", app_version="1",
             channel="dev", metrics_yaml={str(EXAMPLE_METRICS)!r},
             pings_yaml={str(EXAMPLE_PINGS)!r}, MOZLOG)
fm.record(fm.Log("recovery.sent", {{"errno": 0, "path": "/v1/recovery", "nested": {{"a": 1}}}}))
fm.record(fm.Log("request.summary", {{"errno": 0, "t": 12}}, level=logging.ERROR))
"""

CASES = {
    # A plain basicConfig: its formatter would print "INFO:recovery.sent:" with no fields.
    "basicConfig before": ("import logging\nlogging.basicConfig()\n", "", ""),
    "basicConfig after": ("import logging\n", "", "logging.basicConfig(level=logging.INFO)\n"),
    # The documented one line for a host that formats MozLog itself: host mode.
    "dictConfig with dockerflow's JsonLogFormatter": (
        textwrap.dedent(
            """
            import logging, logging.config
            logging.config.dictConfig({
                "version": 1,
                "formatters": {"json": {"()": "dockerflow.logging.JsonLogFormatter",
                                        "logger_name": "fxa-test-api"}},
                "handlers": {"console": {"class": "logging.StreamHandler",
                                         "formatter": "json", "stream": "ext://sys.stdout"}},
                "root": {"handlers": ["console"], "level": "INFO"},
            })
            """
        ),
        "",
        "",
    ),
    "Django LOGGING": (
        textwrap.dedent(
            """
            import logging
            import django
            from django.conf import settings
            settings.configure(LOGGING={
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"console": {"class": "logging.StreamHandler"}},
                "root": {"handlers": ["console"], "level": "INFO"},
            })
            django.setup()
            """
        ),
        "",
        "",
    ),
}


def _run(case: str, mozlog: str = "") -> tuple[list[dict[str, Any]], str]:
    before, _, after = CASES[case]
    script = before + _CONFIGURE.replace(", MOZLOG", mozlog) + after
    proc = subprocess.run(
        [sys.executable, "-c", script], env=_ENV, capture_output=True, timeout=120, check=True
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    return lines, proc.stderr.decode()


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_field_reaches_the_mozlog_line_exactly_once(case: str) -> None:
    lines, err = _run(case)
    types = [line["Type"] for line in lines]
    assert types == ["recovery.sent", "request.summary"], (types, err)
    sent, summary = lines
    assert sent["Fields"]["errno"] == 0
    assert sent["Fields"]["path"] == "/v1/recovery"
    assert sent["Fields"]["nested"] == {"a": 1}
    assert sent["Fields"]["app_channel"] == "dev"
    assert sent["Severity"] == 6
    assert summary["Fields"]["t"] == 12
    assert summary["Severity"] == 3  # ERROR
    assert sent["Logger"] == "fxa-test-api"
    # Nothing of ours went through a plain formatter to stderr as well.
    assert "recovery.sent" not in err


def test_host_mode_hands_records_to_the_hosts_handlers() -> None:
    # The one line a host that wants its own handlers to see our records adds.
    lines, err = _run("basicConfig before", ', mozlog_handler="host"')
    assert lines == []  # basicConfig's handler writes to stderr, in its own format
    # ...at the host's level (WARNING: the INFO line is filtered), without the
    # fields: why "auto" picks host mode only for MozLog-formatting handlers.
    assert err.splitlines() == ["ERROR:request.summary:"]


def test_own_mode_honours_a_level_set_on_the_type_logger_only() -> None:
    import io
    import logging

    import fxa_metrics as fm

    out = io.StringIO()
    fm.configure(
        service="svc",
        app_id="accounts_backend_dev",
        app_version="1",
        channel="dev",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        mozlog_handler="own",
        mozlog_stream=out,
    )
    quiet, untouched = logging.getLogger("t.quiet"), logging.getLogger("t.untouched")
    quiet.setLevel(logging.ERROR)
    try:
        fm.record(fm.Log("t.quiet", {"n": 1}))  # below the level the host set: not written
        fm.record(fm.Log("t.quiet", {"n": 2}, level=logging.ERROR))
        fm.record(fm.Log("t.untouched", {"n": 3}))  # exists, NOTSET: the root's level is not ours
    finally:
        quiet.setLevel(logging.NOTSET)
    assert untouched.level == logging.NOTSET
    assert [json.loads(x)["Fields"]["n"] for x in out.getvalue().splitlines()] == [2, 3]
