"""MozLog 2.0 (Dockerflow's application log format) through stdlib logging.

Why our own formatter: dockerflow's ``MozlogFormatter`` is the reference, and
tests/test_mozlog.py proves ours emits the same fields with the same values for
the same ``LogRecord``. Ours is faster (orjson, no per-record attribute scan
against a set) and always writes valid JSON: dockerflow's ``json.dumps``
writes ``NaN``/``Infinity`` for non-finite floats, which no JSON parser in the
pipeline accepts; we write ``null`` there.

Two ways out, chosen once at ``configure()`` (``mozlog_handler``):

* ``"own"``: we format the line ourselves and write it in one ``os.write``
  (``_output``), whatever the host did to logging. A plain
  ``logging.basicConfig()`` would otherwise print ``INFO:request.summary:``
  with every field lost. Levels set by the host on a logger named by the
  ``Type`` are still honoured; host handlers do not see these lines (so each
  line is written exactly once).
* ``"host"``: a ``LogRecord`` on the logger named by its ``Type`` (Dockerflow's
  convention, e.g. ``request.summary``), through the host's handlers, levels,
  filters and pytest's ``caplog``. Right when the host's handlers format
  MozLog themselves (dockerflow's ``JsonLogFormatter``, our ``MozLogFormatter``).
* ``"auto"`` (the default) picks ``"host"`` when every handler on the root
  logger already has such a formatter, ``"own"`` otherwise. ``"always"`` and
  ``"never"`` are the older names of ``"own"`` and ``"host"``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import IO, Any

import orjson

from ._config import Settings
from ._errors import InvalidRecordError
from ._frozen import freeze
from ._output import DEFAULT_WRITE_TIMEOUT, LineWriter
from ._records import Log
from ._sink import Sink, SinkDrop

SYSLOG_LEVEL_MAP = {50: 2, 40: 3, 30: 4, 20: 6, 10: 7}
DEFAULT_SYSLOG_LEVEL = 7

# The LogRecord attributes that are logging's own, not caller fields (as Dockerflow).
_EXCLUDED = frozenset(
    {
        "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName",
        "levelname", "levelno", "lineno", "logger_name", "message", "module", "msecs",
        "msg", "name", "pathname", "process", "processName", "relativeCreated",
        "stack_info", "taskName", "thread", "threadName",
    }
)  # fmt: skip
_PLAIN = (str, int, float, bool, type(None))


def _json_like(value: Any) -> Any:
    """Mirror ``json.JSONEncoder`` with a ``repr`` fallback (Dockerflow's SafeJSONEncoder).

    orjson natively encodes types that json does not (UUID, datetime, Enum,
    dataclasses); Dockerflow writes ``repr()`` of those, so we convert first.
    Plain JSON values pass through untouched, so the common case costs a type check.
    """
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_key(k): _json_like(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_like(v) for v in value]
    # Subclasses: json writes the built-in value and ignores overridden
    # __str__/__int__/__float__ (a ``class Mode(str, Enum)`` member is written
    # as its value, although str() gives "Mode.FAST"), so take the base
    # type's own conversion. bool is handled above.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value) if math.isfinite(value) else None
    return repr(value)


def _key(k: Any) -> str:
    # json.dumps' key coercion: str as is, True/False/None as JSON words, numbers as text.
    if isinstance(k, str):
        return str.__str__(k)  # the str data, as json writes a str-subclass key
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int | float):
        return json.dumps(k)
    return repr(k)


def safer_format_traceback(exc_typ: Any, exc_val: Any, exc_tb: Any) -> str:
    """Dockerflow's traceback text: exception data through ``repr`` so it cannot forge lines."""
    lines = ["Uncaught exception:\n"]
    lines.extend(traceback.format_tb(exc_tb))
    lines.append(f"{exc_typ!r}\n")
    lines.append(f"{exc_val!r}\n")
    return "".join(lines)


class MozLogFormatter(logging.Formatter):
    """Format a LogRecord as one MozLog 2.0 JSON line (``Type`` = the logger name)."""

    def __init__(self, logger_name: str = "Dockerflow", hostname: str | None = None) -> None:
        super().__init__()
        self.logger_name = logger_name
        self.hostname = hostname or socket.gethostname()

    def convert_record(self, record: logging.LogRecord) -> dict[str, Any]:
        fields = {k: v for k, v in record.__dict__.items() if k not in _EXCLUDED}
        for key, value in fields.items():
            if type(value) not in _PLAIN:
                fields[key] = _json_like(value)  # same keys: safe while iterating
        message = record.getMessage()
        if message and not (message.startswith("{") and message.endswith("}")):
            fields["msg"] = message
        if record.exc_info:
            fields["error"] = repr(record.exc_info[1])
            fields["traceback"] = safer_format_traceback(*record.exc_info)
        return {
            "Timestamp": int(record.created * 1e9),
            "Type": record.name,
            "Logger": getattr(record, "logger_name", self.logger_name),
            "Hostname": self.hostname,
            "EnvVersion": "2.0",
            "Severity": SYSLOG_LEVEL_MAP.get(record.levelno, DEFAULT_SYSLOG_LEVEL),
            "Pid": record.process,
            "Fields": fields,
        }

    def format(self, record: logging.LogRecord) -> str:
        out = self.convert_record(record)
        try:
            return orjson.dumps(out).decode()
        except (TypeError, orjson.JSONEncodeError):
            # e.g. an int wider than 64 bits: stdlib json handles what orjson cannot.
            return json.dumps(_json_like(out))


class MozLogHandler(logging.Handler):
    """A logging handler that writes each record as one MozLog line, in one ``os.write``.

    For hosts that route their own loggers to MozLog too: ``stream=None``
    follows ``sys.stdout`` (pytest's capture, a redirected stdout), writing to
    fd 1 directly while it is the real stdout.
    """

    def __init__(
        self,
        logger_name: str,
        stream: IO[str] | None = None,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> None:
        super().__init__()
        self.setFormatter(MozLogFormatter(logger_name))
        self._writer = LineWriter(stream, write_timeout)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.write(self.format(record).encode() + b"\n")
        except Exception:
            self.handleError(record)


_PATHNAME = "(fxa_metrics)"


def _custom_make_record(logger: logging.Logger) -> bool:
    return type(logger).makeRecord is not logging.Logger.makeRecord


class _RecordTemplate:
    """What ``LogRecord.__init__`` computes that does not change from call to call.

    Building a LogRecord is a third of a MozLog line's cost: it looks up the
    process name, splits the path, reads the clock and the thread. We build
    one real record once, copy its attributes, and per call set only what
    varies (name, level, message, time, thread), so the record is attribute
    for attribute what ``logger.makeRecord`` would have produced.
    """

    attrs: dict[str, Any] = {}
    pid = 0

    @classmethod
    def refresh(cls) -> None:
        rec = logging.LogRecord("fxa_metrics", logging.INFO, _PATHNAME, 0, "", (), None)
        cls.attrs = dict(rec.__dict__)
        cls.pid = os.getpid()


_RecordTemplate.refresh()
# processName/pid differ in a forked worker (gunicorn pre-fork).
os.register_at_fork(after_in_child=_RecordTemplate.refresh)


def _fast_record(name: str, level: int, msg: str, fields: Mapping[str, Any]) -> logging.LogRecord:
    rec = logging.LogRecord.__new__(logging.LogRecord)
    d = rec.__dict__
    d.update(_RecordTemplate.attrs)
    created = time.time()
    d["name"] = name
    d["msg"] = msg
    d["levelno"] = level
    d["levelname"] = logging.getLevelName(level)
    d["created"] = created
    d["msecs"] = int((created - int(created)) * 1000) + 0.0
    d["relativeCreated"] = (created - _START_TIME) * 1000
    if logging.logThreads:
        d["thread"] = threading.get_ident()
        d["threadName"] = threading.current_thread().name
    d.update(fields)
    return rec


_START_TIME: float = getattr(logging, "_startTime", time.time())


# ------------------------------------------------------------------ the check


# LogRecord attributes a MozLog field may not shadow: logging itself would raise KeyError.
_RESERVED_LOG_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Environment fields every MozLog line carries (staging vs production is
# explicit); the sink adds them, so a caller's field may not shadow them.
ENV_LOG_FIELDS = ("app_id", "app_channel")
_FORBIDDEN_LOG_FIELDS = _RESERVED_LOG_FIELDS | frozenset(ENV_LOG_FIELDS)
# A field value longer than this is cut (and counted): one runaway field must
# not turn into a 10 MB line in the log pipeline.
MAX_FIELD_CHARS = 8192
# A whole line past this is dropped and counted (nested data the caps above cannot see).
MAX_LINE_BYTES = 256 * 1024

OverflowHook = Callable[[str, str | None, int], None]


def _check_keys(rec: Log) -> None:
    for key in rec.fields:
        if not isinstance(key, str):
            raise InvalidRecordError(rec.type, repr(key), "MozLog field names must be str")
        if key in _RESERVED_LOG_FIELDS:
            raise InvalidRecordError(
                rec.type, key, "shadows a stdlib LogRecord attribute; rename the field"
            )
        if key in ENV_LOG_FIELDS:
            raise InvalidRecordError(
                rec.type, key, "is set by fxa_metrics (the environment); rename the field"
            )


def _cap_fields(rec: Log, overflow: OverflowHook) -> Mapping[str, Any]:
    """Fields with long strings cut and nested containers frozen (None if nothing changed)."""
    out: dict[str, Any] | None = None
    for key, value in rec.fields.items():
        cls = value.__class__
        if cls is str:
            if len(value) <= MAX_FIELD_CHARS:
                continue
            overflow(rec.type, key, MAX_FIELD_CHARS)
            value = value[:MAX_FIELD_CHARS]
        elif cls is int or cls is float or cls is bool or value is None:
            continue
        elif isinstance(value, dict | list):
            # A later sink must not see another sink's change to a nested value.
            value = freeze(value)
        else:
            continue
        if out is None:
            out = dict(rec.fields)
        out[key] = value
    return rec.fields if out is None else MappingProxyType(out)


def prepare_log(rec: Log, overflow: OverflowHook) -> Log:
    """Check a :class:`Log` (names, level) and cap its field values; raise a RecordError."""
    if not isinstance(rec.type, str) or not rec.type or rec.type != rec.type.strip():
        raise InvalidRecordError(str(rec.type), "type", "a MozLog Type must be a non-empty string")
    keys = rec.fields.keys()
    # Set operations first: the common, clean case costs two C calls.
    if not _FORBIDDEN_LOG_FIELDS.isdisjoint(keys) or any(type(k) is not str for k in keys):
        _check_keys(rec)
    if not isinstance(rec.level, int):
        raise InvalidRecordError(rec.type, "level", "must be a stdlib logging level (int)")
    fields = _cap_fields(rec, overflow)
    if fields is rec.fields:
        return rec
    return Log(rec.type, fields, rec.level, rec.message)


# ------------------------------------------------------------------ the sink

_MOZLOG_FORMATTERS = frozenset({"MozLogFormatter", "JsonLogFormatter", "MozlogFormatter"})
# Distinct Types that get a stdlib logger of their own in "host" mode. Loggers
# live for the life of the process, so a caller sending unbounded Types (a bug)
# must not create unbounded loggers: past this, records share one logger and
# still carry their Type as the record's name.
MAX_TYPE_LOGGERS = 512
# Not under the "fxa_metrics" logger: a host that quiets our own warnings
# (setLevel on "fxa_metrics") must not silence its MozLog records with them.
_SHARED_LOGGER = "fxa-metrics-mozlog"


def choose_mode(setting: str) -> str:
    """``"own"`` or ``"host"`` for a ``mozlog_handler`` setting (see the module docstring)."""
    if setting in ("own", "always"):
        return "own"
    if setting in ("host", "never"):
        return "host"
    handlers = logging.getLogger().handlers
    if (
        handlers
        and all(type(h.formatter).__name__ in _MOZLOG_FORMATTERS for h in handlers if h.formatter)
        and all(h.formatter for h in handlers)
    ):
        return "host"
    return "own"


def _existing_logger(name: str) -> logging.Logger | None:
    # Never creates a logger: only one the host configured (or we made) counts.
    found = logging.Logger.manager.loggerDict.get(name)
    return found if isinstance(found, logging.Logger) else None


class MozLogSink(Sink):
    """Emits :class:`~fxa_metrics.Log` records: MozLog lines (``own``) or LogRecords (``host``)."""

    def __init__(
        self,
        mode: str,
        service: str,
        stream: IO[str] | None = None,
        static_fields: Mapping[str, Any] | None = None,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> None:
        if mode not in ("own", "host"):
            raise ValueError(f"mode must be 'own' or 'host', got {mode!r}")
        self.mode = mode
        self._formatter = MozLogFormatter(service)
        self._writer = LineWriter(stream, write_timeout)
        self._loggers: dict[str, logging.Logger] = {}
        self._loggers_lock = threading.Lock()
        # Added to every line (the environment: app_id, app_channel).
        self._static = dict(static_fields or {})

    def __repr__(self) -> str:
        return f"MozLogSink({self.mode!r})"

    def emit(self, record: Log) -> None:
        fields: Mapping[str, Any] = record.fields
        if self._static:
            fields = {**fields, **self._static}
        if self.mode == "own":
            self._emit_own(record, fields)
        else:
            self._emit_host(record, fields)

    # -- own: format and write, honouring a host-configured level for the Type
    def _emit_own(self, record: Log, fields: Mapping[str, Any]) -> None:
        if logging.root.manager.disable >= record.level:
            return
        # Only a level the host set on this Type's own logger counts: an
        # existing logger left at NOTSET would inherit the root's WARNING and
        # silently drop every INFO line that "own" promises to write.
        configured = _existing_logger(record.type)
        if configured is not None and record.level < configured.level:
            return
        if logging.getLogRecordFactory() is logging.LogRecord:
            line = self._format(record, fields)
        else:
            line = self._format_custom(record, fields)
        if len(line) > MAX_LINE_BYTES:
            raise SinkDrop("oversize", f"{len(line)} bytes")
        self._writer.write(line)

    def _format(self, record: Log, fields: Mapping[str, Any]) -> bytes:
        # What MozLogFormatter.format() writes for the LogRecord the "host" path
        # would build (tests/test_mozlog.py holds them equal), without building it.
        try:
            out_fields = dict(fields)
            for key, value in out_fields.items():
                if type(value) not in _PLAIN:
                    out_fields[key] = _json_like(value)  # same keys: safe while iterating
            message = record.message
            if message and not (message.startswith("{") and message.endswith("}")):
                out_fields["msg"] = message
            out = {
                "Timestamp": time.time_ns(),
                "Type": record.type,
                "Logger": self._formatter.logger_name,
                "Hostname": self._formatter.hostname,
                "EnvVersion": "2.0",
                "Severity": SYSLOG_LEVEL_MAP.get(record.level, DEFAULT_SYSLOG_LEVEL),
                "Pid": _RecordTemplate.pid,
                "Fields": out_fields,
            }
            try:
                return orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE)
            except (TypeError, orjson.JSONEncodeError):
                # e.g. an int wider than 64 bits: stdlib json handles what orjson cannot.
                return json.dumps(_json_like(out)).encode() + b"\n"
        except Exception as e:  # a field whose repr() raises, a 10**5000 int, ...
            raise SinkDrop("format_error", type(e).__name__) from None

    def _format_custom(self, record: Log, fields: Mapping[str, Any]) -> bytes:
        # The host customised record creation (e.g. to inject a request id into
        # every record): honour it, at stdlib's price.
        logger = _existing_logger(record.type) or logging.getLogger(_SHARED_LOGGER)
        try:
            rec = logger.makeRecord(
                record.type, record.level, _PATHNAME, 0, record.message or "", (), None,
                extra=dict(fields),
            )  # fmt: skip
            return self._formatter.format(rec).encode() + b"\n"
        except Exception as e:  # the host's factory or a field's repr() raised
            raise SinkDrop("format_error", type(e).__name__) from None

    # -- host: a LogRecord through the host's handlers
    def _logger(self, name: str) -> logging.Logger:
        logger = self._loggers.get(name)
        if logger is None:
            with self._loggers_lock:
                logger = self._loggers.get(name)
                if logger is None:
                    if len(self._loggers) < MAX_TYPE_LOGGERS or _existing_logger(name):
                        logger = logging.getLogger(name)
                    else:
                        logger = logging.getLogger(_SHARED_LOGGER)
                    if len(self._loggers) < 4 * MAX_TYPE_LOGGERS:
                        self._loggers[name] = logger
        return logger

    def _emit_host(self, record: Log, fields: Mapping[str, Any]) -> None:
        logger = self._logger(record.type)
        if not logger.isEnabledFor(record.level):
            return
        if logging.getLogRecordFactory() is logging.LogRecord and not _custom_make_record(logger):
            rec = _fast_record(record.type, record.level, record.message or "", fields)
        else:
            # The host customised record creation (e.g. to inject a request id):
            # honour it, at stdlib's price.
            rec = logger.makeRecord(
                record.type, record.level, _PATHNAME, 0, record.message or "", (), None,
                extra=dict(fields),
            )  # fmt: skip
        logger.handle(rec)

    def close(self, timeout: float | None = None) -> None:
        self._loggers.clear()


def sinks_from_settings(
    settings: Settings, built: Mapping[str, tuple[Sink, ...]] | None = None
) -> list[Sink]:
    """The MozLog sink, writing its own lines or handing LogRecords to the host's logging."""
    env = {"app_id": settings.app_id, "app_channel": settings.channel}
    return [
        MozLogSink(
            choose_mode(settings.mozlog_handler),
            settings.service,
            settings.mozlog_stream,
            env,
            settings.write_timeout,
        )
    ]
