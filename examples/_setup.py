"""What every example service shares: configuration from the environment, a consent
lookup, a host health check and process gauges.

Environment (all optional):

* ``STATSD_HOST``/``STATSD_PORT``: statsd (read by ``fm.configure`` itself);
* ``SENTRY_DSN``: Sentry (fxa_metrics' own client);
* ``EXAMPLE_MAINTENANCE_FILE``: while this file exists, the ``example.maintenance``
  heartbeat check fails (how the end-to-end tests fail a check);
* ``EXAMPLE_GAUGES_INTERVAL``: seconds between process gauges (off when unset).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import fxa_metrics as fm

ROOT = Path(__file__).resolve().parent.parent
VERSION_JSON = str(Path(__file__).resolve().parent / "version.json")


def opted_out(uid: str) -> bool:
    """The example's account store: every uid ending in 0, 4, 8 or c has opted out."""
    return int(uid[-1], 16) % 4 == 0


async def opted_out_async(uid: str) -> bool:
    """The same answer from an async database pool."""
    await asyncio.sleep(0.01)
    return opted_out(uid)


def _maintenance() -> list[fm.CheckMessage]:
    flag = os.environ.get("EXAMPLE_MAINTENANCE_FILE")
    if flag and Path(flag).exists():
        return [fm.CheckMessage.error("the service is in maintenance", "example.E001")]
    return []


def setup(service: str, **options: Any) -> None:
    """Configure fxa_metrics for an example service, register its check, start its gauges."""
    fm.configure(
        service=service,
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=ROOT / "metrics.yaml",
        pings_yaml=ROOT / "pings.yaml",
        sentry_dsn=os.environ.get("SENTRY_DSN") or None,
        **options,
    )
    fm.register_check("example.maintenance", _maintenance)
    interval = os.environ.get("EXAMPLE_GAUGES_INTERVAL")
    if interval:
        fm.start_process_gauges(float(interval))
