"""Issue 9, in process: line format, size caps, Log loggers, configure() under load, containment.

The line format, size caps, bounded loggers, configure() swaps and the
facade's containment are the core rewrite's (issue 8, ``_output.py``); these
tests hold it to issue 9's promises.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics import _facade
from fxa_metrics._sink import Sink

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

SEPARATORS = ["\u2028", "\u2029", "\u0085"]


def configure(stream: io.StringIO | None = None, **kw: Any) -> io.StringIO:
    stream = stream if stream is not None else io.StringIO()
    settings_: dict[str, Any] = {
        "service": "fxa-test-api",
        "app_id": "accounts_backend_dev",
        "app_version": "1.2.3",
        "channel": "development",
        "metrics_yaml": EXAMPLE_METRICS,
        "pings_yaml": EXAMPLE_PINGS,
        "glean_stream": stream,
        "mozlog_stream": stream,
        "mozlog_handler": "always",
        "strict": False,
    }
    settings_.update(kw)
    fm.configure(**settings_)
    return stream


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    # str.splitlines() splits on U+2028, U+2029 and U+0085 too, as many log
    # shippers do: one record must stay one line for it.
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def truncations() -> int:
    snap = fm.stats()
    return sum(snap.errors.values()) + sum(snap.drops.values())


# ------------------------------------------------------------------ format


@pytest.mark.parametrize("sep", SEPARATORS)
def test_line_separators_are_escaped_in_every_line(sep: str) -> None:
    stream = configure()
    with fm.bind(user_agent=f"agent{sep}x"):
        fm.record("login.complete", extra={"reason": f"pass{sep}word"})
    fm.record(fm.Log("reliability.sep", {"field": f"a{sep}b"}, message=f"m{sep}n"))
    got = records(stream)
    assert len(got) == 2
    payload = json.loads(got[0]["Fields"]["payload"])
    validate_payload(payload)
    assert payload["events"][0]["extra"]["reason"] == f"pass{sep}word"  # escaped, not altered
    assert got[1]["Fields"]["field"] == f"a{sep}b"


def test_mozlog_fields_have_a_size_cap_and_truncation_is_counted() -> None:
    stream = configure()
    fm.record(fm.Log("reliability.big", {"blob": "x" * 10_000_000}))
    (line,) = stream.getvalue().splitlines()
    assert len(line) < 1_000_000  # the issue: 10 MB lines went out
    assert truncations() == 1


@pytest.mark.parametrize("field", ["user_agent", "ip_address"])
def test_glean_envelope_fields_have_a_size_cap_and_truncation_is_counted(field: str) -> None:
    stream = configure()
    with fm.bind(**{field: "1" * 10_000_000}):
        fm.record("login.complete", extra={"reason": "password"})
    (line,) = stream.getvalue().splitlines()
    assert len(line) < 1_000_000
    assert truncations() == 1
    validate_payload(json.loads(json.loads(line)["Fields"]["payload"]))


def test_distinct_log_types_do_not_create_unbounded_loggers() -> None:
    configure()
    before = len(logging.Logger.manager.loggerDict)
    for i in range(5000):
        fm.record(fm.Log(f"reliability.type{i}", {"i": i}))
    grown = len(logging.Logger.manager.loggerDict) - before
    assert grown < 1100, grown  # the issue: one permanent logger per type


# ------------------------------------------------------------------ configure() under load


def test_configure_under_load_neither_duplicates_nor_loses_a_line() -> None:
    stream = io.StringIO()
    configure(stream)
    stop = threading.Event()
    sent: list[int] = []

    def writer(t: int) -> None:
        i = 0
        # Until the swaps end (at least 50 each), at most 3000 each: bounded work.
        while (not stop.is_set() or i < 50) and i < 3000:
            seq = t * 1_000_000 + i
            fm.record(fm.Log("reliability.swap", {"seq": seq}))
            sent.append(seq)
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for _ in range(40):
        configure(stream)
    stop.set()
    for t in threads:
        t.join(60)
    seqs = [r["Fields"]["seq"] for r in records(stream) if r["Type"] == "reliability.swap"]
    assert len(seqs) == len(set(seqs)), "a line was written twice"
    assert sorted(seqs) == sorted(sent), "a line was lost"


# ------------------------------------------------------------------ hostile input


class HostileName:
    """A record-like object whose attributes raise."""

    @property
    def name(self) -> str:
        raise RuntimeError("name")

    @property
    def type(self) -> str:
        raise RuntimeError("type")


class HashlessStr(str):
    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr")


@pytest.mark.no_internal_errors_check
@pytest.mark.parametrize(
    "what",
    [
        pytest.param(lambda: HostileName(), id="name-raises"),
        pytest.param(lambda: HashlessStr("login.complete"), id="str-hash-raises"),
        pytest.param(lambda: fm.Log(HashlessStr("x.y"), {}), id="log-type-hash-raises"),
        pytest.param(lambda: fm.Counter(HashlessStr("a.b")), id="statsd-name-hash-raises"),
        pytest.param(lambda: fm.Log("x.y", {"f": BadRepr()}), id="field-repr-raises"),
        pytest.param(lambda: fm.Log("x.y", {"f": 10**5000}), id="huge-int"),
    ],
)
def test_hostile_objects_never_raise_into_the_host(what: Any) -> None:
    configure()
    fm.record(what())  # production: never raises
    fm.record(what())


@pytest.mark.no_internal_errors_check
@pytest.mark.parametrize(
    "what",
    [
        pytest.param(lambda: fm.Log("x.y", {"f": BadRepr()}), id="field-repr-raises"),
        pytest.param(lambda: fm.Log("x.y", {"f": 10**5000}), id="huge-int"),
    ],
)
def test_mozlog_format_failures_are_counted(what: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stream = configure()
    for _ in range(50):
        fm.record(what())
    written = len(records(stream))
    assert written + truncations() >= 50
    assert len(capsys.readouterr().err.splitlines()) < 10  # not a traceback per record


class Failing(Sink):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def emit(self, record: Any) -> None:
        raise self.exc


class HostError(BaseException):
    pass


@pytest.mark.no_internal_errors_check
# KeyboardInterrupt is not a sink's failure but the user's Ctrl-C: record() lets it through.
@pytest.mark.parametrize("exc", [HostError("sink"), SystemExit(2), GeneratorExit()])
def test_a_base_exception_from_a_host_sink_counts_as_the_sink_failing(exc: BaseException) -> None:
    configure(sinks={"glean": [Failing(exc)], "mozlog": [Failing(exc)]})
    try:
        fm.record("login.complete", extra={"reason": "password"})
        fm.record(fm.Log("x.y", {}))
    except BaseException as e:  # a KeyboardInterrupt escaping would stop the whole run
        pytest.fail(f"record() raised {e!r} into the host")
    assert fm.stats().drops.get("sink_error", 0) == 2


@pytest.mark.no_internal_errors_check
@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.text(max_size=50),
        st.builds(HashlessStr, st.text(max_size=20)),
        st.integers(),
        st.none(),
        st.binary(max_size=10),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    ),
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none()),
        max_size=4,
    ),
)
def test_production_record_never_raises(name: Any, fields: dict[str, Any]) -> None:
    rt = _facade.get_runtime()
    if rt is None or rt.strict:
        configure()
    fm.record(name)
    fm.record(fm.Log(name, fields))
    fm.record(fm.Counter(name))


def test_a_logger_that_merely_exists_does_not_filter_own_mode_lines() -> None:
    # getLogger() without a level (by any library, or an earlier test) once
    # made own-mode INFO lines vanish, uncounted: they inherited root's WARNING.
    logging.getLogger("reliability.exists")
    stream = configure()
    fm.record(fm.Log("reliability.exists", {"n": 1}))
    assert [r["Fields"]["n"] for r in records(stream)] == [1]
    logger = logging.getLogger("reliability.exists")
    logger.setLevel(logging.ERROR)  # a level the host did set is still honoured
    try:
        fm.record(fm.Log("reliability.exists", {"n": 2}))
        assert [r["Fields"]["n"] for r in records(stream)] == [1]
    finally:
        logger.setLevel(logging.NOTSET)
