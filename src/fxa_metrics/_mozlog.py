"""MozLog 2.0 (Dockerflow's application log format) through stdlib logging.

Why our own formatter: dockerflow's ``MozlogFormatter`` is the reference, and
tests/test_mozlog.py proves ours emits the same fields with the same values for
the same ``LogRecord``. Ours is faster (orjson, no per-record attribute scan
against a set) and always writes valid JSON: dockerflow's ``json.dumps``
writes ``NaN``/``Infinity`` for non-finite floats, which no JSON parser in the
pipeline accepts; we write ``null`` there.

Why stdlib logging: hosts keep their handlers, levels, filters and pytest's
``caplog``. A :class:`~fxa_metrics.Log` record is emitted on the logger named
by its ``Type`` (Dockerflow's own convention, e.g. ``request.summary``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import IO, Any

import orjson

from ._glean import STREAM_LOCK
from ._records import Log
from ._sink import Sink

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


class MozLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler with our formatter that shares fxa_metrics' stream lock."""

    def __init__(self, logger_name: str, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self._fixed_stream = stream
        self.setFormatter(MozLogFormatter(logger_name))
        # Same lock as the Glean sink: lines from both never tear into each other.
        self.lock = STREAM_LOCK

    def emit(self, record: logging.LogRecord) -> None:
        if self._fixed_stream is None:
            # Follow sys.stdout as it is now (pytest capsys, redirected stdout).
            self.stream = sys.stdout
        super().emit(record)


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


class MozLogSink(Sink):
    """Emits :class:`~fxa_metrics.Log` records through stdlib logging.

    ``handler``: where lines go when the host has not set logging up. With
    ``attach="auto"`` our handler is added to the record's logger only if the
    root logger has no handlers at configure time (a host that configured
    logging keeps full control); ``"always"``/``"never"`` force it.
    """

    def __init__(
        self, handler: logging.Handler | None, static_fields: Mapping[str, Any] | None = None
    ) -> None:
        self._handler = handler
        self._loggers: dict[str, logging.Logger] = {}
        # Added to every line (the environment: app_id, app_channel).
        self._static = dict(static_fields or {})

    def _logger(self, name: str) -> logging.Logger:
        logger = self._loggers.get(name)
        if logger is None:
            logger = logging.getLogger(name)
            if self._handler is not None and self._handler not in logger.handlers:
                logger.addHandler(self._handler)
                # We own the output here (logging was not set up by the host):
                # a record we were asked to log must not vanish under the
                # root logger's default WARNING level.
                if logger.level == logging.NOTSET:
                    logger.setLevel(logging.DEBUG)
            self._loggers[name] = logger
        return logger

    def emit(self, record: Log) -> None:
        logger = self._logger(record.type)
        if not logger.isEnabledFor(record.level):
            return
        fields: Mapping[str, Any] = record.fields
        if self._static:
            fields = {**fields, **self._static}
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
        if self._handler is not None:
            for logger in self._loggers.values():
                logger.removeHandler(self._handler)
        self._loggers.clear()
