"""``record()`` under arbitrary input: strict raises only our errors, production never raises.

And whatever production lets through is a line the pipeline accepts: it parses
as JSON and its payload validates against the Glean ping schema.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fxa_metrics as fm

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, FXA_METRICS, validate_payload

_FXA = fm.load_definitions(FXA_METRICS)
_EXAMPLE = fm.load_definitions(EXAMPLE_METRICS, EXAMPLE_PINGS)
REAL_NAMES = sorted(set(_FXA.metrics) | set(_EXAMPLE.metrics))
REAL_EXTRA_KEYS = sorted(
    {k for d in (_FXA, _EXAMPLE) for m in d.metrics.values() for k in m.extras}
)

# Text including lone surrogates and NULs: what a decoded header or a bad
# caller can hand us, and what a JSON encoder may refuse.
text = st.text(st.characters(codec=None, categories=None), max_size=40) | st.text(max_size=600)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    text,
    st.datetimes(timezones=st.none() | st.timezones()),
    st.binary(max_size=4),
    st.builds(object),
    st.just(fm.Log),
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(text | st.integers() | st.none(), inner, max_size=3)
    ),
    max_leaves=8,
)
names = st.sampled_from(REAL_NAMES) | text
extra_keys = st.sampled_from(REAL_EXTRA_KEYS) | text | st.integers() | st.none()
extras = st.none() | st.dictionaries(extra_keys, anything, max_size=4)
metric_values = st.dictionaries(st.sampled_from(REAL_NAMES) | text, anything, max_size=3)
pings = (
    st.none() | st.sampled_from(["events", "accounts-activity", "server-deletion-request"]) | text
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "uid": st.none() | text,
        "user_agent": st.none() | text,
        "ip_address": st.none() | text,
        "flow_id": st.none() | text,
        "service": st.none() | text,
        "skip_client_ip": st.booleans(),
    },
)
records = st.one_of(
    st.builds(
        fm.Event,
        names,
        extra=extras,
        metrics=st.none() | metric_values,
        ping=pings,
        skip_client_ip=st.booleans(),
    ),
    st.builds(fm.Metrics, metric_values, ping=pings),
    st.builds(fm.DeletionRequest, st.none() | text),
    st.builds(
        fm.Log,
        text,
        st.none() | st.dictionaries(text, anything, max_size=3),
        level=st.integers(0, 60),
        message=st.none() | text,
    ),
    anything,  # junk that is not a record at all
)
# Keyword arguments of the ``record(name, ...)`` shorthand. ``metrics`` is kept
# to a mapping (or None) here: a non-mapping is a known facade bug, see
# test_non_mapping_metrics_keyword_raises_our_error below.
keywords = st.fixed_dictionaries(
    {},
    optional={
        "ping": anything,
        "metrics": st.none() | metric_values,
        "skip_client_ip": anything,
        "colour": anything,
        "name": anything,
    },
)


@st.composite
def calls(draw: st.DrawFn) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(what, keyword arguments for record(), request context)."""
    ctx = draw(contexts)
    if draw(st.booleans()):
        return draw(names), {"extra": draw(extras), **draw(keywords)}, ctx
    return draw(records), {}, ctx


DEFS = {"fxa": (FXA_METRICS,), "example": (EXAMPLE_METRICS, EXAMPLE_PINGS)}


@pytest.fixture(
    params=[(True, "fxa"), (False, "fxa"), (True, "example"), (False, "example")],
    ids=["strict-fxa", "production-fxa", "strict-example", "production-example"],
)
def streams(request: pytest.FixtureRequest) -> tuple[bool, io.StringIO, io.StringIO]:
    glean, mozlog = io.StringIO(), io.StringIO()
    strict, which = request.param
    metrics_yaml, *pings_yaml = DEFS[which]
    fm.configure(
        service="fxa-auth-api",
        app_id="accounts_backend",
        app_version="1.0",
        channel="test",
        metrics_yaml=metrics_yaml,
        pings_yaml=pings_yaml,
        glean_stream=glean,
        mozlog_stream=mozlog,
        mozlog_handler="always",
        strict=strict,
    )
    return strict, glean, mozlog


def _check_lines(glean: io.StringIO, mozlog: io.StringIO) -> None:
    # Split on "\n" only: str.splitlines() also breaks at U+2028, U+0085 and
    # friends, which JSON leaves unescaped inside strings.
    for line in glean.getvalue().split("\n")[:-1]:
        parsed = json.loads(line)
        assert parsed["Type"] == "glean-server-event"
        validate_payload(json.loads(parsed["Fields"]["payload"]))
    for line in mozlog.getvalue().split("\n")[:-1]:
        assert isinstance(json.loads(line)["Fields"], dict)
    glean.seek(0)
    glean.truncate()
    mozlog.seek(0)
    mozlog.truncate()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=calls())
def test_record_raises_only_our_errors_in_strict_and_never_in_production(
    streams: tuple[bool, io.StringIO, io.StringIO],
    call: tuple[Any, dict[str, Any], dict[str, Any]],
) -> None:
    strict, glean, mozlog = streams
    what, kwargs, ctx = call
    rt = fm._facade.get_runtime()
    assert rt is not None
    # The fixture (and its runtime) outlives one example: judge this call alone.
    rt.stats.internal_errors.clear()
    internal_before = fm.stats().drops.get("internal_error", 0)
    with fm.bind(**ctx):
        if strict:
            with contextlib.suppress(fm.FxaMetricsError):
                fm.record(what, **kwargs)
        else:
            fm.record(what, **kwargs)
    _check_lines(glean, mozlog)
    # Nothing was contained as our own bug (an internal or sink error).
    assert rt.stats.internal_errors == [], rt.stats.internal_errors
    assert fm.stats().drops.get("internal_error", 0) == internal_before


def test_the_strategies_reach_the_emitting_paths(
    streams: tuple[bool, io.StringIO, io.StringIO],
) -> None:
    # Guard against a property that passes because nothing is ever emitted:
    # the real names drawn above do produce lines on these definitions.
    _, glean, _ = streams
    with fm.bind(uid="0" * 32, ip_address="198.51.100.1"):
        fm.record("login.complete", extra={"reason": "x"})
        fm.record(fm.DeletionRequest())
    assert len(glean.getvalue().splitlines()) == 2


def test_non_mapping_metrics_keyword_raises_our_error() -> None:
    fm.configure(
        service="s",
        app_id="accounts_backend",
        app_version="1",
        channel="test",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=io.StringIO(),
        strict=True,
    )
    with pytest.raises(fm.FxaMetricsError):
        fm.record("login.complete", metrics="0")
