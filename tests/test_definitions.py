"""Definition checks (DESIGN 4): every record-time check in strict and production mode,
and the load-time findings, through the library and through ``fxa-metrics check``.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import cli

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

COMMON = """\
    notification_emails: [fxa-staff@mozilla.com]
    bugs: [https://mozilla-hub.atlassian.net/browse/FXA-0000]
    data_reviews: [https://bugzilla.mozilla.org/show_bug.cgi?id=1830504]
    data_sensitivity: [interaction]
"""


def metric(name: str, body: str, *, expires: str = "never") -> str:
    """One metric entry (two-space indented under its category) with the required fields."""
    return (
        f"  {name}:\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + f"    expires: {expires}\n"
        + COMMON
    )


HEADER = "---\n$schema: moz://mozilla.org/schemas/glean/metrics/2-0-0\n\n"
PINGS = """\
---
$schema: moz://mozilla.org/schemas/glean/pings/2-0-0

side-ping:
  description: A custom ping.
  include_client_id: false
  bugs: [https://mozilla-hub.atlassian.net/browse/FXA-0000]
  data_reviews: [https://bugzilla.mozilla.org/show_bug.cgi?id=1830504]
  notification_emails: [fxa-staff@mozilla.com]
"""

CHECKS = (
    HEADER
    + "checks:\n"
    + metric(
        "fresh",
        """\
        type: event
        description: A live event with one extra of each type.
        send_in_pings: [events]
        extra_keys:
          error_code: {type: string, description: The error.}
          known: {type: boolean, description: A flag.}
          attempts: {type: quantity, description: A count.}
        """,
    )
    + metric(
        "old",
        "type: event\ndescription: Expired by date.\nsend_in_pings: [events]\n",
        expires="2020-01-01",
    )
    + metric(
        "by_version",
        "type: event\ndescription: Expires with major version 120.\nsend_in_pings: [events]\n",
        expires="120",
    )
    + metric(
        "turned_off",
        "type: event\ndescription: Disabled.\ndisabled: true\nsend_in_pings: [events]\n",
    )
    + metric(
        "both",
        "type: event\ndescription: In two pings.\nsend_in_pings: [events, side-ping]\n",
    )
    + metric(
        "label",
        "type: string\ndescription: A string.\nlifetime: application\nsend_in_pings: [events]\n",
    )
    + metric(
        "count",
        "type: quantity\ndescription: A quantity.\nunit: things\nsend_in_pings: [side-ping]\n",
    )
)


@pytest.fixture
def defs(tmp_path: Path) -> tuple[Path, Path]:
    m, p = tmp_path / "metrics.yaml", tmp_path / "pings.yaml"
    m.write_text(CHECKS)
    p.write_text(PINGS)
    return m, p


def configure(defs: tuple[Path, Path], *, strict: bool, app_version: str = "99.0") -> io.StringIO:
    out = io.StringIO()
    fm.configure(
        service="fxa-test-api",
        app_id="accounts_backend_dev",
        app_version=app_version,
        channel="development",
        metrics_yaml=defs[0],
        pings_yaml=defs[1],
        glean_stream=out,
        mozlog_handler="never",
        strict=strict,
    )
    return out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    for line in parsed:
        validate_payload(json.loads(line["Fields"]["payload"]))
    return parsed


def payload(line: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(line["Fields"]["payload"])
    return result


# ------------------------------------------------------------------ record time

# (what to record, exception, metric, field, drop reason)
BAD: list[tuple[str, Callable[[], None], type[fm.RecordError], str, str | None, str]] = [
    (
        "unknown-metric",
        lambda: fm.record("checks.nope"),
        fm.UndefinedMetricError,
        "checks.nope",
        None,
        "undefined",
    ),
    (
        # FxA's auth server once sent errorCode where the definition says error_code:
        # the extra went out as "undefined". Here it is caught, naming the key.
        "unknown-extra-errorCode",
        lambda: fm.record("checks.fresh", extra={"errorCode": "103"}),
        fm.InvalidExtraError,
        "checks.fresh",
        "errorCode",
        "invalid_extra",
    ),
    (
        "extra-on-event-without-extras",
        lambda: fm.record("checks.both", ping="events", extra={"x": "1"}),
        fm.InvalidExtraError,
        "checks.both",
        "x",
        "invalid_extra",
    ),
    (
        "string-extra-given-int",
        lambda: fm.record("checks.fresh", extra={"error_code": 103}),
        fm.InvalidExtraError,
        "checks.fresh",
        "error_code",
        "invalid_extra",
    ),
    (
        "boolean-extra-given-str",
        lambda: fm.record("checks.fresh", extra={"known": "true"}),
        fm.InvalidExtraError,
        "checks.fresh",
        "known",
        "invalid_extra",
    ),
    (
        "quantity-extra-given-bool",
        lambda: fm.record("checks.fresh", extra={"attempts": True}),
        fm.InvalidExtraError,
        "checks.fresh",
        "attempts",
        "invalid_extra",
    ),
    (
        "string-metric-given-int",
        lambda: fm.record("checks.fresh", metrics={"checks.label": 5}),
        fm.InvalidValueError,
        "checks.label",
        "value",
        "invalid_value",
    ),
    (
        "quantity-metric-negative",
        lambda: fm.record(fm.Metrics({"checks.count": -1})),
        fm.InvalidValueError,
        "checks.count",
        "value",
        "invalid_value",
    ),
    (
        "event-recorded-as-metric",
        lambda: fm.record(fm.Metrics({"checks.fresh": "x"})),
        fm.InvalidValueError,
        "checks.fresh",
        None,
        "invalid_value",
    ),
    (
        "metric-recorded-as-event",
        lambda: fm.record("checks.label"),
        fm.InvalidValueError,
        "checks.label",
        None,
        "invalid_value",
    ),
    (
        "expired-by-date",
        lambda: fm.record("checks.old"),
        fm.ExpiredMetricError,
        "checks.old",
        None,
        "expired",
    ),
    (
        "disabled",
        lambda: fm.record("checks.turned_off"),
        fm.DisabledMetricError,
        "checks.turned_off",
        None,
        "disabled",
    ),
    (
        "undeclared-ping",
        lambda: fm.record("checks.fresh", ping="nowhere"),
        fm.UndeclaredPingError,
        "checks.fresh",
        "ping",
        "undeclared_ping",
    ),
    (
        "ambiguous-ping",
        lambda: fm.record("checks.both"),
        fm.UndeclaredPingError,
        "checks.both",
        "ping",
        "undeclared_ping",
    ),
    (
        "metric-not-in-chosen-ping",
        lambda: fm.record("checks.both", ping="side-ping", metrics={"checks.label": "x"}),
        fm.UndeclaredPingError,
        "checks.label",
        "ping",
        "undeclared_ping",
    ),
]
IDS = [case[0] for case in BAD]


@pytest.mark.parametrize(("case", "call", "exc", "metric_id", "field", "reason"), BAD, ids=IDS)
def test_strict_mode_raises_a_precise_error(
    defs: tuple[Path, Path],
    case: str,
    call: Callable[[], None],
    exc: type[fm.RecordError],
    metric_id: str,
    field: str | None,
    reason: str,
) -> None:
    out = configure(defs, strict=True)
    with pytest.raises(exc) as info:
        call()
    err = info.value
    assert type(err) is exc
    assert isinstance(err, fm.FxaMetricsError)
    assert (err.metric, err.field) == (metric_id, field)
    # The message names the metric (and field), so a log line alone says what broke.
    assert str(err).startswith(f"{metric_id}.{field}:" if field else f"{metric_id}:")
    assert err.reason == reason
    assert out.getvalue() == ""


@pytest.mark.parametrize(("case", "call", "exc", "metric_id", "field", "reason"), BAD, ids=IDS)
def test_production_mode_drops_and_counts_per_reason(
    defs: tuple[Path, Path],
    case: str,
    call: Callable[[], None],
    exc: type[fm.RecordError],
    metric_id: str,
    field: str | None,
    reason: str,
) -> None:
    out = configure(defs, strict=False)
    call()  # never raises
    call()
    snap = fm.stats()
    assert snap.drops == {reason: 2}
    assert snap.drops_by_metric == {(reason, metric_id): 2}
    assert out.getvalue() == ""
    # The good record still goes out on the same runtime.
    fm.record("checks.fresh", extra={"error_code": "ok"})
    assert len(lines(out)) == 1


def test_good_record_carries_every_extra_type(defs: tuple[Path, Path]) -> None:
    out = configure(defs, strict=True)
    fm.record("checks.fresh", extra={"error_code": "103", "known": True, "attempts": 2})
    fm.record("checks.both", ping="side-ping", metrics={"checks.count": 4})
    first, second = lines(out)
    assert payload(first)["events"][0]["extra"] == {
        "error_code": "103",
        "known": "true",
        "attempts": "2",
    }
    assert second["Fields"]["document_type"] == "side-ping"
    assert payload(second)["metrics"]["quantity"] == {"checks.count": 4}


# ------------------------------------------------------------------ overflow

LONG_STRING = "s" * 256  # Glean's string limit is 255 bytes
LONG_EXTRA = "é" * 251  # 502 bytes: over the 500-byte extra limit, in 2-byte characters


@pytest.mark.parametrize(
    ("record", "metric_id", "field"),
    [
        (
            lambda: fm.record("checks.fresh", extra={"error_code": LONG_EXTRA}),
            "checks.fresh",
            "error_code",
        ),
        (
            lambda: fm.record("checks.fresh", metrics={"checks.label": LONG_STRING}),
            "checks.label",
            "value",
        ),
    ],
    ids=["extra-500-bytes", "string-255-bytes"],
)
def test_overflow_raises_in_strict_mode(
    defs: tuple[Path, Path], record: Callable[[], None], metric_id: str, field: str
) -> None:
    out = configure(defs, strict=True)
    with pytest.raises(fm.ValueTooLongError) as info:
        record()
    assert (info.value.metric, info.value.field) == (metric_id, field)
    assert isinstance(info.value, fm.FxaMetricsError)
    assert out.getvalue() == ""


def test_overflow_is_truncated_and_counted_in_production(defs: tuple[Path, Path]) -> None:
    out = configure(defs, strict=False)
    fm.record("checks.fresh", extra={"error_code": LONG_EXTRA})
    fm.record("checks.fresh", metrics={"checks.label": LONG_STRING})
    first, second = lines(out)
    extra = payload(first)["events"][0]["extra"]["error_code"]
    # Cut on a character boundary: 250 two-byte characters, not a broken 501st byte.
    assert extra == "é" * 250
    assert len(extra.encode()) == 500
    assert payload(second)["metrics"]["string"]["checks.label"] == "s" * 255
    snap = fm.stats()
    assert snap.errors == {"invalid_overflow": 2}
    assert snap.drops == {}  # truncated records are still sent


def test_values_at_the_limit_are_not_truncated(defs: tuple[Path, Path]) -> None:
    out = configure(defs, strict=True)
    fm.record(
        "checks.fresh",
        extra={"error_code": "é" * 250},
        metrics={"checks.label": "ü" * 127 + "s"},  # 255 bytes
    )
    (line,) = lines(out)
    assert payload(line)["events"][0]["extra"]["error_code"] == "é" * 250
    assert payload(line)["metrics"]["string"]["checks.label"] == "ü" * 127 + "s"


def test_overlong_common_metric_from_context_is_truncated(defs: tuple[Path, Path]) -> None:
    # checks.label is not a common metric; the example's session.flow_id is.
    out = io.StringIO()
    fm.configure(
        service="fxa-test-api",
        app_id="accounts_backend_dev",
        app_version="1.0",
        channel="development",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=out,
        mozlog_handler="never",
    )
    with fm.bind(flow_id="f" * 300):
        fm.record("login.complete")
    (line,) = lines(out)
    assert payload(line)["metrics"]["string"]["session.flow_id"] == "f" * 255
    assert fm.stats().errors == {"invalid_overflow": 1}


# ------------------------------------------------------------------ expiry


@pytest.mark.parametrize(
    ("app_version", "sent"),
    [("119.0.1", True), ("120.0", False), ("121.3", False), ("main", True)],
)
def test_version_expiry_follows_the_configured_major_version(
    defs: tuple[Path, Path], app_version: str, sent: bool
) -> None:
    out = configure(defs, strict=False, app_version=app_version)
    fm.record("checks.by_version")
    assert len(lines(out)) == int(sent)
    assert fm.stats().drops == ({} if sent else {"expired": 1})


def test_date_expiry_loads_with_a_numeric_app_version(defs: tuple[Path, Path]) -> None:
    # Regression: every service passes app_version; glean_parser would then
    # read *every* expires as a version and crash on a date with ValueError.
    for version in ("1.301.0", "200", "main"):
        d = fm.load_definitions(defs[0], defs[1], app_version=version)
        assert d.metrics["checks.old"].expired
        assert not d.metrics["checks.fresh"].expired


def test_expired_metric_is_not_emitted_even_with_valid_values(defs: tuple[Path, Path]) -> None:
    out = configure(defs, strict=False)
    fm.record("checks.old")
    fm.record("checks.turned_off")
    assert out.getvalue() == ""
    assert fm.stats().drops == {"expired": 1, "disabled": 1}


# ------------------------------------------------------------------ load time


def write(tmp_path: Path, body: str, name: str = "metrics.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_glean_parser_errors_name_file_line_and_metric(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "checks:\n"
        + metric("fine", "type: event\ndescription: ok\nsend_in_pings: [events]\n")
        + metric(
            "bad_extra",
            "type: event\ndescription: x\nsend_in_pings: [events]\n"
            "extra_keys:\n  k: {type: strin, description: typo}\n",
        )
        + metric("typo", "type: event\ndescription: x\nsend_in_pings: [events]\ncolour: red\n")
        + metric("BadName", "type: event\ndescription: x\nsend_in_pings: [events]\n"),
    )
    with pytest.raises(fm.DefinitionsError) as info:
        fm.load_definitions(path)
    problems = {p.metric: p for p in info.value.problems}
    assert set(problems) == {"checks.bad_extra", "checks.typo", "checks.BadName"}
    for name, p in problems.items():
        assert p.file == str(path.resolve())
        assert p.line == line_of(path, f"  {name.split('.')[1]}:"), name
        assert "\n" not in str(p)
    assert "strin" in problems["checks.bad_extra"].message
    assert "colour" in problems["checks.typo"].message
    assert "BadName" in problems["checks.BadName"].message
    # The schema's own documentation is not part of the message.
    assert all("Documentation for this node" not in p.message for p in problems.values())


# counter, timing_distribution, labeled_counter... go by the glean-sdk route
# (tests/test_glean_sdk_definitions.py); these types have no route at all.
@pytest.mark.parametrize("kind", ["uuid", "url", "labeled_string"])
def test_type_no_route_can_carry_fails_at_load(tmp_path: Path, kind: str) -> None:
    extra = ""
    path = write(
        tmp_path,
        "svc:\n"
        + metric("thing", f"type: {kind}\ndescription: x\nsend_in_pings: [events]\n{extra}"),
    )
    with pytest.raises(fm.DefinitionsError) as info:
        fm.load_definitions(path)
    (problem,) = info.value.problems
    assert problem.metric == "svc.thing"
    assert problem.line == line_of(path, "  thing:")
    assert f"type '{kind}' cannot be sent by the Glean server route" in problem.message


def test_send_in_undeclared_ping_fails_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path, "svc:\n" + metric("thing", "type: event\ndescription: x\nsend_in_pings: [gone]\n")
    )
    with pytest.raises(fm.DefinitionsError) as info:
        fm.load_definitions(path)
    (problem,) = info.value.problems
    assert (problem.metric, problem.line) == ("svc.thing", line_of(path, "  thing:"))
    assert "'gone'" in problem.message


def test_unparseable_expires_fails_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "svc:\n"
        + metric("thing", "type: event\ndescription: x\nsend_in_pings: [events]\n", expires="soon"),
    )
    with pytest.raises(fm.DefinitionsError) as info:
        fm.load_definitions(path)
    (problem,) = info.value.problems
    assert problem.metric == "svc.thing"
    assert "soon" in problem.message


def test_configure_surfaces_definitions_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "svc:\n" + metric("thing", "type: uuid\ndescription: x\n"))
    with pytest.raises(fm.DefinitionsError, match=r"svc\.thing: type 'uuid'"):
        fm.configure(service="s", app_id="a", app_version="1", channel="c", metrics_yaml=path)
    assert not fm.is_configured()


# ------------------------------------------------------------------ fxa-metrics check


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = cli.main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def test_check_passes_clean_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    code, err, out = run_check(
        capsys, "--metrics-yaml", str(EXAMPLE_METRICS), "--pings-yaml", str(EXAMPLE_PINGS)
    )
    assert (code, err) == (0, [])
    assert out.startswith("ok")


def test_check_reports_expired_disabled_and_unversioned_one_line_each(
    defs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    m, p = defs
    code, err, _ = run_check(capsys, "--metrics-yaml", str(m), "--pings-yaml", str(p))
    assert code == 1
    *problem_lines, summary = err
    assert summary == f"{len(problem_lines)} problem(s)"
    by_metric = {line.split(": ")[1]: line for line in problem_lines}
    assert len(by_metric) == len(problem_lines) == 3
    assert by_metric["checks.old"].endswith("checks.old: expired (2020-01-01)")
    assert by_metric["checks.turned_off"].endswith("checks.turned_off: disabled: true")
    assert "no major version" in by_metric["checks.by_version"]
    for metric_id, line in by_metric.items():
        name = metric_id.split(".")[1]
        assert line.startswith(f"{m.resolve()}:{line_of(m, f'  {name}:')}: "), line


def test_check_with_app_version_reports_version_expiry(
    defs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    m, p = defs
    _, err, _ = run_check(
        capsys, "--metrics-yaml", str(m), "--pings-yaml", str(p), "--app-version", "125.0"
    )
    assert any(line.endswith("checks.by_version: expired (120)") for line in err)


def test_check_reports_glean_parser_errors_and_unsupported_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "svc:\n"
        + metric("hits", "type: counter\ndescription: x\nsend_in_pings: [events]\n")
        + metric("typo", "type: event\ndescription: x\nsend_in_pings: [events]\ncolour: red\n"),
    )
    code, err, _ = run_check(capsys, "--metrics-yaml", str(path))
    assert code == 1
    # glean_parser stops at its own errors before our type rule runs: one line for it.
    assert err[-1] == f"{len(err) - 1} problem(s)"
    assert any(
        line.startswith(f"{path}:{line_of(path, '  typo:')}: svc.typo: ") and "colour" in line
        for line in err
    ), err
    fixed = write(
        tmp_path,
        "svc:\n" + metric("hits", "type: uuid\ndescription: x\nsend_in_pings: [events]\n"),
    )
    code, err, _ = run_check(capsys, "--metrics-yaml", str(fixed))
    assert code == 1
    assert err[0].startswith(f"{fixed}:{line_of(fixed, '  hits:')}: svc.hits: type 'uuid'")
    # glean_parser's linter also objects: a ping-lifetime metric on the events ping.
    assert err[1].startswith(f"{fixed}:{line_of(fixed, '  hits:')}: svc.hits: glinter ")
    assert "METRIC_ON_EVENTS_LIFETIME" in err[1]
    assert err[2:] == ["2 problem(s)"]


def test_check_reports_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err, _ = run_check(capsys, "--metrics-yaml", str(tmp_path / "none.yaml"))
    assert code == 1
    assert err[0] == f"{tmp_path / 'none.yaml'}: -: file not found"
