"""Our MozLog formatter against Dockerflow's, and the MozLog sink through stdlib logging.

Dockerflow's ``MozlogFormatter`` is the reference (DESIGN 3.2). For the same
``LogRecord`` ours must give the same fields with the same values; the one
deliberate divergence is non-finite floats, which Dockerflow writes as the
invalid JSON tokens ``NaN``/``Infinity`` and we write as ``null``.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import json
import logging
import math
import sys
import uuid
from typing import Any

import pytest
from dockerflow.logging import MozlogFormatter as DockerflowFormatter
from hypothesis import given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics import MozLogFormatter


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 7


class Mode(str, enum.Enum):  # noqa: UP042 - StrEnum's str() is the value, hiding the case
    # A str mixin: json writes the str data ("fast"), while str() says "Mode.FAST".
    FAST = "fast"


class Weird:
    """An arbitrary object: both formatters fall back to repr()."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"<Weird {self.n}>"


class Tag(str):
    def __str__(self) -> str:  # json ignores this; it writes the str data
        return "overridden"


class Big(int):
    def __int__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "Big(?)"


finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # includes ints wider than 64 bits, which orjson refuses
    finite,
    st.text(),
    st.uuids(),
    st.datetimes(),
    st.dates(),
    st.sampled_from([Colour.RED, Level.HIGH, Mode.FAST]),
    st.builds(Weird, st.integers(0, 9)),
    st.builds(Tag, st.text(max_size=5)),
    st.builds(Big, st.integers(-(2**70), 2**70)),
    st.binary(max_size=8),
)
keys = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.booleans(),
    st.none(),
    finite,
    st.sampled_from([Level.HIGH, Mode.FAST]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)
# Top-level extra names: anything a LogRecord may carry that logging itself does not own.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "logger_name"}
field_names = st.text(min_size=1, max_size=12).filter(lambda k: k not in _RESERVED)
messages = st.one_of(
    st.text(),
    st.builds(lambda s: "{" + s + "}", st.text()),  # JSON-like: left out of Fields
    st.just(""),
)


def _exc_info(kind: int) -> Any:
    if kind == 0:
        return None
    try:
        if kind == 1:
            raise ValueError('bad "value"\n{forged: line}')
        raise KeyError(Weird(3))
    except Exception:
        return sys.exc_info()


def _record(name: str, level: int, msg: str, extra: dict[str, Any], exc: int) -> logging.LogRecord:
    logger = logging.getLogger("fxa_metrics.tests.mozlog")
    return logger.makeRecord(name, level, __file__, 1, msg, (), _exc_info(exc), extra=extra)


def _both(record: logging.LogRecord) -> tuple[str, str]:
    return MozLogFormatter().format(record), DockerflowFormatter().format(record)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(k) or _has_non_finite(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["request.summary", "glean-server-event", "app.thing", "root"]),
    level=st.sampled_from([0, 5, 10, 20, 25, 30, 40, 50]),
    msg=messages,
    extra=st.dictionaries(field_names, values, max_size=5),
    exc=st.integers(0, 2),
)
def test_formatter_matches_dockerflow_field_for_field(
    name: str, level: int, msg: str, extra: dict[str, Any], exc: int
) -> None:
    record = _record(name, level, msg, extra, exc)
    ours, theirs = _both(record)
    assert "\n" not in ours  # one line per record
    assert json.loads(ours) == json.loads(theirs)


def test_formatter_examples_that_differ_from_naive_conversions() -> None:
    # Written out so a regression names the case, not just a shrunk example.
    extra = {
        "mode": Mode.FAST,
        "nested": {Mode.FAST: [Tag("t"), Big(5)], Level.HIGH: Colour.RED, None: (1, 2)},
        "huge": 2**80,
        "when": dt.datetime(2026, 1, 2, 3, 4, 5),
        "id": uuid.UUID(int=7),
    }
    record = _record("request.summary", logging.WARNING, "{not: json}", extra, 1)
    ours, theirs = _both(record)
    parsed = json.loads(ours)
    assert parsed == json.loads(theirs)
    fields = parsed["Fields"]
    assert fields["mode"] == "fast"
    assert fields["nested"] == {"fast": ["t", 5], "7": "<Colour.RED: 1>", "null": [1, 2]}
    assert fields["huge"] == 2**80
    assert fields["when"] == "datetime.datetime(2026, 1, 2, 3, 4, 5)"
    assert "msg" not in fields  # a JSON-looking message is not repeated
    assert fields["error"].startswith("ValueError(")
    assert fields["traceback"].startswith("Uncaught exception:\n")
    assert parsed["Severity"] == 4


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_null_and_the_line_is_strict_json(bad: float) -> None:
    record = _record("app.thing", logging.INFO, "m", {"t": bad, "deep": {"x": [bad, 1.5]}}, 0)
    ours, theirs = _both(record)

    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    parsed = json.loads(ours, parse_constant=reject)  # strict: NaN/Infinity refused
    assert parsed["Fields"]["t"] is None
    assert parsed["Fields"]["deep"] == {"x": [None, 1.5]}
    # Dockerflow's line is not valid JSON for a strict parser: the divergence is deliberate.
    with pytest.raises(ValueError, match="non-standard"):
        json.loads(theirs, parse_constant=reject)


def test_severity_map_and_logger_name() -> None:
    expected = {50: 2, 40: 3, 30: 4, 20: 6, 10: 7, 25: 7, 5: 7}
    for level, severity in expected.items():
        line = json.loads(MozLogFormatter("fxa-auth").format(_record("t", level, "", {}, 0)))
        assert (line["Severity"], line["Logger"], line["Type"]) == (severity, "fxa-auth", "t")


# ------------------------------------------------------------------ the sink


def _configure(**kw: Any) -> io.StringIO:
    out = io.StringIO()
    settings_: dict[str, Any] = {
        "service": "fxa-auth-api",
        "app_id": "accounts_backend",
        "app_version": "1",
        "channel": "test",
        "metrics_yaml": (),
        "mozlog_stream": out,
        "mozlog_handler": "always",
        "strict": True,
    }
    settings_.update(kw)
    fm.configure(**settings_)
    return out


def test_log_record_goes_out_as_one_mozlog_line() -> None:
    out = _configure()
    fm.record(fm.Log("request.summary", {"errno": 0, "t": 12, "path": "/v1/account"}))
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["Type"] == "request.summary"
    assert line["Logger"] == "fxa-auth-api"
    assert line["Severity"] == 6
    # The environment rides on every line: staging and production never blur.
    assert line["Fields"] == {
        "errno": 0, "t": 12, "path": "/v1/account",
        "app_id": "accounts_backend", "app_channel": "test",
    }  # fmt: skip


def test_caplog_sees_mozlog_records(caplog: pytest.LogCaptureFixture) -> None:
    _configure(mozlog_handler="never")
    with caplog.at_level(logging.INFO, logger="request.summary"):
        fm.record(fm.Log("request.summary", {"errno": 102, "code": 400}, message="bad request"))
    (rec,) = [r for r in caplog.records if r.name == "request.summary"]
    assert (rec.errno, rec.code, rec.getMessage()) == (102, 400, "bad request")  # type: ignore[attr-defined]
    assert rec.levelno == logging.INFO


def test_host_levels_and_handlers_are_respected() -> None:
    host_out = io.StringIO()
    handler = logging.StreamHandler(host_out)
    handler.setFormatter(MozLogFormatter("host-app"))
    logger = logging.getLogger("request.summary")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        ours = _configure(mozlog_handler="never")
        fm.record(fm.Log("request.summary", {"n": 1}))  # INFO: below the host's level
        fm.record(fm.Log("request.summary", {"n": 2}, level=logging.ERROR))
        assert ours.getvalue() == ""  # we attached nothing: the host owns logging
        lines = [json.loads(x) for x in host_out.getvalue().splitlines()]
        assert [(x["Fields"]["n"], x["Severity"], x["Logger"]) for x in lines] == [
            (2, 3, "host-app")
        ]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.mark.parametrize("field", ["name", "msg", "args", "levelname", "message", "asctime"])
def test_reserved_field_names_are_rejected_naming_the_field(field: str) -> None:
    out = _configure()
    with pytest.raises(fm.InvalidRecordError) as info:
        fm.record(fm.Log("request.summary", {field: "x", "ok": 1}))
    assert (info.value.metric, info.value.field) == ("request.summary", field)
    assert out.getvalue() == ""


def test_reserved_field_names_are_dropped_and_counted_in_production() -> None:
    out = _configure(strict=False)
    fm.record(fm.Log("request.summary", {"msg": "x"}))
    assert out.getvalue() == ""
    assert fm.stats().drops == {"invalid_record": 1}


def test_fast_record_is_what_make_record_builds() -> None:
    from fxa_metrics import _mozlog

    fields = {"errno": 0, "path": "/v1/x", "t": 3}
    logger = logging.getLogger("request.summary")
    ours = _mozlog._fast_record("request.summary", logging.WARNING, "hello", fields)
    theirs = logger.makeRecord(
        "request.summary", logging.WARNING, "(fxa_metrics)", 0, "hello", (), None, extra=fields
    )
    a, b = dict(ours.__dict__), dict(theirs.__dict__)
    assert a.keys() == b.keys()
    varying = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in a.items() if k not in varying} == {
        k: v for k, v in b.items() if k not in varying
    }
    assert abs(a["created"] - b["created"]) < 1.0
    assert ours.getMessage() == "hello"


def test_a_host_log_record_factory_is_honoured() -> None:
    # Hosts inject request ids with a custom factory; our fast path must not skip it.
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = previous(*args, **kwargs)
        rec.host_rid = "rid-42"  # type: ignore[attr-defined]
        return rec

    out = io.StringIO()
    fm.configure(
        service="svc", app_id="accounts_backend", app_version="1", channel="test",
        metrics_yaml=(), mozlog_handler="always", mozlog_stream=out,
    )  # fmt: skip
    logging.setLogRecordFactory(factory)
    try:
        fm.record(fm.Log("factory.check", {"n": 1}))
    finally:
        logging.setLogRecordFactory(previous)
        fm.reset()
    line = json.loads(out.getvalue())
    assert line["Fields"] == {
        "n": 1, "app_id": "accounts_backend", "app_channel": "test", "host_rid": "rid-42"
    }  # fmt: skip
