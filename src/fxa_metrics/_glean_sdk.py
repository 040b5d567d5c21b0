"""The glean-sdk route: service-level Glean metrics through Mozilla's official SDK.

The server route (``_glean``) cannot express counters or distributions: it
writes one self-contained ping per event. Those types go here, to
``glean-sdk`` (the optional ``glean-sdk`` extra), which aggregates them and
uploads pings itself. Which metric goes where follows from its *type* in
metrics.yaml (``_definitions.route_of``); a caller never chooses.

What glean-sdk 71 is, measured (DESIGN 3.5), decides the shape of this module:

* one ``client_id`` and one collection switch per process and data directory:
  so this route carries service-level data only (the definitions refuse
  identifying metrics), never sees the request's user context, and its only
  consent is the service switch, applied before the sink (``_consent.gate``);
* not fork-safe: initialised before ``fork()`` the children hang. So the SDK
  starts lazily, on a background thread, in the process that records, with
  its own data directory ``<base>/<pid>``. Until it is up, records wait in a
  bounded queue (beyond it: dropped and counted). A child forked from a
  process whose SDK had started drops and counts instead of touching it;
* collection off with ``allow_multiprocessing=False`` deadlocked 3 of 3 runs:
  we keep uploads in the SDK's subprocess (``allow_multiprocessing=True``)
  and never switch collection off (a disabled service never starts the SDK);
* one subprocess per upload (~1.2 s), which can strand a ping submitted while
  the previous upload runs: every tick and every flush re-triggers an upload
  while pings are pending on disk.

Pings are submitted every ``glean_sdk_ping_interval`` seconds and at
shutdown (``reset()``/exit) with a bounded wait. Pings still pending then stay
on disk; the next process to start with the same base directory adopts the
pending pings of dead processes' directories and uploads them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import attrs

from ._definitions import GLEAN_SDK_ROUTE, Definitions, MetricDef, load
from ._errors import (
    DisabledMetricError,
    ExpiredMetricError,
    InvalidRecordError,
    InvalidValueError,
    UndefinedMetricError,
)
from ._records import GleanMetric
from ._sink import Sink
from ._stats import Stats, logger

# Drop reasons (stats().drops) of this route.
QUEUE_FULL = "glean_sdk_queue_full"  # the pre-start queue was full
FORKED = "glean_sdk_forked"  # recorded in a child forked after the SDK started
START_FAILED = "glean_sdk_start_failed"  # the SDK could not start in this process
CLOSED = "glean_sdk_closed"  # recorded after close()
UPLOAD_REJECTED = "glean_sdk_upload_rejected"  # the endpoint refused a ping for good
# Error reasons (stats().errors): nothing lost (yet).
UPLOAD_RETRY = "glean_sdk_upload_retry"  # an upload failed and will be retried
PENDING_AT_CLOSE = "glean_sdk_pending_at_close"  # left on disk for the next start
STOP_TIMEOUT = "glean_sdk_stop_timeout"  # the SDK's own shutdown outlived close()

# The file, in each data directory, where the upload subprocesses append one
# line per attempt ("<document id> <ping> <result>"): how the recording
# process counts deliveries made by another process.
UPLOAD_LOG = "fxa_metrics_uploads.log"
PENDING_DIR = "pending_pings"

# The least time glean-sdk's own shutdown is given, even past a close() deadline.
_MIN_STOP = 0.5
# A previous start's upload subprocess gets this long before a new start (the
# uploader's own socket timeout is 5 s per operation).
_START_UPLOAD_WAIT = 15.0
_MAX_INT = 2**63 - 1
_MAX_COUNTER = 2**31 - 1  # Glean counters are 32-bit and saturate there
# Nanoseconds per glean_parser time unit (timespan values are set in nanoseconds).
_NANOS = {
    "nanosecond": 1,
    "microsecond": 1_000,
    "millisecond": 1_000_000,
    "second": 1_000_000_000,
    "minute": 60_000_000_000,
    "hour": 3_600_000_000_000,
    "day": 86_400_000_000_000,
}


class SdkSample(NamedTuple):
    """A checked glean-sdk record: what the sinks of this route receive (immutable)."""

    identifier: str
    type: str
    value: Any  # int; (numerator, denominator) for a rate
    label: str | None = None

    @property
    def name(self) -> str:  # how drop counters name it
        return self.identifier


# ------------------------------------------------------------------ the check


_CALL_KEYWORDS = frozenset({"value", "label"})
# For the last Definitions seen: the checked sample of record(name) for each
# live counter (immutable, so shared). One tuple, swapped whole, so a thread
# never pairs one Definitions with another's table.
_unit: tuple[Definitions | None, dict[str, SdkSample]] = (None, {})


def _unit_samples(defs: Definitions) -> dict[str, SdkSample]:
    global _unit
    table = {
        md.identifier: SdkSample(md.identifier, "counter", 1)
        for md in defs.metrics.values()
        if md.type == "counter" and md.route == GLEAN_SDK_ROUTE and not md.expired
        if not md.disabled
    }
    _unit = (defs, table)
    return table


def from_call(
    defs: Definitions, name: Any, extra: Mapping[str, Any] | None, kwargs: Mapping[str, Any]
) -> SdkSample | None:
    """``record("cat.name", value=..., label=...)`` of an SDK metric, checked; else None.

    None when ``name`` is not a metric name the definitions send by this route:
    the facade then goes on as before (a server-route Event, a record object).
    This is the route's hot path, so it checks the fields directly instead of
    building a GleanMetric first.
    """
    if type(name) is not str:
        return None
    if extra is None and not kwargs:
        # record("cat.counter"): the commonest call, answered from a table.
        known, table = _unit
        unit = (table if known is defs else _unit_samples(defs)).get(name)
        if unit is not None:
            return unit
    md = defs.metrics.get(name)
    if md is None or md.route != GLEAN_SDK_ROUTE:
        return None
    if extra is not None or (kwargs and not _CALL_KEYWORDS.issuperset(kwargs)):
        field = "extra" if extra is not None else sorted(set(kwargs) - _CALL_KEYWORDS)[0]
        raise InvalidRecordError(
            name, field, f"a {md.type} metric takes value= and label= only (glean-sdk route)"
        )
    return _check_fields(md, kwargs.get("value"), kwargs.get("label"))


def _int(md: MetricDef, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidValueError(
            md.identifier, "value", f"must be an int, got {type(value).__name__}"
        )
    if not low <= value <= high:
        raise InvalidValueError(md.identifier, "value", f"must be in {low}..{high}, got {value}")
    return value


def _duration(md: MetricDef, value: Any) -> int:
    """A time in the metric's time_unit (int or float), as an int of that unit."""
    if isinstance(value, float) and value == value and 0 <= value <= _MAX_INT:
        return round(value)
    return _int(md, value, 0, _MAX_INT)


def _rate(md: MetricDef, value: Any) -> tuple[int, int]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise InvalidValueError(
            md.identifier, "value", "must be a (numerator, denominator) tuple of ints"
        )
    return _int(md, value[0], 0, _MAX_COUNTER), _int(md, value[1], 0, _MAX_COUNTER)


def _check_value(md: MetricDef, value: Any) -> Any:
    kind = md.type
    if kind in ("counter", "labeled_counter"):
        return _int(md, 1 if value is None else value, 1, _MAX_COUNTER)
    if value is None:
        raise InvalidValueError(md.identifier, "value", f"is required for a {kind} metric")
    if kind in ("timing_distribution", "timespan"):
        return _duration(md, value)
    if kind == "rate":
        return _rate(md, value)
    # memory_distribution, custom_distribution: one non-negative sample.
    return _int(md, value, 0, _MAX_INT)


def _check_label(md: MetricDef, label: Any) -> str | None:
    labels = md.sdk.labels if md.sdk is not None else None
    if labels is None:
        if label is not None:
            raise InvalidValueError(md.identifier, "label", f"a {md.type} metric has no labels")
        return None
    if label not in labels:
        raise InvalidValueError(
            md.identifier, "label", f"{label!r} is not one of its labels ({', '.join(labels)})"
        )
    return str(label)


def _check_fields(md: MetricDef, value: Any, label: Any) -> SdkSample:
    if md.expired:
        raise ExpiredMetricError(md.identifier, None, f"expired ({md.expires}); not sent")
    if md.disabled:
        raise DisabledMetricError(md.identifier, None, "is disabled: true; not sent")
    if label is not None or md.type == "labeled_counter":
        label = _check_label(md, label)
    if value is None and md.type == "counter":
        return SdkSample(md.identifier, "counter", 1)  # the common case, checked
    return SdkSample(md.identifier, md.type, _check_value(md, value), label)


def check(defs: Definitions, rec: GleanMetric) -> SdkSample:
    """The definitions check of this route: defined, an SDK type, live, label allowed, in range."""
    md = defs.metrics.get(rec.name) if isinstance(rec.name, str) else None
    if md is None:
        raise UndefinedMetricError(str(rec.name), None, "is not defined in the loaded metrics.yaml")
    if md.route != GLEAN_SDK_ROUTE:
        raise InvalidValueError(
            md.identifier,
            None,
            f"is a {md.type} metric of the Glean server route; record it with "
            "fxa_metrics.Event or fxa_metrics.Metrics, not GleanMetric",
        )
    return _check_fields(md, rec.value, rec.label)


def prepare(rt: Any, rec: GleanMetric, ctx: Any) -> SdkSample:
    """The facade's hook (record kind GleanMetric): the check, with no request context at all."""
    return check(rt.defs, rec)


# ------------------------------------------------------------------ settings


@attrs.frozen(kw_only=True)
class SdkConfig:
    """What the sink needs from ``configure()`` (see the ``glean_sdk_*`` settings)."""

    app_id: str
    app_version: str
    channel: str
    base_dir: str  # each process uses <base_dir>/<pid>
    server_endpoint: str | None  # None: Glean's production endpoint
    ping_interval: float  # seconds between submissions of every SDK ping
    queue_size: int  # records held while the SDK starts
    pings_yaml: tuple[str, ...] = ()
    metrics_yaml: tuple[str, ...] = ()
    # Bound on close() when the caller gives none (atexit): submit, then wait for uploads.
    shutdown_timeout: float = 5.0


def default_base_dir(app_id: str) -> str:
    return os.path.join(tempfile.gettempdir(), "fxa-metrics-glean-sdk", app_id)


def config_from_settings(settings: Any) -> SdkConfig:
    return SdkConfig(
        app_id=settings.app_id,
        app_version=settings.app_version,
        channel=settings.channel,
        base_dir=settings.glean_sdk_data_dir or default_base_dir(settings.app_id),
        server_endpoint=settings.glean_sdk_server_endpoint,
        ping_interval=settings.glean_sdk_ping_interval,
        queue_size=settings.glean_sdk_queue_size,
        pings_yaml=tuple(settings.pings_yaml),
        metrics_yaml=tuple(settings.metrics_yaml),
        shutdown_timeout=settings.glean_sdk_shutdown_timeout,
    )


# ------------------------------------------------------------------ data directories


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def adopt_orphans(base: Path, own: Path) -> int:
    """Move the pending pings of dead processes' directories into ``own``; how many moved.

    A rename is atomic, so two processes adopting at once never both take (and
    upload) one ping. The dead directory is removed once emptied.
    """
    moved = 0
    target = own / PENDING_DIR
    for sibling in base.iterdir() if base.is_dir() else ():
        if sibling == own or not sibling.name.isdigit() or _alive(int(sibling.name)):
            continue
        pending = sibling / PENDING_DIR
        for ping in pending.iterdir() if pending.is_dir() else ():
            target.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # another process adopted it first
                os.rename(ping, target / ping.name)
                moved += 1
        shutil.rmtree(sibling, ignore_errors=True)
    return moved


def pending_count(data_dir: Path) -> int:
    try:
        return sum(1 for _ in (data_dir / PENDING_DIR).iterdir())
    except OSError:
        return 0


class UploadLog:
    """Reads the lines the upload subprocesses append, from where it last stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._offset = path.stat().st_size  # earlier lines were counted by an earlier run
        except OSError:
            self._offset = 0

    def read(self) -> list[tuple[str, str, str]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        self._offset += end
        out = []
        for line in data[:end].decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((parts[0], parts[1], parts[2]))
        return out


# ------------------------------------------------------------------ the live SDK


Applier = Callable[[Any, "str | None"], None]


def _applier(md: MetricDef, gm: Any) -> Applier:
    """The glean-sdk metric object for ``md``, as a function of (value, label)."""
    lifetime = {"ping": gm.Lifetime.PING, "application": gm.Lifetime.APPLICATION}[md.lifetime]
    meta = gm.CommonMetricData(
        category=md.category,
        name=md.name,
        send_in_pings=list(md.pings),
        lifetime=lifetime,
        disabled=md.disabled,
    )
    params = md.sdk
    assert params is not None
    kind = md.type
    if kind == "counter":
        add = gm.CounterMetricType(meta).add
        return lambda value, _label: add(value)
    if kind == "labeled_counter":
        labeled = gm.LabeledCounterMetricType(
            gm.LabeledMetricData.COMMON(meta), set(params.labels or ())
        )
        by_label = {label: labeled[label].add for label in params.labels or ()}
        return lambda value, label: by_label[label or ""](value)
    if kind == "timing_distribution":
        unit = getattr(gm.TimeUnit, (params.time_unit or "nanosecond").upper())
        sample = gm.TimingDistributionMetricType(meta, unit).accumulate_single_sample
        return lambda value, _label: sample(value)
    if kind == "memory_distribution":
        unit = getattr(gm.MemoryUnit, (params.memory_unit or "byte").upper())
        mem = gm.MemoryDistributionMetricType(meta, unit).accumulate
        return lambda value, _label: mem(value)
    if kind == "custom_distribution":
        histogram = getattr(gm.HistogramType, (params.histogram_type or "exponential").upper())
        custom = gm.CustomDistributionMetricType(
            meta, params.range_min or 0, params.range_max or 1, params.bucket_count or 1, histogram
        ).accumulate_single_sample
        return lambda value, _label: custom(value)
    if kind == "timespan":
        unit = params.time_unit or "millisecond"
        span = gm.TimespanMetricType(meta, getattr(gm.TimeUnit, unit.upper()))
        nanos = _NANOS[unit]
        return lambda value, _label: span.set_raw_nanos(value * nanos)
    # rate
    rate = gm.RateMetricType(meta)

    def add_rate(value: tuple[int, int], _label: str | None) -> None:
        rate.add_to_numerator(value[0])
        rate.add_to_denominator(value[1])

    return add_rate


# glean-sdk is one per process: a sink started after a reconfiguration waits
# (bounded) for the previous sink to let it go.
_owner = threading.Condition()
_owned = False
_OWNER_WAIT = 10.0


def _acquire_sdk() -> None:
    global _owned
    with _owner:
        if not _owner.wait_for(lambda: not _owned, _OWNER_WAIT):
            raise RuntimeError("glean-sdk is still held by a previous configuration")
        _owned = True


def _fresh_locks() -> None:
    # In a forked child: a lock held at fork() time would never be released.
    global _owner, _dispatch_lock
    _owner = threading.Condition()
    _dispatch_lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks)


def _release_sdk() -> None:
    global _owned
    with _owner:
        _owned = False
        _owner.notify_all()


_dispatch_lock = threading.Lock()


def _serialize_dispatch() -> None:
    """Make glean-sdk's "one upload subprocess at a time" hold across threads.

    ``ProcessDispatcher.dispatch`` checks for a running upload and then spawns
    one, unlocked. The SDK calls it from its own thread after each submission,
    and we call it to re-trigger stranded pings: unserialised, both could spawn
    an upload of the same pending ping (a duplicate at the pipeline). Measured:
    it happened on a restart that adopted a pending ping.
    """
    from glean._process_dispatcher import ProcessDispatcher

    if getattr(ProcessDispatcher, "_fxa_metrics_serialized", False):
        return
    original = ProcessDispatcher.dispatch.__func__

    def dispatch(cls: Any, func: Any, args: Any) -> Any:
        with _dispatch_lock:
            return original(cls, func, args)

    ProcessDispatcher.dispatch = classmethod(dispatch)
    ProcessDispatcher._fxa_metrics_serialized = True


def _wait_for_upload(timeout: float) -> None:
    """Let an upload subprocess of a previous start in this process finish first (bounded)."""
    from glean._process_dispatcher import ProcessDispatcher

    last = ProcessDispatcher._last_process
    if last is not None:
        with contextlib.suppress(Exception):
            last.wait(timeout)


class _Live:
    """The SDK as started in one process: its data directory, metrics and pings."""

    def __init__(self, cfg: SdkConfig, defs: Definitions) -> None:
        _acquire_sdk()
        try:
            self._start(cfg, defs)
        except BaseException:
            _release_sdk()
            raise

    def _start(self, cfg: SdkConfig, defs: Definitions) -> None:
        from glean import Configuration, Glean
        from glean import metrics as gm

        from ._glean_sdk_upload import CountingUploader

        self.glean = Glean
        _serialize_dispatch()
        _wait_for_upload(_START_UPLOAD_WAIT)
        self.data_dir = Path(cfg.base_dir) / str(os.getpid())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.adopted = adopt_orphans(Path(cfg.base_dir), self.data_dir)
        self.log = UploadLog(self.data_dir / UPLOAD_LOG)
        config = Configuration(
            server_endpoint=cfg.server_endpoint,
            channel=cfg.channel,
            ping_uploader=CountingUploader(str(self.data_dir / UPLOAD_LOG)),
            # Uploads in the SDK's subprocess: never the in-process mode, which
            # deadlocked with collection off (we never switch it off either).
            allow_multiprocessing=True,
            # Only the pings this service defines: no SDK health pings.
            enable_internal_pings=False,
        )
        Glean.initialize(
            application_id=cfg.app_id,
            application_version=cfg.app_version,
            upload_enabled=True,
            configuration=config,
            data_dir=self.data_dir,
        )
        # Its shutdown is ours (stop()): at exit, the SDK's own hook would run
        # before the sink's (registered earlier) and destroy it before the
        # shutdown submission.
        atexit.unregister(Glean._reset)
        self.appliers: dict[str, Applier] = {
            md.identifier: _applier(md, gm)
            for md in defs.metrics.values()
            if md.route == GLEAN_SDK_ROUTE
        }
        self.pings = self._pings(defs, cfg)

    @staticmethod
    def _pings(defs: Definitions, cfg: SdkConfig) -> dict[str, Any]:
        """Fresh ping objects, registered with *this* start of the SDK.

        A ping object registers itself with the SDK it was made under: after a
        restart in the same process (reconfiguration, tests) the old objects,
        glean's own ``_builtins`` included, submit into nothing.
        """
        import glean
        from glean import load_pings

        builtin: Any = None
        custom: Any = None
        out = {}
        for name in defs.sdk_pings:
            if name in ("metrics", "events"):
                if builtin is None:
                    own = Path(glean.__file__).parent / "pings.yaml"
                    builtin = load_pings(own, config={"allow_reserved": True})
                out[name] = getattr(builtin, name)
            else:
                if custom is None:
                    custom = load_pings(list(cfg.pings_yaml))
                out[name] = getattr(custom, name.replace("-", "_"))
        return out

    def submit(self, names: set[str]) -> int:
        """Submit these pings (in definition order); how many."""
        done = 0
        for name, ping in self.pings.items():
            if name in names:
                ping.submit()
                done += 1
        return done

    def kick_upload(self) -> None:
        """Start an upload subprocess if pings are pending and none runs (no stranded pings)."""
        from glean.net.ping_upload_worker import PingUploadWorker

        if pending_count(self.data_dir):
            # dispatch() itself returns the running upload, if any (atomically:
            # see _serialize_dispatch).
            PingUploadWorker.process()

    def uploading(self) -> bool:
        from glean._process_dispatcher import ProcessDispatcher

        last = ProcessDispatcher._last_process
        return last is not None and last.poll() is None

    def stop(self, deadline: float) -> bool:
        """Wait (until ``deadline``) for the running upload, then let the SDK go; True if it did.

        glean-sdk's shutdown waits for its own thread to write every queued
        record first, unbounded (a busy service can have tens of thousands
        queued): it runs on a helper thread, and we wait for it until the
        deadline (at least _MIN_STOP). A later start waits for it to finish.
        """
        _wait_for_upload(_left(deadline))
        atexit.unregister(self.glean._reset)

        def reset() -> None:
            try:
                self.glean._reset()
            finally:
                _release_sdk()

        helper = threading.Thread(target=reset, name="fxa-metrics-glean-sdk-stop", daemon=True)
        helper.start()
        helper.join(max(_left(deadline), _MIN_STOP))
        return not helper.is_alive()


# ------------------------------------------------------------------ the sink


class GleanSdkSink(Sink):
    """Sends SdkSamples through glean-sdk, started lazily in the recording process."""

    def __init__(
        self, cfg: SdkConfig, defs: Definitions | None = None, stats: Stats | None = None
    ) -> None:
        self.cfg = cfg
        # The definitions, parsed again on the start thread when not given (the
        # route table builds sinks from the settings alone), off the request path.
        self.defs = defs
        self.stats = stats or Stats()
        self.counts: dict[str, int] = {}
        self._reset_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def attach(self, stats: Stats) -> None:
        """Count on the runtime's stats (the facade calls this once the runtime exists)."""
        self.stats = stats

    def _reset_state(self) -> None:
        self._lock = threading.Lock()
        self._appliers: dict[str, Applier] | None = None
        self._live: _Live | None = None
        self._queue: list[SdkSample] = []
        # Metrics recorded since their pings were last submitted. A ping is
        # submitted only when one of its metrics has data: glean-sdk adds its
        # own pings_submitted counter to the metrics ping, so an idle service
        # would otherwise upload a near-empty ping every interval.
        self._dirty: set[str] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._dead: str | None = None  # a drop reason: this process cannot use the SDK

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    # -- recording

    def emit(self, record: SdkSample) -> None:
        appliers = self._appliers
        if appliers is not None:
            ident = record.identifier
            appliers[ident](record.value, record.label)
            self._dirty.add(ident)
            return
        self._emit_slow(record)

    def _emit_slow(self, record: SdkSample) -> None:
        with self._lock:
            if self._appliers is not None:
                self._appliers[record.identifier](record.value, record.label)
                self._dirty.add(record.identifier)
                return
            if self._dead is not None or len(self._queue) >= self.cfg.queue_size:
                reason = self._dead or QUEUE_FULL
            else:
                self._queue.append(record)
                if self._thread is None:
                    # The exit hook first: a process told to stop while the SDK is
                    # still starting must wait for it (bounded) and submit, not
                    # exit under a thread that is inside the SDK.
                    atexit.register(self._at_exit)
                    self._thread = threading.Thread(
                        target=self._run, name="fxa-metrics-glean-sdk", daemon=True
                    )
                    self._thread.start()
                return
        self.stats.drop(reason, record.identifier)

    # -- the background thread: start, then submit on the interval

    def _run(self) -> None:
        try:
            if self.defs is None:
                self.defs = load(
                    self.cfg.metrics_yaml, self.cfg.pings_yaml, app_version=self.cfg.app_version
                )
            live = _Live(self.cfg, self.defs)
        except Exception as e:
            self._fail(e)
            return
        with self._lock:
            for rec in self._queue:
                live.appliers[rec.identifier](rec.value, rec.label)
                self._dirty.add(rec.identifier)
            self._queue.clear()
            self._live = live
            self._appliers = live.appliers
        self._count("adopted", live.adopted)
        self._started.set()
        if live.adopted:
            live.kick_upload()
        while not self._stop.wait(self.cfg.ping_interval):
            self._tick(live)

    def _fail(self, e: Exception) -> None:
        with self._lock:
            lost, self._queue = self._queue, []
            self._dead = START_FAILED
        self.stats.error(START_FAILED, "glean_sdk", repr(e))
        self.stats.keep(e)
        for rec in lost:
            self.stats.drop(START_FAILED, rec.identifier)
        self._started.set()

    def _tick(self, live: _Live) -> None:
        try:
            self._submit(live)
            live.kick_upload()
            self._read_log(live)
        except Exception as e:  # the next tick tries again
            self.stats.error("sink_error", "glean_sdk", repr(e))
            self.stats.keep(e)

    def _read_log(self, live: _Live) -> None:
        for _doc, ping, result in live.log.read():
            self._count(result)
            if result == "retry":
                self.stats.error(UPLOAD_RETRY, ping)
            elif result == "rejected":
                self.stats.drop(UPLOAD_REJECTED, ping)

    # -- flush and close, bounded

    def flush(self, timeout: float | None = None) -> None:
        """Submit every SDK ping with new data and wait (bounded) until nothing is pending."""
        self._flush(timeout, drain_anyway=True)

    def _flush(self, timeout: float | None, drain_anyway: bool) -> int:
        deadline = time.monotonic() + (self.cfg.shutdown_timeout if timeout is None else timeout)
        if self._thread is None or not self._started.wait(_left(deadline)):
            return 0
        live = self._live
        if live is None:
            return 0
        submitted = self._submit(live)
        if not (submitted or drain_anyway):
            # close() right after a flush (the facade does both): the wait was had.
            self._read_log(live)
            return 0
        if submitted:
            # Submitting hands the ping to the SDK's own thread, which writes it
            # after everything queued before it (seconds, on a busy machine): wait
            # until it is on disk, uploading or uploaded, then drain.
            before = self.counts.get("delivered", 0) + self.counts.get("rejected", 0)
            while not (pending_count(live.data_dir) or live.uploading()):
                self._read_log(live)
                done = self.counts.get("delivered", 0) + self.counts.get("rejected", 0)
                if done > before or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
        self._drain(live, deadline)
        return submitted

    def _submit(self, live: _Live) -> int:
        # Swap, then read: a record racing the swap only delays its flag (its
        # value is in the SDK already and goes with the ping's next submission).
        dirty, self._dirty = self._dirty, set()
        metrics = self.defs.metrics if self.defs is not None else {}
        names = {ping for ident in dirty for ping in metrics[ident].pings}
        done = live.submit(names)
        self._count("submitted", done)
        return done

    def _drain(self, live: _Live, deadline: float) -> None:
        while time.monotonic() < deadline:
            live.kick_upload()
            self._read_log(live)
            if not pending_count(live.data_dir) and not live.uploading():
                break
            time.sleep(min(0.05, _left(deadline)))
        self._read_log(live)

    def pending(self) -> int:
        """Pings waiting on disk in this process's data directory (0 before the SDK started)."""
        live = self._live
        return pending_count(live.data_dir) if live is not None else 0

    def close(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.cfg.shutdown_timeout if timeout is None else timeout)
        submitted = self._flush(_left(deadline), drain_anyway=False)
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_left(deadline))
        with self._lock:
            live, self._live, self._appliers = self._live, None, None
            self._dead = CLOSED
            lost, self._queue = self._queue, []
        for rec in lost:
            self.stats.drop(CLOSED, rec.identifier)
        atexit.unregister(self._at_exit)
        if live is None:
            return
        # Wait for a running upload only for what this close() submitted; the
        # next start in this process waits for it otherwise (no double upload).
        # Stopping the SDK also finishes writing what was submitted to disk.
        if not live.stop(deadline if submitted else time.monotonic()):
            # Records still queued inside the SDK may not reach its database.
            self.stats.error(STOP_TIMEOUT, "glean_sdk", "glean-sdk's shutdown outlived close()")
        self._read_log(live)
        left = pending_count(live.data_dir)
        if left:
            # Not lost: the next start with this base directory uploads them.
            self.stats.error(PENDING_AT_CLOSE, "glean_sdk", f"{left} ping(s) left on disk")
            self._count("pending_at_close", left)

    def _at_exit(self) -> None:
        try:
            self.close(self.cfg.shutdown_timeout)
        except Exception as e:  # exiting: log, never raise
            logger.warning("fxa_metrics: closing the glean-sdk route at exit failed: %r", e)

    def __repr__(self) -> str:
        return f"GleanSdkSink({self.cfg.base_dir!r})"


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _after_fork(ref: weakref.ref[GleanSdkSink]) -> None:
    """In a forked child: a fresh state; an SDK the parent had started is unusable here."""
    sink = ref()
    if sink is None:
        return
    inherited = sink._live
    sink._reset_state()
    glean = sys.modules.get("glean.glean")
    if inherited is None and glean is not None and glean.Glean.is_initialized():
        sink._dead = FORKED  # forked while the parent's SDK was starting
    if inherited is not None:
        # Its threads did not survive fork(): touching it would hang. Drop and
        # count instead, and keep the SDK's own exit hook from waiting on it.
        sink._dead = FORKED
        atexit.unregister(inherited.glean._reset)
        atexit.unregister(sink._at_exit)


class MemorySdkSink(Sink):
    """This route's in-memory sink for tests: keeps every SdkSample, starts no SDK."""

    def __init__(self) -> None:
        self.samples: list[SdkSample] = []
        self._lock = threading.Lock()

    def emit(self, record: SdkSample) -> None:
        with self._lock:
            self.samples.append(record)

    def counter(self, name: str, label: str | None = None) -> int:
        """The sum a counter (or one label of a labeled_counter) would report."""
        with self._lock:
            return sum(
                s.value
                for s in self.samples
                if s.identifier == name and (label is None or s.label == label)
            )


def sinks_from_settings(settings: Any, built: Any = None) -> list[Sink]:
    """The route's sink factory (the route table's signature). Starts nothing: see emit()."""
    return [GleanSdkSink(config_from_settings(settings))]
