"""The glean-sdk route across processes: restarts, fork(), gunicorn pre-fork workers, no extra.

Each scenario runs in fresh interpreters, because glean-sdk is one per process.
Every bound is generous (uploads cost a subprocess each, on a shared 2-core
machine) and every wait is bounded: a hang fails the test, it never stalls it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from fxa_metrics._recv_http import Receiver
from tests.conftest import ROOT, validate_payload
from tests.glean_sdk_support import (
    ALL_PINGS,
    ALL_TYPES,
    MIXED,
    UPLOAD_WAIT,
    doc_id,
    payload,
    ping_name,
    run_child,
)

pytest.importorskip("glean")

CONFIGURE = """
import json, os, sys, time
import fxa_metrics as fm
from fxa_metrics import _facade
fm.configure(
    service="fxa-jobs", app_id="accounts_backend", app_version="1.0.0", channel="test",
    metrics_yaml={metrics!r}, pings_yaml={pings!r},
    glean_sdk_data_dir={base!r}, glean_sdk_server_endpoint={endpoint!r},
    glean_sdk_ping_interval=3600.0, glean_sdk_shutdown_timeout={shutdown!r},
)
sink = _facade.get_runtime().sinks["glean_sdk"][0]
"""


def configure_script(base: Path, endpoint: str, shutdown: float = 3.0) -> str:
    return CONFIGURE.format(
        metrics=str(ALL_TYPES),
        pings=str(ALL_PINGS),
        base=str(base),
        endpoint=endpoint,
        shutdown=shutdown,
    )


def wait_for(recv: Receiver, n: int, timeout: float = UPLOAD_WAIT) -> list[object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(recv.uploads()) < n:
        time.sleep(0.05)
    return list(recv.uploads())


@pytest.mark.integration
def test_pending_pings_survive_a_restart_with_the_same_data_directory(tmp_path: Path) -> None:
    with Receiver() as probe:
        down = f"http://127.0.0.1:{probe.port}"  # closed again: nothing listens there
    # The first process records while the endpoint is down and exits: its
    # shutdown submission stays on disk, counted, not lost.
    first = run_child(
        configure_script(tmp_path, down)
        + """
fm.record("svc.requests", value=5)
fm.reset(3.0)
print(json.dumps({"pid": os.getpid(), "errors": fm.stats().errors, "counts": sink.counts}))
"""
    )
    assert first["counts"]["pending_at_close"] == 1
    old_dir = tmp_path / str(first["pid"])
    assert len(list((old_dir / "pending_pings").iterdir())) == 1
    # The next process, same base directory, endpoint up: it adopts the dead
    # process's pending ping and delivers it once, beside its own.
    with Receiver() as recv:
        second = run_child(
            configure_script(tmp_path, recv.url)
            + """
fm.record("svc.requests", value=1)
sink.flush(60.0)
print(json.dumps({"counts": sink.counts, "drops": fm.stats().drops}))
"""
        )
        ups = wait_for(recv, 2)
        time.sleep(1.0)  # and nothing more arrives
        ups = recv.uploads()
    assert second["counts"]["adopted"] == 1
    assert second["counts"]["delivered"] == 2
    assert second["drops"] == {}
    assert len(ups) == 2
    assert len({doc_id(u) for u in ups}) == 2
    bodies = [payload(u) for u in ups]
    for body in bodies:
        validate_payload(body)
    values = sorted(b["metrics"]["counter"]["svc.requests"] for b in bodies)
    assert values == [1, 5]
    # Two processes, two clients: the adopted ping keeps the first one's client_id.
    assert len({b["client_info"]["client_id"] for b in bodies}) == 2
    assert not old_dir.exists()


@pytest.mark.integration
def test_fork_after_start_drops_and_counts_in_the_child_never_hangs(tmp_path: Path) -> None:
    with Receiver() as recv:
        result = run_child(
            configure_script(tmp_path, recv.url)
            + """
fm.record("svc.requests", value=2)
assert sink._started.wait(60)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    # The child inherits a started SDK whose threads did not survive fork().
    fm.record("svc.requests")
    fm.flush(2.0)
    os.write(w, json.dumps(fm.stats().drops).encode())
    sys.exit(0)  # atexit hooks run, and must not wait on the dead SDK
os.close(w)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    raise SystemExit("the forked child hung")
child_drops = json.loads(os.read(r, 4096))
sink.flush(60.0)
print(json.dumps({"child": child_drops, "status": status, "counts": sink.counts}))
""",
        )
        ups = wait_for(recv, 1)
    assert result["status"] == 0
    assert result["child"] == {"glean_sdk_forked": 1}
    # The parent's SDK is untouched by the child.
    assert result["counts"]["delivered"] == 1
    (up,) = ups
    assert payload(up)["metrics"]["counter"] == {"svc.requests": 2}


@pytest.mark.integration
def test_the_sdk_starts_in_the_child_that_records_with_its_own_directory(tmp_path: Path) -> None:
    with Receiver() as recv:
        result = run_child(
            configure_script(tmp_path, recv.url)
            + """
pid = os.fork()  # configured, never recorded: nothing started before the fork
if pid == 0:
    fm.record("svc.requests", value=3)
    fm.flush(60.0)
    code = 0 if sink.counts.get("delivered") == 1 else 3
    fm.reset(5.0)
    os._exit(code)
fm.record("svc.requests", value=4)
sink.flush(60.0)
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    raise SystemExit("the forked child hung")
print(json.dumps({"status": status, "child": pid, "parent": os.getpid()}))
""",
        )
        ups = wait_for(recv, 2)
    assert result["status"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [str(result["child"]), str(result["parent"])]
    )
    bodies = [payload(u) for u in ups]
    assert sorted(b["metrics"]["counter"]["svc.requests"] for b in bodies) == [3, 4]
    assert len({b["client_info"]["client_id"] for b in bodies}) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return int(resp.read())


@pytest.mark.integration
def test_gunicorn_four_workers_each_ping_arrives_once_from_distinct_clients(
    tmp_path: Path,
) -> None:
    port = _free_port()
    base = tmp_path / "glean"
    with Receiver() as recv:
        env = {
            **os.environ,
            "E2E_GLEAN_SDK_DIR": str(base),
            "E2E_GLEAN_SDK_ENDPOINT": recv.url,
            "PYTHONPATH": str(ROOT / "src"),
        }
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "60",
            "tests.apps.glean_sdk_app:app",
        ]
        log = (tmp_path / "gunicorn.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        served: Counter[int] = Counter()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AssertionError(f"gunicorn exited: {proc.returncode}")
                workers = [p for p in base.iterdir()] if base.is_dir() else []
                try:
                    served[_get(port)] += 1
                except OSError:
                    time.sleep(0.1)
                    continue
                if len(workers) == 4 and sum(served.values()) >= 8:
                    break
            # Every worker has started its SDK (its own directory) before we stop.
            assert len(list(base.iterdir())) == 4
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=90)
            log.close()
        ups = wait_for(recv, 4, timeout=30)
        time.sleep(1.0)
        ups = recv.uploads()
    worker_dirs = sorted(p.name for p in base.iterdir())
    assert len(worker_dirs) == 4
    # Exactly one ping per worker, each from its own client, each carrying its start.
    assert len(ups) == 4, [u.path for u in ups]
    assert {ping_name(u) for u in ups} == {"metrics"}
    assert len({doc_id(u) for u in ups}) == 4
    bodies = [payload(u) for u in ups]
    for body in bodies:
        validate_payload(body)
    assert len({b["client_info"]["client_id"] for b in bodies}) == 4
    assert [b["metrics"]["counter"]["svc.requests"] for b in bodies] == [1, 1, 1, 1]
    ok = sum(
        b["metrics"].get("labeled_counter", {}).get("svc.status", {}).get("ok", 0) for b in bodies
    )
    assert ok == sum(served.values())


# A meta-path finder that makes glean-sdk look uninstalled in the child.
BLOCK_GLEAN = """
import importlib.abc, sys
class _NoGlean(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "glean" or name.startswith("glean."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoGlean())
"""


def test_without_the_extra_import_and_other_routes_work_and_sdk_metrics_fail_loudly(
    tmp_path: Path,
) -> None:
    refused = tmp_path / "refused.yaml"
    refused.write_text(
        MIXED.read_text()
        + """
  by_user:
    type: labeled_counter
    description: Per user (refused).
    bugs: [https://bugzilla.mozilla.org/1]
    data_reviews: [https://bugzilla.mozilla.org/1]
    notification_emails: [fxa-staff@mozilla.com]
    expires: never
"""
    )
    result = run_child(
        BLOCK_GLEAN
        + f"""
import io, json, contextlib
import fxa_metrics as fm
from fxa_metrics import cli
out = {{}}
try:
    import glean
except ImportError:
    out["glean_importable"] = False
stream = io.StringIO()
fm.configure(service="s", app_id="accounts_backend", app_version="1", channel="c",
             metrics_yaml={str(ROOT / "metrics.yaml")!r}, pings_yaml={str(ROOT / "pings.yaml")!r},
             glean_stream=stream, strict=True)
fm.record("login.complete", extra={{"reason": "password"}})
out["server_lines"] = len(stream.getvalue().splitlines())
fm.reset()
try:
    fm.configure(service="s", app_id="accounts_backend", app_version="1", channel="c",
                 metrics_yaml={str(MIXED)!r})
except fm.DefinitionsError as e:
    out["configure"] = [[p.metric, p.message] for p in e.problems]
out["configured"] = fm.is_configured()
out["check"] = [[p.metric, p.message] for p in fm.check_definitions([{str(refused)!r}])]
err, std = io.StringIO(), io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
    out["cli_code"] = cli.main(["check", "--metrics-yaml", {str(refused)!r}])
out["cli_out"] = std.getvalue().splitlines()
print(json.dumps(out))
"""
    )
    assert result["glean_importable"] is False
    assert result["server_lines"] == 1
    assert result["configured"] is False
    named = {metric: msg for metric, msg in result["configure"]}
    assert set(named) == {"jobs.runs", "jobs.duration"}
    for msg in named.values():
        assert "fxa-metrics[glean-sdk]" in msg
        assert "glean-sdk is not installed" in msg
    # check: every problem in one run, the missing extra beside the refusal.
    check = result["check"]
    assert sorted(m for m, _ in check) == [
        "jobs.by_user",  # refused: a labeled_counter without static labels...
        "jobs.by_user",  # ...and, like the others, it needs the missing extra
        "jobs.duration",
        "jobs.runs",
    ]
    by_user = [msg for m, msg in check if m == "jobs.by_user"]
    assert any("static labels" in msg for msg in by_user)
    assert any("glean-sdk is not installed" in msg for msg in by_user)
    assert result["cli_code"] == 1
    assert "route: jobs.runs (counter): glean_sdk" in result["cli_out"]
    assert "route: login.complete (event): glean" in result["cli_out"]


def test_the_mixed_definitions_load_each_metric_on_its_route() -> None:
    import fxa_metrics as fm

    defs = fm.load_definitions(MIXED)
    routes = {ident: md.route for ident, md in defs.metrics.items()}
    assert routes == {
        "login.complete": "glean",
        "account.user_id_sha256": "glean",
        "session.flow_id": "glean",
        "jobs.runs": "glean_sdk",
        "jobs.duration": "glean_sdk",
    }
    assert defs.sdk_pings == ("metrics",)
    # The server route's events ping carries only its own metrics.
    assert dict(defs.pings["events"].metrics_by_type) == {
        "string": ("account.user_id_sha256", "session.flow_id")
    }
    assert json.dumps(sorted(defs.pings))  # only the server route's pings
    assert "metrics" not in defs.pings
