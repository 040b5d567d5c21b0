"""The glean-sdk route's parts on their own: orphan adoption, the upload log, result classes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fxa_metrics import _glean_sdk
from fxa_metrics._glean_sdk import PENDING_DIR, UploadLog, adopt_orphans, pending_count


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _ping(directory: Path, name: str) -> Path:
    pending = directory / PENDING_DIR
    pending.mkdir(parents=True, exist_ok=True)
    path = pending / name
    path.write_text("/submit/app/metrics/1/" + name + "\n{}\n")
    return path


def test_adopts_only_dead_processes_pending_pings_once(tmp_path: Path) -> None:
    own = tmp_path / str(os.getpid())
    dead = tmp_path / str(_dead_pid())
    alive = tmp_path / str(os.getppid())
    other = tmp_path / "not-a-pid"
    for i, d in enumerate((dead, alive, other)):
        _ping(d, f"0000000{i}-0000-4000-8000-000000000000")
    (dead / "db").mkdir()
    assert adopt_orphans(tmp_path, own) == 1
    assert pending_count(own) == 1
    assert not dead.exists()  # emptied and removed
    assert pending_count(alive) == 1  # a live process keeps its own
    assert pending_count(other) == 1
    # Adopting again finds nothing: each ping moved exactly once.
    assert adopt_orphans(tmp_path, own) == 0
    assert pending_count(own) == 1


def test_adoption_with_no_base_directory_is_a_no_op(tmp_path: Path) -> None:
    assert adopt_orphans(tmp_path / "missing", tmp_path / "missing" / "1") == 0
    assert pending_count(tmp_path / "missing") == 0


def test_alive_treats_someone_elses_process_as_alive() -> None:
    assert _glean_sdk._alive(os.getpid())
    assert not _glean_sdk._alive(_dead_pid())
    if os.geteuid() != 0:  # pragma: no cover - CI runs as root
        assert _glean_sdk._alive(1)


def test_upload_log_reads_whole_new_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("old metrics delivered\n")
    log = UploadLog(path)  # what an earlier run wrote was counted by it
    assert log.read() == []
    with path.open("a") as f:
        f.write("a metrics delivered\nb metrics retry\nbroken\nc metr")
    assert log.read() == [("a", "metrics", "delivered"), ("b", "metrics", "retry")]
    with path.open("a") as f:
        f.write("ics rejected\n")
    assert log.read() == [("c", "metrics", "rejected")]
    assert log.read() == []


def test_upload_log_without_a_file(tmp_path: Path) -> None:
    log = UploadLog(tmp_path / "none")
    assert log.read() == []


def test_upload_results_are_classified_as_glean_core_treats_them() -> None:
    pytest.importorskip("glean")
    from glean.net.ping_uploader import UploadResult

    from fxa_metrics._glean_sdk_upload import classify

    assert classify(UploadResult.HTTP_STATUS(200)) == "delivered"
    assert classify(UploadResult.HTTP_STATUS(204)) == "delivered"
    assert classify(UploadResult.HTTP_STATUS(400)) == "rejected"
    assert classify(UploadResult.HTTP_STATUS(503)) == "retry"
    assert classify(UploadResult.RECOVERABLE_FAILURE(0)) == "retry"
    assert classify(UploadResult.UNRECOVERABLE_FAILURE(0)) == "rejected"
    assert classify(UploadResult.INCAPABLE(0)) == "rejected"


def test_the_uploader_logs_each_attempt_even_to_a_dead_endpoint(tmp_path: Path) -> None:
    pytest.importorskip("glean")
    from fxa_metrics._glean_sdk_upload import CountingUploader

    class Request:
        doc_id = ("d0c",)
        url = "http://127.0.0.1:9/submit/accounts-backend/metrics/1/d0c"
        body = b"{}"
        headers: dict[str, str] = {}
        uploader_capabilities: list[str] = []

    class Capable:
        request = Request()

        def capable(self, check: object) -> Request:
            return self.request

    log = tmp_path / "uploads.log"
    CountingUploader(str(log)).do_upload(Capable())
    assert log.read_text() == "d0c metrics retry\n"
    # A log that cannot be written never fails the upload.
    CountingUploader(str(tmp_path / "missing" / "log")).do_upload(Capable())
