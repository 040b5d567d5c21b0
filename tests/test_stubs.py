"""``fxa-metrics stubs``: mypy --strict rejects what lint rejects, and stale stubs fail CI."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import glean_parser
import pytest

import fxa_metrics as fm
from fxa_metrics import cli, testing
from fxa_metrics._lint import lint_paths
from fxa_metrics._stubs import _unique, render, staleness

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, FXA_METRICS, FXA_PINGS
from .test_lint import SAMPLE, fixed_sample

FXA_ARGS = ["--metrics-yaml", str(FXA_METRICS), "--pings-yaml", str(FXA_PINGS)]
EXAMPLE_ARGS = ["--metrics-yaml", str(EXAMPLE_METRICS), "--pings-yaml", str(EXAMPLE_PINGS)]
_MYPY_ERROR = re.compile(r"^service\.py:(?P<line>\d+):(?P<col>\d+): error: ")


def _mypy(where: Path) -> tuple[int, list[int], str]:
    """mypy --strict over the sample and its stubs, as a service's CI runs it."""
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--show-column-numbers"),
            *("--no-error-summary", "--cache-dir", str(where.parent / "mypy-cache")),
            *("service.py", "_metrics_stubs.py"),
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [int(m["line"]) for m in map(_MYPY_ERROR.match, proc.stdout.splitlines()) if m]
    return proc.returncode, lines, proc.stdout + proc.stderr


def test_mypy_strict_rejects_exactly_the_three_mistakes_lint_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "svc"
    work.mkdir()
    assert cli.main(["stubs", *FXA_ARGS, "-o", str(work / "_metrics_stubs.py")]) == 0
    shutil.copy(SAMPLE, work / "service.py")
    lint_lines = [
        p.line
        for p in lint_paths(
            [work / "service.py"], fm.load_definitions(FXA_METRICS, FXA_PINGS)
        ).problems
    ]
    assert lint_lines == [20, 25, 30]

    code, mypy_lines, output = _mypy(work)
    assert code == 1, output
    assert mypy_lines == lint_lines, output
    # Every one of them is the call not matching any declared metric/extras/types.
    errors = [line for line in output.splitlines() if ": error: " in line]
    assert all(line.endswith("[call-overload]") for line in errors), errors

    (work / "service.py").write_text(fixed_sample())
    code, mypy_lines, output = _mypy(work)
    assert (code, mypy_lines) == (0, []), output


_PYRIGHT_ERROR = re.compile(r"^\s*\S*service\.py:(?P<line>\d+):(?P<col>\d+) - error: ")


def _pyright(where: Path) -> tuple[int, list[int], str]:
    """pyright in strict mode over the sample and its stubs (the PyPI wheel bundles pyright)."""
    config = {"pythonVersion": "3.11", "typeCheckingMode": "strict"}
    (where / "pyrightconfig.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [m["line"] for m in map(_PYRIGHT_ERROR.match, proc.stdout.splitlines()) if m]
    return proc.returncode, sorted({int(n) for n in lines}), proc.stdout + proc.stderr


def test_pyright_strict_rejects_the_same_three_mistakes(tmp_path: Path) -> None:
    work = tmp_path / "svc"
    work.mkdir()
    assert cli.main(["stubs", *FXA_ARGS, "-o", str(work / "_metrics_stubs.py")]) == 0
    shutil.copy(SAMPLE, work / "service.py")
    code, lines, output = _pyright(work)
    assert code == 1, output
    assert lines == [20, 25, 30], output
    # The generated module itself is clean under pyright's strict mode.
    assert "_metrics_stubs.py:" not in output, output
    (work / "service.py").write_text(fixed_sample())
    code, lines, output = _pyright(work)
    assert (code, lines) == (0, []), output


def test_the_header_names_source_and_glean_parser_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["stubs", *EXAMPLE_ARGS]) == 0
    text = capsys.readouterr().out
    assert f"Source: {EXAMPLE_METRICS.as_posix()}, {EXAMPLE_PINGS.as_posix()}\n" in text
    assert f"\nglean_parser: {glean_parser.__version__}\n" in text
    assert re.search(r"\nDefinitions sha256: [0-9a-f]{64}\n", text)


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("generated_stubs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_run_time_record_is_fxa_metrics_record(tmp_path: Path) -> None:
    path = tmp_path / "stubs.py"
    assert cli.main(["stubs", *EXAMPLE_ARGS, "-o", str(path)]) == 0
    stubs = _import(path)
    assert stubs.record is fm.record
    assert "login.complete" in stubs.EventName.__args__
    assert stubs.LoginErrorExtra.__annotations__.keys() == {"reason", "error_code"}
    assert set(stubs.__all__) >= {"record", "EventName", "PingName", "LoginErrorExtra"}
    assert len(set(stubs.__all__)) == len(stubs.__all__)
    # Events of one shape share an overload (and a TypedDict), under their own names too.
    assert stubs.LoginErrorExtra is stubs.ErrorCodeReasonExtra
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as cap:
        stubs.record("login.complete", extra={"reason": "password"})
        cap.assert_event_once("login.complete", extra={"reason": "password"})


def test_pings_expired_and_disabled_events_shape_the_overloads(tmp_path: Path) -> None:
    text = EXAMPLE_METRICS.read_text()
    text = text.replace(
        "      A login failed.\n    send_in_pings:\n      - events\n",
        "      A login failed.\n    send_in_pings:\n      - events\n      - accounts-activity\n",
    )
    text = text.replace(
        "  delete_complete:\n    type: event\n",
        "  delete_complete:\n    type: event\n    disabled: true\n",
    )
    (tmp_path / "m.yaml").write_text(text)
    stubs = render(fm.load_definitions(tmp_path / "m.yaml", EXAMPLE_PINGS), [tmp_path / "m.yaml"])
    # Two pings: ping= is required, as record() requires it.
    assert "ping: Literal['accounts-activity', 'events']," in stubs
    assert "ping: Literal['events'] | None = None," in stubs
    assert "# Expired or disabled, so not recordable: account.delete_complete" in stubs
    assert "Literal['account.delete_complete']" not in stubs
    assert "'account.delete_complete'" not in stubs.split("EventName")[1].split("]")[0]
    empty = render(fm.load_definitions([], []), [])
    assert "EventName = Never" in empty
    assert "Literal, Never, TypedDict" in empty
    # Imports follow what is used (pyright's strict mode reports unused ones).
    assert "import datetime" not in stubs
    assert "Never" not in stubs
    dated = text.replace(
        "  two_factor_enabled:\n    type: boolean\n", "  two_factor_enabled:\n    type: datetime\n"
    )
    (tmp_path / "d.yaml").write_text(dated)
    stubs = render(fm.load_definitions(tmp_path / "d.yaml", EXAMPLE_PINGS), [tmp_path / "d.yaml"])
    assert "\nimport datetime\n" in stubs
    assert "'account.two_factor_enabled': datetime.datetime | None" in stubs


def test_unique_names() -> None:
    taken: set[str] = set()
    assert [_unique("AB", taken) for _ in range(3)] == ["AB", "AB2", "AB3"]


def _copy_definitions(tmp_path: Path) -> tuple[Path, Path]:
    m, p = tmp_path / "metrics.yaml", tmp_path / "pings.yaml"
    shutil.copy(EXAMPLE_METRICS, m)
    shutil.copy(EXAMPLE_PINGS, p)
    return m, p


def test_stubs_check_tells_current_from_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m, p = _copy_definitions(tmp_path)
    args = ["--metrics-yaml", str(m), "--pings-yaml", str(p)]
    stubs = tmp_path / "_metrics_stubs.py"
    assert cli.main(["stubs", *args, "-o", str(stubs)]) == 0
    assert cli.main(["stubs", *args, "--check", str(stubs)]) == 0
    assert f"ok: {stubs} is up to date" in capsys.readouterr().out
    # check --stubs says the same.
    assert cli.main(["check", *args, "--stubs", str(stubs)]) == 0
    capsys.readouterr()

    m.write_text(m.read_text().replace("How the user logged in", "How the user signed in"))
    assert cli.main(["stubs", *args, "--check", str(stubs)]) == 1
    err = capsys.readouterr().err
    assert "stale: the definitions changed since it was generated" in err
    assert f"regenerate with `fxa-metrics stubs -o {stubs}`" in err
    assert cli.main(["check", *args, "--stubs", str(stubs)]) == 1
    assert "stale" in capsys.readouterr().err


def test_staleness_reasons() -> None:
    now = render(fm.load_definitions(EXAMPLE_METRICS, EXAMPLE_PINGS), [EXAMPLE_METRICS])
    assert staleness(now, now) is None
    older = now.replace(f"glean_parser: {glean_parser.__version__}", "glean_parser: 1.0")
    assert staleness(older, now) == (
        f"it was generated with glean_parser 1.0, and {glean_parser.__version__} is installed"
    )
    edited = now.replace("import fxa_metrics", "import fxa_metrics  # mine")
    assert "differs from what would be generated" in str(staleness(edited, now))
    assert staleness("x = 1\n", now) == "it is not a file `fxa-metrics stubs` generated"


def test_stubs_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert cli.main(["stubs", "--metrics-yaml", missing]) == 2
    assert "file not found" in capsys.readouterr().err
    assert cli.main(["stubs", *EXAMPLE_ARGS, "--check", str(tmp_path / "none.py")]) == 1
    assert "cannot read the stubs" in capsys.readouterr().err
    # check --stubs with broken definitions: check itself reports them, once.
    assert cli.main(["check", "--metrics-yaml", missing, "--stubs", str(tmp_path / "x.py")]) == 1
    assert capsys.readouterr().err.count("file not found") == 1


def _blocks(doc: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", doc, flags=re.S)


def test_the_ci_recipe_in_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "lint.md").read_text()
    (recipe,) = _blocks(doc, "sh")
    commands = [line.split() for line in recipe.splitlines() if line.strip()]
    assert all(cmd[0] == "fxa-metrics" for cmd in commands)
    # The service layout the recipe assumes, with one clean call site.
    _copy_definitions(tmp_path)
    pkg = tmp_path / "src" / "myservice"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text(
        "from myservice._metrics_stubs import record\n\n"
        "def done() -> None:\n"
        '    record("login.complete", extra={"reason": "password"})\n'
    )
    monkeypatch.chdir(tmp_path)
    for cmd in commands:
        assert cli.main(cmd[1:]) == 0, (cmd, capsys.readouterr())
    # The GitHub Actions job runs the same lint and --check commands.
    (job,) = _blocks(doc, "yaml")
    for cmd in commands[1:]:
        assert f"- run: {' '.join(cmd)}\n" in job
