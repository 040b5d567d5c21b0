"""Shared by the glean-sdk route's tests: definitions, a child-process runner, ping decoding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from fxa_metrics._recv_http import Received

DATA = Path(__file__).resolve().parent / "data" / "glean_sdk"
MIXED = DATA / "mixed-metrics.yaml"
ALL_TYPES = DATA / "all-types-metrics.yaml"
ALL_PINGS = DATA / "all-types-pings.yaml"
SRC = Path(__file__).resolve().parent.parent / "src"

# glean-sdk uploads from a subprocess per ping (~1.2 s, more on a busy 2-core
# machine): generous bounds, never a hang.
UPLOAD_WAIT = 60.0


def payload(upload: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(upload.body)
    return body


def ping_name(upload: Received) -> str:
    # /submit/<app>/<ping>/<version>/<document id>
    return upload.path.split("/")[3]


def doc_id(upload: Received) -> str:
    return upload.path.rstrip("/").split("/")[-1]


def run_child(script: str, timeout: float = 90.0, **env: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (its own glean-sdk); its last stdout line is JSON."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **env}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
