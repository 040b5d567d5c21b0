"""Frozen prepared data, runtime shutdown, and the MozLog sink's edges, each contained."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _mozlog, _output, _runtime
from fxa_metrics._frozen import FrozenDict, freeze, thaw
from fxa_metrics._sink import SinkDrop

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS


def _configure(**kw: Any) -> None:
    settings: dict[str, Any] = {
        "service": "svc",
        "app_id": "accounts_backend_dev",
        "app_version": "1",
        "channel": "dev",
        "metrics_yaml": EXAMPLE_METRICS,
        "pings_yaml": EXAMPLE_PINGS,
    }
    settings.update(kw)
    fm.configure(**settings)


# ------------------------------------------------------------------ _frozen


def test_frozen_dict_refuses_every_mutation_but_copies_freely() -> None:
    d = freeze({"a": [1, {"b": 2}], "c": {"d": "e"}})
    assert d == {"a": (1, {"b": 2}), "c": {"d": "e"}}
    for mutate in (
        lambda: d.__setitem__("x", 1),
        lambda: d.__delitem__("a"),
        lambda: d.update(x=1),
        lambda: d.setdefault("x", 1),
        lambda: d.pop("a"),
        lambda: d.popitem(),
        lambda: d.clear(),
        lambda: d["c"].__setitem__("d", "f"),
    ):
        with pytest.raises(TypeError, match="read-only"):
            mutate()
    d2 = d
    with pytest.raises(TypeError):
        d2 |= {"x": 1}
    assert copy.copy(d) == d
    assert type(copy.copy(d)) is dict
    deep = copy.deepcopy(d)
    deep["c"]["d"] = "changed"  # a plain deep copy is the caller's own
    assert d["c"]["d"] == "e"
    assert pickle.loads(pickle.dumps(d)) == d
    assert repr(FrozenDict({"a": 1})) == "FrozenDict({'a': 1})"
    assert thaw(d) == {"a": [1, {"b": 2}], "c": {"d": "e"}}
    assert freeze(d) is d
    assert freeze("s") == "s"
    assert freeze(None) is None


# ------------------------------------------------------------------ _runtime


class Failing(fm.Sink):
    def __init__(self) -> None:
        self.closed = False

    def emit(self, record: Any) -> None:
        raise RuntimeError("emit")

    def flush(self, timeout: float | None = None) -> None:
        raise OSError("flush")

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class Closing(fm.Sink):
    def __init__(self) -> None:
        self.closed = 0

    def emit(self, record: Any) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed += 1


@pytest.mark.no_internal_errors_check
def test_flush_and_shutdown_finish_for_every_sink_despite_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad, good = Failing(), Closing()
    _configure(replace_sinks=True, sinks={"statsd": [bad, good], "mozlog": [good]})
    fm.flush()  # the failing flush is contained and kept
    rt = _runtime.current()
    assert rt is not None
    assert [type(e) for e in rt.stats.internal_errors] == [OSError]
    fm.reset()
    assert good.closed == 1  # shared by two groups: closed once
    assert "closing Failing failed" in caplog.text


def test_a_raising_sink_is_counted_and_the_next_sink_still_runs() -> None:
    good = Closing()
    seen: list[Any] = []

    class Seen(fm.Sink):
        def emit(self, record: Any) -> None:
            seen.append(record)

    _configure(replace_sinks=True, sinks={"statsd": [Failing(), Seen()]})
    fm.record(fm.Counter("x"))
    assert len(seen) == 1
    assert fm.stats().drops == {"sink_error": 1}
    assert good.closed == 0


def test_a_sinkdrop_is_counted_with_its_reason_and_not_kept() -> None:
    class Full(fm.Sink):
        def emit(self, record: Any) -> None:
            raise SinkDrop("write_error", "ENOSPC")

    _configure(replace_sinks=True, sinks={"statsd": [Full()]})
    fm.record(fm.Counter("x"))
    snap = fm.stats()
    assert snap.drops == {"write_error": 1}
    assert snap.drops_by_metric == {("write_error", "statsd:Full"): 1}
    rt = _runtime.current()
    assert rt is not None
    assert rt.stats.internal_errors == []


@pytest.mark.no_internal_errors_check
def test_a_base_exception_from_a_sink_counts_as_that_sink_failing() -> None:
    class Exits(fm.Sink):
        def emit(self, record: Any) -> None:
            raise SystemExit(3)

    _configure(replace_sinks=True, sinks={"statsd": [Exits()]})
    fm.record(fm.Counter("x"))  # does not leave the process
    assert fm.stats().drops == {"sink_error": 1}


def test_a_raising_host_logging_handler_never_reaches_the_caller() -> None:
    class Raising(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("the host's handler is broken")

    handler = Raising()
    handler.handleError = lambda record: (_ for _ in ()).throw(RuntimeError("again"))  # type: ignore[method-assign]
    logging.getLogger("fxa_metrics").addHandler(handler)
    try:
        _configure(strict=False)
        for _ in range(5):
            fm.record("no.such_metric")  # a drop, logged once: the handler raises
        assert fm.stats().drops == {"undefined": 5}
    finally:
        logging.getLogger("fxa_metrics").removeHandler(handler)


# ------------------------------------------------------------------ MozLog sink edges


def test_auto_mode_follows_the_root_handlers_formatters() -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = []
        assert _mozlog.choose_mode("auto") == "own"
        plain = logging.StreamHandler(io.StringIO())
        root.handlers = [plain]
        assert _mozlog.choose_mode("auto") == "own"  # no formatter: "INFO:x:" lines
        plain.setFormatter(logging.Formatter("%(message)s"))
        assert _mozlog.choose_mode("auto") == "own"
        plain.setFormatter(fm.MozLogFormatter("svc"))
        assert _mozlog.choose_mode("auto") == "host"
        assert _mozlog.choose_mode("always") == "own"
        assert _mozlog.choose_mode("never") == "host"
    finally:
        root.handlers = saved
    with pytest.raises(ValueError, match="mode"):
        _mozlog.MozLogSink("sideways", "svc")


def test_host_mode_bounds_the_loggers_it_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mozlog, "MAX_TYPE_LOGGERS", 3)
    before = set(logging.Logger.manager.loggerDict)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    root = logging.getLogger()
    # Random order: another test may have left a logger disabled or quieted.
    for name in ("fxa-metrics-mozlog", *(f"bounded.type{i}" for i in range(20))):
        existing = logging.Logger.manager.loggerDict.get(name)
        if isinstance(existing, logging.Logger):
            existing.disabled = False
    root.addHandler(keep)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        _configure(mozlog_handler="host")
        for i in range(20):
            fm.record(fm.Log(f"bounded.type{i}", {"i": i}))
    finally:
        root.removeHandler(keep)
        root.setLevel(old_level)
    created = {
        name
        for name, obj in logging.Logger.manager.loggerDict.items()
        if isinstance(obj, logging.Logger) and name not in before
    }
    assert created - {"fxa-metrics-mozlog"} == {f"bounded.type{i}" for i in range(3)}
    # Every record still carries its own Type, whichever logger carried it.
    assert [r.name for r in records] == [f"bounded.type{i}" for i in range(20)]


def test_a_custom_record_factory_is_honoured_and_its_failure_counted() -> None:
    out = io.StringIO()
    old = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = old(*args, **kwargs)
        rec.rid = "rid-1"
        return rec

    def broken(*args: Any, **kwargs: Any) -> logging.LogRecord:
        raise RuntimeError("factory")

    try:
        _configure(mozlog_handler="own", mozlog_stream=out)
        logging.setLogRecordFactory(factory)
        fm.record(fm.Log("op", {"n": 1}))
        logging.setLogRecordFactory(broken)
        fm.record(fm.Log("op", {"n": 2}))
    finally:
        logging.setLogRecordFactory(old)
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["Fields"]["rid"] == "rid-1"
    assert fm.stats().drops == {"format_error": 1}


def test_long_fields_are_cut_and_counted_and_huge_lines_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    _configure(mozlog_handler="own", mozlog_stream=out)
    fm.record(fm.Log("op", {"s": "x" * 20000, "n": 1}))
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(line["Fields"]["s"]) == _mozlog.MAX_FIELD_CHARS
    assert fm.stats().errors == {"invalid_overflow": 1}
    monkeypatch.setattr(_mozlog, "MAX_LINE_BYTES", 100)
    fm.record(fm.Log("op", {"s": "y" * 200}))
    assert fm.stats().drops == {"oversize": 1}


def test_mozlog_handler_writes_host_records_as_single_lines() -> None:
    out = io.StringIO()
    handler = fm.MozLogHandler("svc", out)
    logger = logging.getLogger("test.host.records")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("plain %s", "message", extra={"k": "v"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["Type"] == "test.host.records"
    assert line["Fields"] == {"k": "v", "msg": "plain message"}
    assert line["Severity"] == 4


def test_output_to_a_stream_that_fails_is_a_counted_drop() -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(SinkDrop) as e:
        _output.LineWriter(Broken()).write(b"x\n")
    assert e.value.reason == "write_error"
    assert e.value.detail == "EPIPE"
