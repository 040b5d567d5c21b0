"""Server health, dockerflow-compatible: heartbeat checks, version, process gauges (issue 11).

The seed's fourth kind of telemetry ("there are 30 healthy hosts", "a host is
running at 100% cpu"). Every framework integration serves:

``/__lbheartbeat__``
    200, empty: the process answers (load balancers poll it; it runs no check).
``/__heartbeat__``
    every registered check, in dockerflow's JSON shape
    (``{"status", "checks", "details"}``): 200 while no check reaches error
    level, 500 naming the failing checks otherwise.
``/__version__``
    the service's ``version.json`` (dockerflow: source, version, commit, build); 404 without one.

fxa_metrics registers its own checks: ``fxa_metrics.sinks`` (configured, every
sink open), ``fxa_metrics.drops`` (no record lost since the previous
heartbeat), ``fxa_metrics.statsd`` (the UDP socket open) and
``fxa_metrics.sentry`` (the Sentry client active, its transport not stalled).

:class:`ProcessGauges` sends CPU, RSS, open file descriptors and GC counts to
statsd on an interval, from one daemon thread that ``fm.reset()`` stops.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from . import _facade
from ._records import Gauge
from ._stats import StatsSnapshot, logger

# dockerflow's levels (Django's check framework) and their names.
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_LEVEL_NAMES = {0: "ok", DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}
_LEVEL_NAMES[CRITICAL] = "critical"

HEARTBEAT, LBHEARTBEAT, VERSION = "/__heartbeat__", "/__lbheartbeat__", "/__version__"
PATHS = frozenset({HEARTBEAT, LBHEARTBEAT, VERSION})

# Drops that are policy, not loss: a user's consent, the service switch, FxA's
# Sentry filter. Every other drop since the previous heartbeat is reported.
POLICY_DROPS = frozenset({"consent", "service_disabled", "sentry_filtered"})
# Losses of what the code did record correctly: an error, so the heartbeat fails.
LOSS_DROPS = frozenset({"sink_error", "internal_error", "consent_pending_overflow"})


@attrs.frozen
class CheckMessage:
    """One finding of a check: a dockerflow ``level`` (40 error, 30 warning), a message, an id."""

    level: int
    message: str
    id: str

    @classmethod
    def error(cls, message: str, id: str) -> CheckMessage:
        """A finding that fails the heartbeat (500)."""
        return cls(ERROR, message, id)

    @classmethod
    def warning(cls, message: str, id: str) -> CheckMessage:
        """A finding reported in the heartbeat that leaves it at 200."""
        return cls(WARNING, message, id)


# A check returns its findings (nothing, or an empty iterable, when healthy).
Check = Callable[[], Iterable[CheckMessage] | None]


@attrs.frozen
class HealthResponse:
    """What to answer on a health path: status code, body, content type."""

    status: int
    body: bytes
    content_type: str = "application/json"


_checks: dict[str, Check] = {}
_checks_lock = threading.Lock()


def register_check(name: str, check: Check) -> None:
    """Run ``check`` on every ``/__heartbeat__`` under ``name`` (replacing any check of that name).

    >>> import json, fxa_metrics as fm
    >>> fm.register_check("db", lambda: [fm.CheckMessage.error("no connection", "db.E001")])
    >>> answer = fm.heartbeat()
    >>> answer.status, json.loads(answer.body)["details"]["db"]["messages"]
    (500, {'db.E001': 'no connection'})
    >>> fm.unregister_check("db")
    """
    if not callable(check):
        raise TypeError(f"check {name!r} must be callable, got {type(check).__name__}")
    with _checks_lock:
        _checks[name] = check


def unregister_check(name: str) -> None:
    """Forget the check registered as ``name`` (no error if there is none)."""
    with _checks_lock:
        _checks.pop(name, None)


# ------------------------------------------------------------------ fxa_metrics' own checks


def _check_sinks() -> list[CheckMessage]:
    rt = _facade.get_runtime()
    if rt is None:
        return [CheckMessage(ERROR, "fxa_metrics is not configured", "fxa_metrics.E001")]
    out = []
    for route, sinks in rt.sinks.items():
        for sink in sinks:
            stream = getattr(sink, "_stream", None)
            if getattr(sink, "_closed", False) or getattr(stream, "closed", False):
                message = f"{route} sink {sink!r} is closed"
                out.append(CheckMessage(ERROR, message, "fxa_metrics.E002"))
    return out


# Per runtime (a reconfigure starts afresh): the snapshot the previous heartbeat saw.
_last_seen: dict[int, StatsSnapshot] = {}


def _new_drops(now: StatsSnapshot, before: StatsSnapshot | None) -> dict[str, int]:
    old: Mapping[str, int] = before.drops if before is not None else {}
    return {r: n - old.get(r, 0) for r, n in now.drops.items() if n > old.get(r, 0)}


def _check_drops() -> list[CheckMessage]:
    rt = _facade.get_runtime()
    if rt is None:
        return []
    now = rt.stats.snapshot()
    new = _new_drops(now, _last_seen.get(id(rt)))
    _last_seen.clear()  # only the current runtime's baseline is kept
    _last_seen[id(rt)] = now
    out = []
    for reason, n in sorted(new.items()):
        if reason in POLICY_DROPS:
            continue
        level = ERROR if reason in LOSS_DROPS else WARNING
        out.append(
            CheckMessage(level, f"{n} record(s) dropped ({reason}) since the last heartbeat",
                         f"fxa_metrics.drops.{reason}")
        )  # fmt: skip
    return out


def _check_statsd() -> list[CheckMessage]:
    rt = _facade.get_runtime()
    out = []
    for sink in rt.sinks.get("statsd", ()) if rt is not None else ():
        client = getattr(sink, "client", None)
        if client is None or not hasattr(client, "_sock"):
            continue  # not a UDP statsd sink (a Sentry span sink, a test double)
        sock = client._sock
        if getattr(sink, "_closed", False) or sock is None or sock.fileno() < 0:
            out.append(CheckMessage(ERROR, f"{sink!r}: socket closed", "fxa_metrics.E010"))
    return out


def _check_sentry() -> list[CheckMessage]:
    rt = _facade.get_runtime()
    out = []
    for sink in rt.sinks.get("sentry", ()) if rt is not None else ():
        client = getattr(sink, "client", None)
        if client is None:
            continue
        # A closed owned client stays "active" but has no transport left.
        if not client.is_active() or getattr(client, "transport", True) is None:
            out.append(CheckMessage(ERROR, f"{sink!r}: client closed", "fxa_metrics.E020"))
        elif getattr(sink, "_stalled", False):
            message = f"{sink!r}: transport did not drain in time"
            out.append(CheckMessage(ERROR, message, "fxa_metrics.E021"))
    return out


BUILTIN_CHECKS: dict[str, Check] = {
    "fxa_metrics.sinks": _check_sinks,
    "fxa_metrics.drops": _check_drops,
    "fxa_metrics.statsd": _check_statsd,
    "fxa_metrics.sentry": _check_sentry,
}


# ------------------------------------------------------------------ the endpoints


def _run(name: str, check: Check) -> list[CheckMessage]:
    try:
        return list(check() or ())
    except Exception as e:  # a check that raises has failed; it never fails the endpoint
        logger.warning("fxa_metrics: health check %s raised %r", name, e)
        return [CheckMessage(ERROR, f"check raised {type(e).__name__}", f"{name}.raised")]


def heartbeat() -> HealthResponse:
    """Run every check now: dockerflow's ``/__heartbeat__`` answer."""
    with _checks_lock:
        checks = {**BUILTIN_CHECKS, **_checks}
    statuses: dict[str, str] = {}
    details: dict[str, Any] = {}
    worst = 0
    for name, check in checks.items():
        found = _run(name, check)
        level = max((m.level for m in found), default=0)
        worst = max(worst, level)
        statuses[name] = _LEVEL_NAMES.get(level, "error")
        if found:
            details[name] = {
                "status": statuses[name],
                "level": level,
                "messages": {m.id: m.message for m in found},
            }
    body = {"status": _LEVEL_NAMES.get(worst, "error"), "checks": statuses, "details": details}
    return HealthResponse(500 if worst >= ERROR else 200, json.dumps(body).encode())


def lbheartbeat() -> HealthResponse:
    """``/__lbheartbeat__``: the process answers; no check runs."""
    return HealthResponse(200, b"", "text/plain")


def version(path: str | os.PathLike[str] | None = None) -> HealthResponse:
    """``/__version__``: the content of ``version.json`` (default: in the working directory)."""
    file = Path(path) if path is not None else Path.cwd() / "version.json"
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        body = {"error": f"version.json unavailable: {type(e).__name__}"}
        return HealthResponse(404, json.dumps(body).encode())
    return HealthResponse(200, json.dumps(data).encode())


def respond(path: str, version_path: str | os.PathLike[str] | None = None) -> HealthResponse | None:
    """The answer for a health ``path``, or None for any other path."""
    if path == LBHEARTBEAT:
        return lbheartbeat()
    if path == HEARTBEAT:
        return heartbeat()
    if path == VERSION:
        return version(version_path)
    return None


# ------------------------------------------------------------------ process gauges


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is what there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class ProcessGauges:
    """Process gauges to statsd every ``interval`` seconds, from one daemon thread.

    ``process.cpu_percent`` (of one core, since the previous sample),
    ``process.rss_bytes``, ``process.open_fds``, ``process.gc.gen0``..``gen2``
    (objects tracked per generation) and ``process.gc.collections``. Stopped by
    :meth:`stop` or ``fm.reset()``. Start it in each worker (after fork): a
    thread does not survive ``fork()``.
    """

    def __init__(self, interval: float = 10.0, prefix: str = "process") -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = interval
        self.prefix = prefix
        self._stop = threading.Event()
        self._cpu = (time.monotonic(), sum(os.times()[:2]))
        self._thread = threading.Thread(target=self._loop, name="fxa_metrics-gauges", daemon=True)

    def sample(self) -> dict[str, float]:
        """Measure now: gauge name (without prefix) -> value."""
        wall, cpu = time.monotonic(), sum(os.times()[:2])
        prev_wall, prev_cpu = self._cpu
        self._cpu = (wall, cpu)
        out: dict[str, float] = {
            "cpu_percent": round(100.0 * (cpu - prev_cpu) / max(wall - prev_wall, 1e-9), 2),
            "rss_bytes": _rss_bytes(),
        }
        fds = _open_fds()
        if fds is not None:
            out["open_fds"] = fds
        for gen, count in enumerate(gc.get_count()):
            out[f"gc.gen{gen}"] = count
        out["gc.collections"] = sum(s["collections"] for s in gc.get_stats())
        return out

    def emit(self) -> None:
        """Sample and send one round of gauges."""
        for name, value in self.sample().items():
            _facade.record(Gauge(f"{self.prefix}.{name}", value))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.emit()
            except Exception as e:  # never let the thread die silently
                logger.warning("fxa_metrics: process gauges failed: %r", e)

    def start(self) -> ProcessGauges:
        with _gauges_lock:
            _gauges.append(self)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with _gauges_lock:
            if self in _gauges:
                _gauges.remove(self)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


_gauges: list[ProcessGauges] = []
_gauges_lock = threading.Lock()


def start_process_gauges(interval: float = 10.0, prefix: str = "process") -> ProcessGauges:
    """Send process gauges to statsd every ``interval`` seconds; ``fm.reset()`` stops them."""
    return ProcessGauges(interval, prefix).start()


def _stop_all() -> None:
    with _gauges_lock:
        running = list(_gauges)
    for g in running:
        g.stop()


_facade.RESET_HOOKS.append(_stop_all)
