"""``fxa-metrics lint``: call sites checked against the definitions, never imported."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics import cli
from fxa_metrics._lint import LintResult, lint_paths, lint_source
from fxa_metrics._lint_rules import did_you_mean

from .conftest import DATA, EXAMPLE_METRICS, EXAMPLE_PINGS, FXA_METRICS, FXA_PINGS

SAMPLE = DATA / "lint_sample" / "service.py"
FIXES = (("errorCode", "error_code"), ("compelte", "complete"), ('"yes"', "True"))
# (line, column, code) of the three mistakes in the sample, as an editor counts them.
MISTAKES = [(20, 74, "unknown-extra"), (25, 12, "unknown-metric"), (30, 77, "wrong-type")]


def fixed_sample() -> str:
    text = SAMPLE.read_text()
    for wrong, right in FIXES:
        assert text.count(wrong) == 1
        text = text.replace(wrong, right)
    return text


@pytest.fixture(scope="module")
def fxa_defs() -> fm.Definitions:
    return fm.load_definitions(FXA_METRICS, FXA_PINGS)


@pytest.fixture(scope="module")
def defs() -> fm.Definitions:
    return fm.load_definitions(EXAMPLE_METRICS, EXAMPLE_PINGS)


def _lint(defs: fm.Definitions, source: str, modules: tuple[str, ...] = ()) -> LintResult:
    return lint_source(textwrap.dedent(source), "s.py", defs, modules)


def _codes(result: LintResult) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.code) for p in result.problems]


# ------------------------------------------------------------------ the sample


def test_sample_reports_exactly_the_three_mistakes(fxa_defs: fm.Definitions) -> None:
    result = lint_paths([SAMPLE], fxa_defs)
    assert _codes(result) == MISTAKES
    messages = [p.message for p in result.problems]
    assert messages[0] == (
        "'inactive_account_deletion.first_email_task_rejected' has no extra 'errorCode'; "
        "did you mean 'error_code'? (declared: error_code)"
    )
    assert messages[1] == "unknown metric 'login.compelte'; did you mean 'login.complete'?"
    assert (
        messages[2]
        == "extra 'exclude_dau' of 'access_token.created' is a boolean; got a str literal"
    )
    # The call through a variable is counted, not guessed; the ignore comment silenced one.
    assert [(u.line, u.message) for u in result.unresolved] == [
        (35, "the metric name is not a string literal")
    ]
    assert result.ignored == 1


def test_sample_is_clean_once_fixed(fxa_defs: fm.Definitions) -> None:
    result = lint_source(fixed_sample(), "service.py", fxa_defs)
    assert result.problems == ()
    assert len(result.unresolved) == 1


def test_cli_output_and_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fxa_defs: fm.Definitions
) -> None:
    defs_args = ["--metrics-yaml", str(FXA_METRICS), "--pings-yaml", str(FXA_PINGS)]
    assert cli.main(["lint", str(SAMPLE), *defs_args]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{SAMPLE}:{line}:{col}" for line, col, _ in MISTAKES
    ]
    assert all(
        line.endswith(f"[{code}]") for line, (_, _, code) in zip(lines, MISTAKES, strict=True)
    )
    assert "3 problems in 1 file (1 ignored; 1 call not resolved statically" in err

    assert cli.main(["lint", str(SAMPLE), "--show-unresolved", *defs_args]) == 1
    out = capsys.readouterr().out
    assert (
        f"{SAMPLE}:35:12: not resolved statically: the metric name is not a string literal" in out
    )

    (tmp_path / "service.py").write_text(fixed_sample())
    assert cli.main(["lint", str(tmp_path), *defs_args]) == 0
    assert "0 problems in 1 file" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defs_args = ["--metrics-yaml", str(EXAMPLE_METRICS), "--pings-yaml", str(EXAMPLE_PINGS)]
    assert cli.main(["lint", str(tmp_path / "nope"), *defs_args]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert cli.main(["lint", str(tmp_path), "--metrics-yaml", str(tmp_path / "m.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


# ------------------------------------------------------------------ each rule


def test_events_rules(defs: fm.Definitions) -> None:
    result = _lint(
        defs,
        """\
        import fxa_metrics as fm
        fm.record("login.complete", extra={"reason": "x", "is_new_device": 1, "attempts": True})
        fm.record("login.error", {"error_code": "12", "reason": None, "Reason": "x"})
        fm.record("nothing.like_it")
        fm.record("account.user_id")
        fm.record("login.complete", ping="accounts-activity")
        fm.record("login.complete", extra=None, metrics={"session.flow_id": 3, "x.y": "z"})
        fm.record("login.complete", metrics={"login.error": "x", "account.two_factor_enabled": 1})
        fm.record("login.complete", extra={"attempts": f"{3}"}, metrics={"session.flow_id": None})
        """,
    )
    assert [(p.line, p.code, p.message) for p in result.problems] == [
        (
            2,
            "wrong-type",
            "extra 'is_new_device' of 'login.complete' is a boolean; got a int literal",
        ),
        (2, "wrong-type", "extra 'attempts' of 'login.complete' is a quantity; got a bool literal"),
        (3, "wrong-type", "extra 'error_code' of 'login.error' is a quantity; got a str literal"),
        (
            3,
            "unknown-extra",
            "'login.error' has no extra 'Reason'; did you mean 'reason'? "
            "(declared: error_code, reason)",
        ),
        (4, "unknown-metric", "unknown metric 'nothing.like_it'"),
        (5, "not-an-event", "'account.user_id' is a string metric, not an event: use Metrics"),
        (
            6,
            "undeclared-ping",
            "'login.complete' is not sent in ping 'accounts-activity' (send_in_pings: events)",
        ),
        (7, "wrong-type", "'session.flow_id' is a string; got a int literal"),
        (7, "unknown-metric", "unknown metric 'x.y'"),
        (8, "not-an-event", "'login.error' is an event: record it with Event"),
        (8, "wrong-type", "'account.two_factor_enabled' is a boolean; got a int literal"),
        (9, "wrong-type", "extra 'attempts' of 'login.complete' is a quantity; got a str literal"),
    ]


def _yaml_with(tmp_path: Path, old: str, new: str) -> fm.Definitions:
    text = EXAMPLE_METRICS.read_text()
    assert old in text
    path = tmp_path / "metrics.yaml"
    path.write_text(text.replace(old, new, 1))
    return fm.load_definitions(path, EXAMPLE_PINGS)


def test_expired_disabled_and_several_pings(tmp_path: Path) -> None:
    defs = _yaml_with(
        tmp_path,
        "  error:\n    type: event\n",
        "  error:\n    type: event\n    disabled: true\n",
    )
    result = _lint(defs, 'import fxa_metrics\nfxa_metrics.record("login.error")\n')
    assert _codes(result) == [(2, 20, "disabled")]
    defs = _yaml_with(
        tmp_path,
        "      A login failed.\n    send_in_pings:\n      - events\n",
        ("      A login failed.\n    send_in_pings:\n      - events\n      - accounts-activity\n"),
    )
    source = """\
        from fxa_metrics import record
        record("login.error")
        record("login.error", ping="events")
        record("login.error", ping=None)
        """
    assert [c[2] for c in _codes(_lint(defs, source))] == ["undeclared-ping", "undeclared-ping"]
    text = EXAMPLE_METRICS.read_text().replace("expires: never", "expires: 2000-01-01")
    (tmp_path / "old.yaml").write_text(text)
    old = fm.load_definitions(tmp_path / "old.yaml", EXAMPLE_PINGS)
    result = _lint(old, 'import fxa_metrics as fm\nfm.record("login.complete")\n')
    assert [(p.code, p.message) for p in result.problems] == [
        ("expired", "'login.complete' expired (2000-01-01)")
    ]


def test_record_objects_and_how_calls_are_recognised(defs: fm.Definitions) -> None:
    source = """\
        import fxa_metrics
        import fxa_metrics as fm
        from fxa_metrics import Event as E, Metrics, record as rec
        import glean, somewhere.fxa_metrics
        glean.record("not.ours")
        somewhere.fxa_metrics.record("not.ours")
        fxa_metrics.record("a.b")
        rec(E("login.complete", {"reazon": "x"}, {}, "events"))
        fm.record(Metrics({"session.flow_id": 1}, ping="nope"))
        fm.record(Metrics({"session.flow_id": "f"}, "events"))
        fm.Event(name="login.complete", extra={"reason": "x"}, ping="accounts-activity")
        """
    result = _lint(defs, source)
    assert [(p.line, p.code) for p in result.problems] == [
        (7, "unknown-metric"),
        (8, "unknown-extra"),
        (9, "wrong-type"),
        (9, "undeclared-ping"),
        (11, "undeclared-ping"),
    ]
    assert "did you mean 'reason'?" in result.problems[1].message


def test_what_cannot_be_resolved_is_counted(defs: fm.Definitions) -> None:
    source = """\
        import fxa_metrics as fm
        name, extra, kw, ping = "login.complete", {}, {}, "events"
        fm.record(name)
        fm.record("login.complete", extra=extra)
        fm.record("login.complete", extra={**kw, "reason": 1})
        fm.record("login.complete", extra={name: "x"})
        fm.record("login.complete", extra=dict(kw, reason="a"))
        fm.record("login.complete", extra=dict(reason=2, **kw))
        fm.record("login.complete", ping=ping)
        fm.Metrics({"session.flow_id": "x"}, ping=ping)
        fm.Metrics(values=extra)
        fm.Metrics()
        fm.Timing(name, 1.0)
        fm.record(*kw)
        """
    result = _lint(defs, source)
    assert [(p.line, p.code) for p in result.problems] == [(5, "wrong-type"), (8, "wrong-type")]
    assert [u.line for u in result.unresolved] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]


def test_statsd_names_and_tags_follow_the_statsd_rules(defs: fm.Definitions) -> None:
    source = """\
        import fxa_metrics as fm
        from fxa_metrics import timer
        fm.Timing("url_request", 1.0, tags={"method": "POST", "path": "/v1/a"})
        fm.Counter("bad name", tags={"user": "someone@example.com"})
        fm.Gauge("g.x", 1, {"9key": "v"}, None)
        fm.Set("users", "10.0.0.1")
        fm.Set("users", value="ok")
        timer("login..time", {"ok": True})
        @timer("a.b", tags=None)
        def f(): ...
        """
    result = _lint(defs, source)
    assert [(p.line, p.col, p.code) for p in result.problems] == [
        (4, 12, "statsd-name"),
        (4, 38, "statsd-tag"),
        (5, 21, "statsd-tag"),
        (6, 17, "statsd-tag"),
        (8, 7, "statsd-name"),
    ]
    # The statsd route's own messages, PII never echoed.
    assert "looks like an email address" in result.problems[1].message
    assert "someone" not in result.problems[1].message


def test_ignore_comments(defs: fm.Definitions) -> None:
    source = """\
        import fxa_metrics as fm
        fm.record("a.b")  # fxa-metrics: ignore[unknown-metric]
        fm.record("a.b")  # fxa-metrics: ignore[wrong-type, disabled]
        fm.record("a.b")  # fxa-metrics: ignore
        fm.record("a.b")  #fxa-metrics:ignore[]
        fm.record("a.b")  # "fxa-metrics: ignore" in a string is not a comment
        s = "# fxa-metrics: ignore"; fm.record("a.b")
        """
    result = _lint(defs, source)
    assert [p.line for p in result.problems] == [3, 6, 7]
    assert result.ignored == 3


def test_modules_that_re_export_record(defs: fm.Definitions) -> None:
    source = """\
        from myservice._metrics_stubs import record
        from myservice import typed
        import myservice.typed as t2
        record("a.b")
        typed.record("c.d")
        t2.record("e.f")
        """
    assert [p.line for p in _lint(defs, source).problems] == [4]
    assert [p.line for p in _lint(defs, source, ("myservice.typed",)).problems] == [4, 5, 6]


def test_files_directories_syntax_errors_and_unreadable_files(
    tmp_path: Path, defs: fm.Definitions
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text('import fxa_metrics as fm\nfm.record("x.y")\n')
    (tmp_path / "pkg" / "b.py").write_text("def (:\n")
    (tmp_path / "pkg" / "c.py").write_bytes(b"\xff\xfe\x00")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "d.py").write_text('import fxa_metrics as fm\nfm.record("x.y")\n')
    (tmp_path / "notes.txt").write_text("fm.record('x.y')")
    result = lint_paths([tmp_path], defs)
    assert [(Path(p.path).name, p.code) for p in result.problems] == [
        ("a.py", "unknown-metric"),
        ("b.py", "syntax-error"),
        ("c.py", "unreadable"),
    ]
    assert result.files == 2


def test_did_you_mean() -> None:
    assert did_you_mean("errorCode", ["reason", "error_code"]) == "; did you mean 'error_code'?"
    assert did_you_mean("login.compelte", ["login.complete"]) == "; did you mean 'login.complete'?"
    assert did_you_mean("zzz", ["login.complete"]) == ""


# ------------------------------------------------------------------ properties

_KEY = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_ABCDEFGH"), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(_KEY, min_size=1, max_size=4, unique=True))
def test_an_extra_key_is_flagged_iff_it_is_not_declared(keys: list[str]) -> None:
    defs = _example_defs()
    declared = defs.metrics["login.error"].extras
    extra = ", ".join(f"{k!r}: None" for k in keys)
    result = lint_source(
        f'import fxa_metrics as fm\nfm.record("login.error", extra={{{extra}}})\n', "p.py", defs
    )
    flagged = [p.message.split("'")[3] for p in result.problems]
    assert all(p.code == "unknown-extra" for p in result.problems)
    assert flagged == [k for k in keys if k not in declared]


@settings(max_examples=60, deadline=None)
@given(source=st.text(max_size=200))
def test_lint_never_raises_on_arbitrary_text(source: str) -> None:
    result = lint_source(source, "p.py", _example_defs())
    assert all(p.code == "syntax-error" for p in result.problems)


_CACHE: list[fm.Definitions] = []


def _example_defs() -> fm.Definitions:
    # Hypothesis tests cannot take function-scoped fixtures; load once.
    if not _CACHE:
        _CACHE.append(fm.load_definitions(EXAMPLE_METRICS, EXAMPLE_PINGS))
    return _CACHE[0]


def test_lint_never_imports_what_it_reads(tmp_path: Path, defs: fm.Definitions) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "boom.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n")
    lint_paths([tmp_path], defs)
    assert not marker.exists()
    assert "boom" not in sys.modules
