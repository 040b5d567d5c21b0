"""Issue 9, in real processes run as services run: no ``PYTHONUNBUFFERED``.

Each test starts a fresh interpreter (or gunicorn) whose stdout is a file, a
pipe, a pipe nobody reads, a pipe whose reader left, or ``/dev/full``, and
reads back what reached the operating system. Every child is bounded by a
timeout; a hang is a failure, not a stuck suite.

Durable lines, bounded writes and write-error counting are built by the core
rewrite (``_output.py``, issue 8); these tests hold it to issue 9's promises.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, validate_payload

# Every child: the environment services run with, without PYTHONUNBUFFERED.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "STATSD_HOST")}

PRELUDE = textwrap.dedent(
    f"""
    import json, os, sys, time
    import fxa_metrics as fm

    def configure(**kw):
        settings = dict(
            service="fxa-rel", app_id="accounts_backend_dev", app_version="1.0.0",
            channel="development", metrics_yaml={str(ROOT / "metrics.yaml")!r},
            pings_yaml={str(ROOT / "pings.yaml")!r}, mozlog_handler="always", strict=False,
        )
        settings.update(kw)
        fm.configure(**settings)

    def event(seq):
        fm.record("login.complete", extra={{"reason": "password", "attempts": seq}})

    def log(seq, **fields):
        fm.record(fm.Log("reliability.test", {{"seq": seq, **fields}}))

    def report(path):
        snap = fm.stats()
        with open(path, "w") as fh:
            json.dump({{"drops": snap.drops, "errors": snap.errors,
                        "by_metric": [[r, m, n] for (r, m), n in snap.drops_by_metric.items()]}},
                      fh)
    """
)


def child(
    body: str, tmp_path: Path, stdout: Any, timeout: float = 60.0, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    script = tmp_path / "child.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=ENV,
        timeout=timeout,
        check=False,
        **kw,
    )


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_bytes().splitlines() if ln.startswith(b"{")]


def glean_seqs(lines: list[dict[str, Any]]) -> list[int]:
    out = []
    for ln in lines:
        if ln["Type"] != "glean-server-event":
            continue
        payload = json.loads(ln["Fields"]["payload"])
        validate_payload(payload)
        for ev in payload["events"]:
            out.append(int(ev["extra"]["attempts"]))
    return out


def stats_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def lost_total(stats: dict[str, Any]) -> int:
    return sum(stats["drops"].values())


# ------------------------------------------------------------------ fork, _exit, Pool


def test_fork_then_os_exit_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    with out.open("wb") as fh:
        proc = child(
            """
            configure()
            for i in range(10):
                event(i)
            pid = os.fork()
            if pid == 0:
                for i in range(100, 120):
                    event(i)
                os._exit(0)  # no flush, no atexit: what record() returned for must be out
            os.waitpid(pid, 0)
            for i in range(10, 20):
                event(i)
            """,
            tmp_path,
            fh,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = lines_of(out)
    seqs = glean_seqs(lines)
    assert sorted(seqs) == [*range(20), *range(100, 120)]  # nothing lost, nothing twice
    ids = [ln["Fields"]["document_id"] for ln in lines if ln["Type"] == "glean-server-event"]
    assert len(set(ids)) == len(ids)


def test_a_multiprocessing_pool_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    with out.open("wb") as fh:
        proc = child(
            """
            import multiprocessing as mp
            configure()

            def work(i):
                event(i)
                return i

            if __name__ == "__main__":
                ctx = mp.get_context("fork")
                with ctx.Pool(4) as pool:  # __exit__ terminates the workers (SIGTERM)
                    assert sorted(pool.map(work, range(1000), chunksize=7)) == list(range(1000))
            """,
            tmp_path,
            fh,
            timeout=120.0,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(glean_seqs(lines_of(out))) == list(range(1000))


def test_a_child_killed_with_sigkill_loses_nothing_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    with out.open("wb") as fh:
        proc = child(
            """
            configure()
            for i in range(50):
                log(i)  # MozLog's StreamHandler flushes: the events after it would not be
            for i in range(50):
                event(i)
            os.kill(os.getpid(), 9)
            """,
            tmp_path,
            fh,
        )
    assert proc.returncode == -signal.SIGKILL
    lines = lines_of(out)
    assert sorted(glean_seqs(lines)) == list(range(50))
    assert sorted(ln["Fields"]["seq"] for ln in lines if ln["Type"] == "reliability.test") == list(
        range(50)
    )


# ------------------------------------------------------------------ gunicorn, SIGKILL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


@pytest.mark.integration
def test_gunicorn_4_workers_sigkilled_after_400_responses_lose_no_line(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "out.log"
    cmd = [
        sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}",
        "--preload", "tests.apps.durable_app:app",
    ]  # fmt: skip
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV, start_new_session=True
        )
        try:
            _wait_up(port, proc)
            for seq in range(400):
                url = f"http://127.0.0.1:{port}/login/{seq}"
                with urllib.request.urlopen(url, timeout=30) as resp:
                    assert resp.status == 200
        finally:
            # Every response is in: kill master and workers with no chance to flush.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    lines = lines_of(out)
    assert sorted(glean_seqs(lines)) == list(range(400))


# ------------------------------------------------------------------ stdout nobody reads


def test_a_stdout_nobody_reads_bounds_record_and_counts_the_drops(tmp_path: Path) -> None:
    # The pipe fills (64 KB) after about 60 of these lines. Once it did,
    # record() blocked forever (and reset() behind it). Now each write waits
    # at most write_timeout, then the line is dropped and counted.
    stats = tmp_path / "stats.json"
    timings = tmp_path / "timings.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(
            f"""
            configure(write_timeout=0.05)
            slowest = 0.0
            for i in range(100):  # about 120 KB of lines
                for one in (event, log):
                    t = time.monotonic()
                    one(i)
                    slowest = max(slowest, time.monotonic() - t)
            report({str(stats)!r})
            t = time.monotonic()
            fm.reset(timeout=1.0)
            with open({str(timings)!r}, "w") as fh:
                json.dump({{"slowest": slowest, "reset": time.monotonic() - t}}, fh)
            os._exit(0)
            """
        )],
        stdout=subprocess.PIPE,  # not read until the child has finished
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=ENV,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("record() or reset() blocked on a stdout nobody reads") from None
    finally:
        written = [ln for ln in proc.stdout.read().splitlines() if ln.startswith(b"{")]
        proc.stdout.close()
    assert proc.returncode == 0
    counted = lost_total(stats_of(stats))
    assert counted > 0
    assert len(written) + counted == 200  # every line is either out or counted
    took = json.loads(timings.read_text())
    assert took["slowest"] < 0.05 + 2.0  # the bound, plus a loaded machine's slack
    assert took["reset"] < 1.0 + 2.0


# ------------------------------------------------------------------ broken pipe, full disk


def test_a_broken_pipe_loses_nothing_uncounted(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(
            f"""
            configure()
            for i in range(300):
                event(i)
            for i in range(300):
                log(i)
            report({str(stats)!r})
            os._exit(0)
            """
        )],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=ENV,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone: every write is EPIPE
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    counted = stats_of(stats)
    assert lost_total(counted) == 600  # the issue: 300 Glean lost, 33 counted; MozLog 0
    assert len(err.decode().splitlines()) < 20  # no traceback per record


def test_a_full_disk_loses_nothing_uncounted(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    with open("/dev/full", "wb") as full:
        proc = child(
            f"""
            configure()
            for i in range(300):
                event(i)
            for i in range(300):
                log(i)
            report({str(stats)!r})
            os._exit(0)
            """,
            tmp_path,
            full,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    assert lost_total(stats_of(stats)) == 600
    assert len(proc.stderr.decode().splitlines()) < 20


def test_a_closed_stdout_loses_nothing_uncounted(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    out = tmp_path / "out.log"
    with out.open("wb") as fh:
        proc = child(
            f"""
            configure()
            os.close(1)  # EBADF on every write
            for i in range(100):
                event(i)
                log(i)
            report({str(stats)!r})
            os._exit(0)
            """,
            tmp_path,
            fh,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    assert lost_total(stats_of(stats)) == 200


# ------------------------------------------------------------------ MozLog formatting


def test_mozlog_formatter_errors_are_counted_and_logged_once(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    out = tmp_path / "out.log"
    with out.open("wb") as fh:
        proc = child(
            f"""
            class BadRepr:
                def __repr__(self):
                    raise RuntimeError("repr")
            configure()
            for i in range(100):
                log(i, bad=BadRepr())
                log(i, huge=10**5000)
            report({str(stats)!r})
            """,
            tmp_path,
            fh,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    counted = stats_of(stats)
    good = [ln for ln in lines_of(out) if ln["Type"] == "reliability.test"]
    # Each record is either written (with the bad field replaced) or counted.
    assert len(good) + lost_total(counted) + sum(counted["errors"].values()) >= 200
    assert len(proc.stderr.decode().splitlines()) < 20  # not a traceback per record
