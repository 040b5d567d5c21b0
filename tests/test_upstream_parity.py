"""Parity with upstream: glean_parser's own ``python_server`` output is the oracle.

For the same definitions and values, our line must carry the same ``Fields``
and the same payload as the code glean_parser generates, except for what
DESIGN 3.1 allows to differ: ``document_id``, the times, ``telemetry_sdk_build``
and upstream's None-extra bug (an extra not given goes out as ``"None"``, or
``"none"`` for a boolean extra; ours leaves it out).

The upstream code is generated into a temporary directory at test time from
the installed glean_parser, imported, and called; nothing generated is kept.
The events and their extras are enumerated with glean_parser too, not with
our loader, so a metric our loader lost would still be compared.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import uuid
import warnings
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from glean_parser import metrics as gmetrics
from glean_parser import parser as gparser
from glean_parser import translate
from glean_parser import util as gutil

import fxa_metrics as fm

from .conftest import (
    EXAMPLE_METRICS,
    EXAMPLE_PINGS,
    FXA_METRICS,
    FXA_PINGS,
    OLDER_METRICS,
    OLDER_PINGS,
    validate_payload,
)

APP_ID = "accounts_backend"
APP_VERSION = "1.301.0"
CHANNEL = "production"
UID = "0123456789abcdef0123456789abcdef"
# sha256("0123456789abcdef0123456789abcdef"), FxA's own test vector.
UID_SHA256 = "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
IP = "198.51.100.7"

# The request context, as bind() takes it, and the same values keyed by the
# Glean metric each one fills: written out here so the oracle side does not
# depend on our own COMMON_METRICS table.
CONTEXT: dict[str, Any] = {
    "uid": UID,
    "user_agent": UA,
    "ip_address": IP,
    "oauth_client_id": "5882386c6d801776",
    "service": "sync",
    "device_type": "mobile",
    "entrypoint": "fxa_app_menu",
    "entrypoint_experiment": "exp-1",
    "entrypoint_variation": "var-b",
    "flow_id": "a" * 64,
    "utm_campaign": "vpn-product-page",
    "utm_content": "fx-sync-get-started",
    "utm_medium": "email",
    "utm_source": "fx-website",
    "utm_term": "aboutwelcome-default-screen",
}
COMMON_VALUES: dict[str, Any] = {
    "account.user_id": UID,
    "account.user_id_sha256": UID_SHA256,
    "relying_party.oauth_client_id": CONTEXT["oauth_client_id"],
    "relying_party.service": CONTEXT["service"],
    "session.device_type": CONTEXT["device_type"],
    "session.entrypoint": CONTEXT["entrypoint"],
    "session.entrypoint_experiment": CONTEXT["entrypoint_experiment"],
    "session.entrypoint_variation": CONTEXT["entrypoint_variation"],
    "session.flow_id": CONTEXT["flow_id"],
    "utm.campaign": CONTEXT["utm_campaign"],
    "utm.content": CONTEXT["utm_content"],
    "utm.medium": CONTEXT["utm_medium"],
    "utm.source": CONTEXT["utm_source"],
    "utm.term": CONTEXT["utm_term"],
}


def _arg(identifier: str) -> str:
    """The generated code's keyword for a metric: ``category_name``."""
    return identifier.replace(".", "_")


# ------------------------------------------------------------------ upstream oracle


class Upstream:
    """glean_parser's generated ``server_events`` module for one set of definitions."""

    def __init__(self, module: ModuleType, tree: Any) -> None:
        self.module = module
        self.tree = tree

    def events(self) -> list[Any]:
        """Every event metric, as glean_parser parsed it."""
        return [
            m
            for category, content in self.tree.items()
            if category not in ("pings", "tags")
            for m in content.values()
            if isinstance(m, gmetrics.Metric) and m.type == "event"
        ]

    def logger(self, ping: str) -> Any:
        factory = getattr(self.module, f"create_{gutil.snake_case(ping)}_server_event_logger")
        return factory(APP_ID, APP_VERSION, CHANNEL)


def _generate(paths: list[Path], outdir: Path, name: str) -> Upstream:
    # glean_parser prints progress to stdout; keep it out of the test output. It
    # also uses jsonschema's deprecated RefResolver: its concern, not a failure here.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"jsonschema\.RefResolver", DeprecationWarning)
        rc = translate.translate(paths, "python_server", outdir)
        result = gparser.parse_objects(paths, {"do_not_disable_expired": True})
        assert list(result) == []  # the errors; reading them also fills result.value
        tree = result.value
    assert rc == 0, f"glean_parser could not translate {paths}"
    spec = importlib.util.spec_from_file_location(name, outdir / "server_events.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Upstream(module, tree)


@pytest.fixture(scope="module")
def fxa_upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    out = tmp_path_factory.mktemp("upstream_fxa")
    return _generate([FXA_METRICS, FXA_PINGS], out, "upstream_fxa_server_events")


@pytest.fixture(scope="module")
def older_upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    out = tmp_path_factory.mktemp("upstream_older")
    return _generate([OLDER_METRICS, OLDER_PINGS], out, "upstream_older_server_events")


@pytest.fixture(scope="module")
def example_defs() -> tuple[Path, Path]:
    """The example definitions: they carry the boolean and quantity metrics and the
    quantity extra that the FxA definitions lack (and pass glean_parser's linter,
    which its translate enforces)."""
    return EXAMPLE_METRICS, EXAMPLE_PINGS


@pytest.fixture(scope="module")
def example_upstream(
    tmp_path_factory: pytest.TempPathFactory, example_defs: tuple[Path, Path]
) -> Upstream:
    out = tmp_path_factory.mktemp("upstream_example")
    return _generate(list(example_defs), out, "upstream_example_server_events")


def _upstream_line(call: Callable[[], None]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        call()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------ ours


@contextlib.contextmanager
def _ours(metrics_yaml: Path, pings_yaml: Path) -> Iterator[io.StringIO]:
    out = io.StringIO()
    fm.configure(
        service="fxa-auth-api",
        app_id=APP_ID,
        app_version=APP_VERSION,
        channel=CHANNEL,
        metrics_yaml=metrics_yaml,
        pings_yaml=pings_yaml,
        glean_stream=out,
        mozlog_handler="never",
        strict=True,
    )
    try:
        yield out
    finally:
        fm.reset()


def _our_line(out: io.StringIO, call: Callable[[], None]) -> str:
    out.seek(0)
    out.truncate()
    with fm.bind(**CONTEXT):
        call()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------ comparison


def _iso(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def _comparable(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Fields without document_id/payload, payload without the fields allowed to differ)."""
    fields = dict(fields)
    uuid.UUID(fields.pop("document_id"))  # present and a UUID on both sides
    payload = json.loads(fields.pop("payload"))
    validate_payload(payload)
    info = payload["ping_info"]
    _iso(info.pop("start_time"))
    _iso(info.pop("end_time"))
    assert isinstance(payload["client_info"].pop("telemetry_sdk_build"), str)
    return fields, payload


def _drop_none_extras(payload: dict[str, Any], omitted: AbstractSet[str]) -> None:
    """Remove upstream's "None" extras for exactly the keys that were not given."""
    for event in payload["events"]:
        extra = event.get("extra", {})
        for key in omitted:
            # str(None), or str(None).lower() for a boolean extra: the upstream bug.
            assert extra.pop(key) in ("None", "none"), (key, extra)


def assert_parity(up_line: str, our_line: str, omitted: AbstractSet[str] = frozenset()) -> None:
    up, ours = json.loads(up_line), json.loads(our_line)
    up_fields, up_payload = _comparable(up["Fields"])
    our_fields, our_payload = _comparable(ours["Fields"])
    assert set(up["Fields"]) == set(ours["Fields"])
    assert our_fields == up_fields
    _drop_none_extras(up_payload, omitted)
    assert our_payload == up_payload
    # Same keys in the same order, as the generated code writes them.
    assert list(our_payload) == list(up_payload)
    assert list(our_payload["metrics"]) == list(up_payload["metrics"])
    for kind, values in up_payload["metrics"].items():
        assert list(our_payload["metrics"][kind]) == list(values), kind
    # Upstream's envelope is not MozLog (ISO Timestamp, Logger "glean"); ours is.
    assert up["Type"] == ours["Type"] == "glean-server-event"
    assert_our_mozlog_envelope(ours, up_timestamp=_iso(up["Timestamp"]))


def assert_our_mozlog_envelope(line: dict[str, Any], up_timestamp: dt.datetime) -> None:
    assert set(line) == {
        "Timestamp",
        "Type",
        "Logger",
        "Hostname",
        "EnvVersion",
        "Severity",
        "Pid",
        "Fields",
    }
    assert type(line["Timestamp"]) is int
    ours = dt.datetime.fromtimestamp(line["Timestamp"] / 1e9, dt.UTC)
    assert abs((ours - up_timestamp).total_seconds()) < 60
    assert line["Logger"] == "fxa-auth-api-glean"
    assert line["EnvVersion"] == "2.0"
    assert line["Severity"] == 6
    assert isinstance(line["Hostname"], str)
    assert line["Hostname"]
    assert type(line["Pid"]) is int


# ------------------------------------------------------------------ values


def _extra_values(event: Any, omit: bool) -> tuple[dict[str, Any], set[str]]:
    """A value of the extra's type for every extra; with ``omit``, every other one left out.

    Booleans alternate True/False so both spellings are compared.
    """
    values: dict[str, Any] = {}
    omitted: set[str] = set()
    for i, (key, meta) in enumerate(event.extra_keys.items()):
        if omit and i % 2 == 0:
            omitted.add(key)
            continue
        kind = meta.get("type", "string")
        if kind == "boolean":
            values[key] = i % 4 < 2
        elif kind == "quantity":
            values[key] = 1000 + i
        else:
            values[key] = f"{event.category}.{event.name}.{key} ü✓"
    return values, omitted


def _upstream_common(fn: Callable[..., Any], skip: set[str]) -> dict[str, Any]:
    """The common-metric keywords ``fn`` takes, with the context's values."""
    import inspect

    by_arg = {_arg(ident): value for ident, value in COMMON_VALUES.items()}
    kwargs: dict[str, Any] = {"user_agent": UA, "ip_address": IP}
    for name in inspect.signature(fn).parameters:
        if name in kwargs or name in skip or name == "events":
            continue
        assert name in by_arg, f"upstream {fn.__name__} takes {name}, unknown to this test"
        kwargs[name] = by_arg[name]
    return kwargs


def _compare_every_event(upstream: Upstream, paths: tuple[Path, Path], omit: bool) -> int:
    failures: list[str] = []
    compared = 0
    with _ours(*paths) as out:
        for event in upstream.events():
            assert event.send_in_pings == ["events"], event.identifier()
            up_logger = upstream.logger("events")
            fn = getattr(
                up_logger,
                f"record_{gutil.snake_case(event.category)}_{gutil.snake_case(event.name)}",
            )
            extra, omitted = _extra_values(event, omit)
            kwargs = _upstream_common(fn, skip=set(event.extra_keys))
            up_line = _upstream_line(lambda fn=fn, kw=kwargs, ex=extra: fn(**kw, **ex))
            ident = f"{event.category}.{event.name}"
            our_line = _our_line(out, lambda i=ident, ex=extra: fm.record(i, extra=ex))
            try:
                assert_parity(up_line, our_line, omitted)
            except AssertionError as e:
                failures.append(f"{ident}: {e}")
            compared += 1
    assert not failures, "\n".join(failures)
    return compared


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("omit", [False, True], ids=["all-extras", "some-extras-omitted"])
def test_every_fxa_event_matches_upstream(fxa_upstream: Upstream, omit: bool) -> None:
    assert _compare_every_event(fxa_upstream, (FXA_METRICS, FXA_PINGS), omit) == 83


@pytest.mark.parametrize("omit", [False, True], ids=["all-extras", "some-extras-omitted"])
def test_every_older_fxa_event_matches_upstream(older_upstream: Upstream, omit: bool) -> None:
    compared = _compare_every_event(older_upstream, (OLDER_METRICS, OLDER_PINGS), omit)
    assert compared == len(older_upstream.events()) > 20


def test_omitted_extras_are_upstreams_none_bug_and_ours_leaves_them_out(
    fxa_upstream: Upstream,
) -> None:
    # The one deliberate difference, shown on a real event: upstream sends the
    # string "None"/"none", we send nothing for that key.
    up = fxa_upstream.logger("events")
    fn = up.record_access_token_created
    up_line = _upstream_line(
        lambda: fn(**_upstream_common(fn, {"reason", "scopes", "exclude_dau"}))
    )
    up_extra = json.loads(json.loads(up_line)["Fields"]["payload"])["events"][0]["extra"]
    assert up_extra == {"reason": "None", "scopes": "None", "exclude_dau": "none"}
    with _ours(FXA_METRICS, FXA_PINGS) as out:
        line = _our_line(out, lambda: fm.record("access_token.created"))
    assert json.loads(json.loads(line)["Fields"]["payload"])["events"][0]["extra"] == {}


def test_older_custom_accounts_events_ping_matches_upstream(older_upstream: Upstream) -> None:
    up = older_upstream.logger("accounts-events")
    kwargs = _upstream_common(up.record, skip={"event_name", "event_reason"})
    up_line = _upstream_line(
        lambda: up.record(**kwargs, event_name="reg_complete", event_reason="password")
    )
    with _ours(OLDER_METRICS, OLDER_PINGS) as out:
        our_line = _our_line(
            out,
            lambda: fm.record(
                fm.Metrics({"event.name": "reg_complete", "event.reason": "password"})
            ),
        )
    assert_parity(up_line, our_line)
    payload = json.loads(json.loads(our_line)["Fields"]["payload"])
    assert payload["events"] == []
    assert payload["metrics"]["string"]["event.name"] == "reg_complete"
    assert json.loads(our_line)["Fields"]["document_type"] == "accounts-events"


def test_server_deletion_request_matches_upstream(fxa_upstream: Upstream) -> None:
    up = fxa_upstream.logger("server-deletion-request")
    # FxA's auth server sends the deletion request with an empty user agent and
    # IP address (DESIGN 9), and so do we, whatever the request carried.
    up_line = _upstream_line(
        lambda: up.record(
            user_agent="", ip_address="", account_user_id=UID, account_user_id_sha256=UID_SHA256
        )
    )
    with _ours(FXA_METRICS, FXA_PINGS) as out:
        # The full context is bound (flow, utm, ...): only the uid metrics may go out.
        our_line = _our_line(out, lambda: fm.record(fm.DeletionRequest()))
    assert_parity(up_line, our_line)
    payload = json.loads(json.loads(our_line)["Fields"]["payload"])
    assert payload["metrics"] == {
        "string": {"account.user_id": UID, "account.user_id_sha256": UID_SHA256}
    }


def test_example_quantity_and_boolean_types_match_upstream(
    example_upstream: Upstream, example_defs: tuple[Path, Path]
) -> None:
    # The FxA definitions have no quantity extra and no boolean/quantity metric;
    # the example has both, on login.complete.
    up = example_upstream.logger("events")
    fn = up.record_login_complete
    extras = {"reason": "password", "is_new_device": False, "attempts": 3}
    metrics = {"account.two_factor_enabled": True, "session.devices_count": 7}
    kwargs = _upstream_common(
        fn, skip={*extras, "account_two_factor_enabled", "session_devices_count"}
    )
    up_line = _upstream_line(
        lambda: fn(**kwargs, **extras, account_two_factor_enabled=True, session_devices_count=7)
    )
    with _ours(*example_defs) as out:
        our_line = _our_line(
            out, lambda: fm.record("login.complete", extra=extras, metrics=metrics)
        )
    assert_parity(up_line, our_line)
    payload = json.loads(json.loads(our_line)["Fields"]["payload"])
    assert payload["events"][0]["extra"] == {
        "reason": "password",
        "is_new_device": "false",
        "attempts": "3",
    }
    assert payload["metrics"]["boolean"] == {"account.two_factor_enabled": True}
    assert payload["metrics"]["quantity"] == {"session.devices_count": 7}


def test_example_custom_ping_with_object_metric_matches_upstream(
    example_upstream: Upstream, example_defs: tuple[Path, Path]
) -> None:
    settings = {"language": "de", "marketing_opt_in": True}
    up = example_upstream.logger("accounts-activity")
    up_line = _upstream_line(
        lambda: up.record(
            user_agent=UA,
            ip_address=IP,
            activity_name="settings_changed",
            activity_reason="user",
            activity_settings=settings,
        )
    )
    values = {
        "activity.name": "settings_changed",
        "activity.reason": "user",
        "activity.settings": settings,
    }
    with _ours(*example_defs) as out:
        our_line = _our_line(out, lambda: fm.record(fm.Metrics(values)))
    assert_parity(up_line, our_line)
