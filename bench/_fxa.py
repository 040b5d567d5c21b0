"""What several rows share: FxA's definitions, one request's values, upstream's generated code."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

import fxa_metrics as fm

ROOT = Path(__file__).resolve().parent.parent
FXA = ROOT / "tests" / "data" / "fxa-backend"
METRICS = FXA / "fxa-backend-metrics.yaml"
PINGS = FXA / "fxa-backend-pings.yaml"

UID = "0123456789abcdef0123456789abcdef"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
IP = "203.0.113.7"
CONTEXT: dict[str, str] = {
    "flow_id": "5d4b4e2a9c1f4b0e8a7d6c5b4a392817",
    "entrypoint": "preferences",
    "service": "sync",
    "oauth_client_id": "5882386c6d801776",
    "device_type": "desktop",
    "utm_source": "fx-website",
    "utm_medium": "email",
    "utm_campaign": "welcome",
}


def generate_upstream() -> Any:
    """glean_parser's python_server module for FxA's definitions: generated now, never committed.

    Imported under a unique name each call, so the orjson variant can patch
    its own copy without touching the as-shipped one.
    """
    from glean_parser import translate

    with tempfile.TemporaryDirectory() as tmp:
        pkg = f"fxa_upstream_{len(sys.modules)}"
        # translate() prints a banner to stdout, which carries the runner's JSON.
        with contextlib.redirect_stdout(io.StringIO()):
            translate.translate([METRICS, PINGS], "python_server", Path(tmp) / pkg, {}, {})
        sys.path.insert(0, tmp)
        try:
            return importlib.import_module(f"{pkg}.server_events")
        finally:
            sys.path.remove(tmp)


def with_orjson(module: Any) -> Any:
    """The generated module with its stdlib ``json`` swapped for orjson (same output text)."""
    module.json = types.SimpleNamespace(dumps=lambda obj: orjson.dumps(obj).decode())
    return module


def upstream_logger(module: Any) -> Any:
    return module.create_events_server_event_logger("accounts_backend", "1.0.0", "production")


def upstream_login_complete(logger: Any, sha: str) -> None:
    """One upstream ``login.complete`` with the 12 values our bound request carries."""
    logger.record_login_complete(
        user_agent=UA,
        ip_address=IP,
        account_user_id=UID,
        account_user_id_sha256=sha,
        relying_party_oauth_client_id=CONTEXT["oauth_client_id"],
        relying_party_service=CONTEXT["service"],
        session_device_type=CONTEXT["device_type"],
        session_entrypoint=CONTEXT["entrypoint"],
        session_flow_id=CONTEXT["flow_id"],
        utm_campaign=CONTEXT["utm_campaign"],
        utm_medium=CONTEXT["utm_medium"],
        utm_source=CONTEXT["utm_source"],
    )


def configure(**kw: Any) -> None:
    """FxA's definitions, the production channel, everything else off unless given."""
    settings: dict[str, Any] = {
        "service": "fxa-auth-api",
        "app_id": "accounts_backend",
        "app_version": "1.0.0",
        "channel": "production",
        "metrics_yaml": METRICS,
        "pings_yaml": PINGS,
        "mozlog_handler": "never",
    }
    settings.update(kw)
    fm.configure(**settings)


@contextlib.contextmanager
def stdout_to_devnull(pipe: bool = False) -> Iterator[None]:
    """Point fd 1 at ``/dev/null`` while timing, keeping ``sys.stdout`` the process's own.

    The deployment path: fxa_metrics writes to fd 1 itself while ``sys.stdout``
    is the real stdout, upstream writes through ``sys.stdout``, dockerflow's
    handlers through the ``sys.stdout`` they were given. All land in
    ``/dev/null``; the runner's JSON goes out after fd 1 is restored.
    ``pipe=True``: fd 1 is a pipe read by another process (``cat`` to
    ``/dev/null``), as a container's stdout is.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    reader = None
    if pipe:
        reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert reader.stdin is not None
        target = os.dup(reader.stdin.fileno())
        reader.stdin.close()
    else:
        target = os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, 1)
    os.close(target)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)  # the pipe's last write end closes: the reader sees EOF
        os.close(saved)
        if reader is not None:
            reader.wait(timeout=60)


def check_clean(what: str) -> None:
    """Fail the bench if ours dropped, erred or was unconfigured: a row must not time a no-op."""
    if not fm.is_configured():
        raise AssertionError(f"{what}: fxa_metrics was not configured while timed")
    snap = fm.stats()
    if snap.drops or snap.errors:
        raise AssertionError(f"{what}: fxa_metrics dropped or erred: {snap}")
