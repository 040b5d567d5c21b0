"""Line output: one write per line, bounded waits, every write failure counted.

These run real processes and real pipes (no PYTHONUNBUFFERED anywhere).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import fxa_metrics as fm
from fxa_metrics import _output
from fxa_metrics._sink import SinkDrop

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, ROOT

_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
_ENV["PYTHONPATH"] = str(ROOT / "src")


def _child(body: str, timeout: float = 0.2, **popen: object) -> subprocess.Popen[bytes]:
    script = textwrap.dedent(
        f"""
        import os, sys, time
        import fxa_metrics as fm
        fm.configure(service="svc", app_id="accounts_backend_dev", app_version="1",
                     channel="dev", metrics_yaml={str(EXAMPLE_METRICS)!r},
                     pings_yaml={str(EXAMPLE_PINGS)!r}, mozlog_handler="own",
                     write_timeout={timeout})
        """
    ) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], env=_ENV, **popen)  # type: ignore[call-overload,no-any-return]


def test_a_line_reaches_the_os_before_record_returns_even_if_the_process_is_killed() -> None:
    # No flush, no exit handlers: the process is SIGKILLed right after record().
    proc = _child(
        """
        for i in range(50):
            fm.record("login.complete", extra={"reason": "password"})
            fm.record(fm.Log("request.summary", {"n": i}))
        print("done", file=sys.stderr, flush=True)
        time.sleep(30)
        """,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    assert proc.stdout is not None
    chunks: list[bytes] = []
    # stdout is drained as it comes, as a log collector does.
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    assert proc.stderr.readline().strip() == b"done"
    proc.kill()
    reader.join(30)
    proc.wait(10)
    proc.stderr.close()
    proc.stdout.close()
    out = b"".join(chunks)
    lines = [json.loads(x) for x in out.splitlines()]
    assert sum(x["Type"] == "glean-server-event" for x in lines) == 50
    assert [x["Fields"]["n"] for x in lines if x["Type"] == "request.summary"] == list(range(50))


def test_fork_then_os_exit_neither_loses_nor_duplicates() -> None:
    proc = _child(
        """
        for i in range(10):
            fm.record("login.complete", extra={"reason": "password"})
        pid = os.fork()
        if pid == 0:
            for i in range(10):
                fm.record("login.complete", extra={"reason": "password"})
            os._exit(0)
        os.waitpid(pid, 0)
        os._exit(0)
        """,
        stdout=subprocess.PIPE,
    )
    out, _ = proc.communicate(timeout=60)
    ids = [json.loads(x)["Fields"]["document_id"] for x in out.splitlines()]
    assert len(ids) == 20
    assert len(set(ids)) == 20


def test_a_stdout_nobody_reads_bounds_record_and_counts_the_loss() -> None:
    # The pipe is never read: record() must come back within the bound each time,
    # and once a wait has run out, later records do not each wait the whole bound.
    proc = _child(
        """
        t0 = time.monotonic()
        for i in range(150):
            fm.record("login.complete", extra={"reason": "password"})
        elapsed = time.monotonic() - t0
        s = fm.stats()
        fm.reset(timeout=1.0)
        print(elapsed, s.drops.get("write_timeout", 0), file=sys.stderr, flush=True)
        """,
        timeout=0.5,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    assert proc.stdout is not None
    # Lines are read from stderr only; stdout stays unread until the child is done.
    report = proc.stderr.read().decode().split()
    proc.kill()
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    elapsed, timeouts = float(report[-2]), int(report[-1])
    assert timeouts > 50  # the pipe filled, the rest were dropped and counted
    # One full 0.5 s wait, then 10 ms per line: far below timeouts x 0.5 s.
    assert elapsed < 0.5 + 0.01 * timeouts + 10
    assert elapsed < 0.5 * timeouts / 3


def test_a_broken_pipe_is_counted_not_raised() -> None:
    read, write = os.pipe()
    os.close(read)
    proc = _child(
        """
        for i in range(30):
            fm.record("login.complete", extra={"reason": "password"})
            fm.record(fm.Log("op", {"i": i}))
        d = fm.stats().drops
        sys.stderr.write(f"{d.get('write_error', 0)}\\n")
        """,
        stdout=write,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.decode().split()[-1] == "60"


def test_a_full_disk_is_counted() -> None:
    with open("/dev/full", "wb") as full:
        proc = _child(
            """
            for i in range(5):
                fm.record("login.complete", extra={"reason": "password"})
            sys.stderr.write(f"{fm.stats().drops.get('write_error', 0)}\\n")
            """,
            stdout=full,
            stderr=subprocess.PIPE,
        )
        _, err = proc.communicate(timeout=60)
    assert err.decode().split()[-1] == "5"


def test_line_breaks_that_split_lines_are_escaped() -> None:
    raw = json.dumps({"a": "x\u2028y\u2029z\x85"}, ensure_ascii=False).encode() + b"\n"
    line = _output.escape_line_breaks(raw)
    assert line.decode().splitlines() == [line.decode().rstrip("\n")]
    assert json.loads(line) == {"a": "x\u2028y\u2029z\x85"}
    assert _output.escape_line_breaks(b'{"a":1}\n') == b'{"a":1}\n'


def test_a_replaced_stdout_receives_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    writer = _output.LineWriter()
    writer.write(b'{"a":1}\n')
    assert capsys.readouterr().out == '{"a":1}\n'


def test_a_closed_stream_raises_sinkdrop() -> None:
    stream = io.StringIO()
    stream.close()
    with pytest.raises(SinkDrop) as e:
        _output.LineWriter(stream).write(b"x\n")
    assert e.value.reason == "write_error"


def test_a_write_to_a_bad_fd_is_a_counted_drop() -> None:
    read, write = os.pipe()
    os.close(read)
    writer = _output.LineWriter()
    t0 = time.monotonic()
    with pytest.raises(SinkDrop) as e:
        writer._write_fd(write, b"x\n")
    os.close(write)
    assert e.value.reason == "write_error"
    assert e.value.detail == "EPIPE"
    assert time.monotonic() - t0 < 5


def test_mozlog_format_errors_are_counted_once_without_tracebacks(
    capfd: pytest.CaptureFixture[str],
) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    fm.configure(
        service="svc",
        app_id="accounts_backend_dev",
        app_version="1",
        channel="dev",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        mozlog_handler="own",
    )
    for _ in range(50):
        fm.record(fm.Log("op", {"bad": Hostile()}))
        fm.record(fm.Log("op", {"huge": 10**5000}))
    assert fm.stats().drops == {"format_error": 100}
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") <= 4
