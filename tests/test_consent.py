"""Consent (issue 5): the resolution order, per-request caching, fail-closed lookups, the matrix."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _consent, _runtime, testing
from fxa_metrics._context import RequestContext

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

ALICE = "a" * 32  # consents
BOB = "b" * 32  # opted out
GONE = "c" * 32  # a deleted account: the uid lookup finds nothing
ALICE_EMAIL = "alice@example.com"
BOB_EMAIL = "bob@example.com"
NEWCOMER_EMAIL = "new@example.com"  # signing up: no account yet


class Accounts:
    """A host's account store with sync lookups that count their calls."""

    def __init__(self) -> None:
        self.opted_out = {ALICE: False, BOB: True}
        self.emails = {ALICE_EMAIL: ALICE, BOB_EMAIL: BOB}
        self.calls: Counter[str] = Counter()
        self.threads: list[str] = []
        self.fail = False
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._lock:
            self.calls[key] += 1
            self.threads.append(threading.current_thread().name)
        if self.fail:
            # The message names the email on purpose: it must never reach our log.
            raise ConnectionError(f"database down while looking up {key}")

    def by_uid(self, uid: str) -> bool | None:
        self._count(uid)
        return self.opted_out.get(uid)

    def by_email(self, email: str) -> bool | None:
        self._count(email)
        uid = self.emails.get(email)
        return None if uid is None else self.opted_out.get(uid)

    async def by_uid_async(self, uid: str) -> bool | None:
        await asyncio.sleep(0)  # yield, so concurrent tasks really interleave
        return self.by_uid(uid)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


@contextlib.contextmanager
def consent_capture(accounts: Accounts | None = None, **kw: Any) -> Iterator[testing.Capture]:
    """A strict capture of the example definitions with the accounts' lookups wired."""
    if accounts is not None:
        kw.setdefault("consent_lookup_uid", accounts.by_uid)
        kw.setdefault("consent_lookup_email", accounts.by_email)
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS, **kw) as c:
        yield c
        for payload in c.payloads():
            validate_payload(payload)


def product_users(cap: testing.Capture) -> list[str | None]:
    """The account.user_id of every captured product (non-deletion) ping, in order."""
    return [
        p.metrics.get("string", {}).get("account.user_id")
        for p in cap.pings()
        if p.ping != "server-deletion-request"
    ]


def login() -> None:
    fm.record("login.complete", extra={"reason": "password"})


# ------------------------------------------------------------------ resolution order


@pytest.mark.parametrize("token", [True, False])
def test_token_credentials_answer_without_any_lookup(accounts: Accounts, token: bool) -> None:
    # Alice consents in the store; the token says otherwise when token=True: the token wins.
    with consent_capture(accounts) as cap:
        with fm.bind(uid=ALICE, email=ALICE_EMAIL, metrics_opt_out=token):
            login()
            login()
        assert len(cap.pings()) == (0 if token else 2)
    assert accounts.total == 0


def test_uid_lookup_comes_before_email_and_email_is_not_asked(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        # The email would say "consents"; the uid lookup says Bob opted out and is asked first.
        with fm.bind(uid=BOB, email=ALICE_EMAIL):
            login()
        assert cap.pings() == []
        assert fm.stats().drops == {"consent": 1}
    assert accounts.calls == Counter({BOB: 1})


def test_email_lookup_when_no_uid_is_known(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        with fm.bind(email=BOB_EMAIL):
            login()
        with fm.bind(email=ALICE_EMAIL):
            login()
        assert len(cap.pings()) == 1
    assert accounts.calls == Counter({BOB_EMAIL: 1, ALICE_EMAIL: 1})


def test_anonymous_user_is_enabled_without_a_lookup(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        with fm.bind(flow_id="f" * 32):
            login()
        login()  # no request bound at all
        assert len(cap.pings()) == 2
    assert accounts.total == 0


def test_no_account_by_email_is_enabled_but_no_account_by_uid_is_not(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        with fm.bind(email=NEWCOMER_EMAIL):  # sign-up: as FxA, enabled
            login()
        with fm.bind(uid=GONE):  # a stale uid: as FxA (AccountNotFound), opted out
            login()
        assert len(cap.pings()) == 1
        assert fm.stats().drops == {"consent": 1}


def test_a_known_user_with_no_lookup_wired_is_enabled() -> None:
    with consent_capture() as cap, fm.bind(uid=BOB):
        login()
    assert product_users(cap) == [BOB]


# ------------------------------------------------------------------ once per request


def test_lookup_runs_once_per_request(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        for _ in range(3):  # three requests
            with fm.bind(uid=ALICE):
                for _ in range(4):
                    login()
                with fm.bind(flow_id="x"):  # a nested bind is the same request
                    login()
                fm.record(fm.Metrics({"activity.name": "a"}))
        assert len(cap.pings()) == 18
    assert accounts.calls == Counter({ALICE: 3})


def test_one_lookup_per_user_when_a_request_acts_for_two(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap, fm.bind(uid=ALICE):
        login()
        with fm.bind(uid=BOB):
            login()
            login()
        login()  # back to Alice: her cached answer, no second lookup
    assert product_users(cap) == [ALICE, ALICE]
    assert accounts.calls == Counter({ALICE: 1, BOB: 1})


def test_no_lookup_when_the_record_is_dropped_anyway(accounts: Accounts) -> None:
    with consent_capture(accounts, strict=False) as cap, fm.bind(uid=ALICE):
        fm.record("login.nope")  # fails its definitions check
        fm.record("login.complete", extra={"errorCode": 1})
        fm.record(fm.DeletionRequest())  # never gated by consent
        fm.record(fm.Timing("url_request", 1.0))
        fm.record(fm.Log("request.summary", {"errno": 0}))
        fm.record(fm.Crash(RuntimeError("x")))
        assert len(cap.records()) == 4
    assert accounts.total == 0
    with consent_capture(accounts, enabled=False) as cap, fm.bind(uid=ALICE):
        login()  # the service is disabled: dropped before any lookup
        assert fm.stats().drops == {"service_disabled": 1}
    assert accounts.total == 0


def test_a_top_level_bind_never_shares_the_process_wide_state(accounts: Accounts) -> None:
    with consent_capture(accounts):
        for _ in range(2):
            with fm.bind(new_request=False, uid=ALICE):
                login()
        assert fm.current_context().state == {}
    assert accounts.calls == Counter({ALICE: 2})


# ------------------------------------------------------------------ fail-closed


@pytest.mark.parametrize("strict", [True, False])
def test_a_raising_lookup_is_fail_closed_counted_and_logged_once(
    accounts: Accounts, strict: bool, caplog: pytest.LogCaptureFixture
) -> None:
    accounts.fail = True
    with consent_capture(accounts, strict=strict) as cap:
        for who in ({"uid": ALICE}, {"uid": ALICE}, {"email": ALICE_EMAIL}):
            with fm.bind(**who):
                login()  # never raises into the host, strict or not
                login()
        assert cap.pings() == []
        snap = fm.stats()
        assert snap.drops == {"consent": 6}
        assert snap.errors == {"consent_lookup_error": 3}  # one per request, not per record
    assert accounts.total == 3
    logged = [r.getMessage() for r in caplog.records if r.name == "fxa_metrics"]
    lookup_logs = [m for m in logged if "consent_lookup_error" in m]
    assert len(lookup_logs) == 2  # once per lookup kind (uid, email), not per failure
    assert all("ConnectionError" in m for m in lookup_logs)
    assert not any(ALICE_EMAIL in m or ALICE in m for m in logged)  # no PII in our log


def test_a_slow_lookup_times_out_fail_closed(accounts: Accounts) -> None:
    release = threading.Event()

    def slow(uid: str) -> bool:
        release.wait(5)
        return False

    try:
        with consent_capture(consent_lookup_uid=slow, consent_timeout=0.05) as cap:
            with fm.bind(uid=ALICE):
                login()
                login()  # the failure is cached: no second wait
            assert cap.pings() == []
            assert fm.stats().drops == {"consent": 2}
            assert fm.stats().errors == {"consent_lookup_timeout": 1}
    finally:
        release.set()


def test_a_lookup_returning_a_non_answer_is_an_error(accounts: Accounts) -> None:
    with consent_capture(consent_lookup_uid=lambda uid: "no") as cap, fm.bind(uid=ALICE):
        login()
        assert cap.pings() == []
        assert fm.stats().errors == {"consent_lookup_error": 1}


def test_sync_lookups_run_bounded_in_the_pool_or_inline_when_asked(accounts: Accounts) -> None:
    with consent_capture(accounts), fm.bind(uid=ALICE):
        login()
    with consent_capture(accounts, consent_timeout=None), fm.bind(uid=ALICE):
        login()
    assert accounts.threads[0].startswith("fxa_metrics-consent")
    assert accounts.threads[1] == threading.current_thread().name


def test_an_async_lookup_cannot_run_in_sync_record_so_it_fails_closed(accounts: Accounts) -> None:
    with consent_capture(consent_lookup_uid=accounts.by_uid_async) as cap, fm.bind(uid=ALICE):
        login()
        login()
        assert cap.pings() == []
        assert fm.stats().drops == {"consent": 2}
        assert fm.stats().errors == {"consent_unresolved": 1}
        assert accounts.total == 0  # never called, so no coroutine left un-awaited
        # Resolving it properly replaces the provisional answer.
        assert asyncio.run(fm.resolve_consent()) is True
        login()
        assert product_users(cap) == [ALICE]
    assert accounts.calls == Counter({ALICE: 1})


def test_a_sync_lookup_returning_a_coroutine_is_closed_not_leaked(accounts: Accounts) -> None:
    # filterwarnings=error: a coroutine never awaited would fail this test.
    with (
        consent_capture(consent_lookup_uid=lambda uid: accounts.by_uid_async(uid)) as cap,
        fm.bind(uid=ALICE),
    ):
        login()
        assert cap.pings() == []
        assert fm.stats().errors == {"consent_unresolved": 1}


@pytest.mark.parametrize("timeout", [None, 0.5])
def test_a_lookup_that_records_neither_deadlocks_nor_recurses(
    accounts: Accounts, timeout: float | None
) -> None:
    def chatty(uid: str) -> bool | None:
        login()  # the host's lookup instruments itself: withheld, no re-entry
        return accounts.by_uid(uid)

    with (
        consent_capture(consent_lookup_uid=chatty, consent_timeout=timeout) as cap,
        fm.bind(uid=ALICE),
    ):
        login()
        assert product_users(cap) == [ALICE]
        assert fm.stats().drops == {"consent": 1}
        assert fm.stats().errors == {}
    assert accounts.calls == Counter({ALICE: 1})


# ------------------------------------------------------------------ async resolution


def test_resolve_consent_awaits_an_async_lookup_once(accounts: Accounts) -> None:
    async def request(uid: str) -> bool:
        with fm.bind(uid=uid):
            enabled = await fm.resolve_consent()
            assert await fm.resolve_consent() is enabled  # cached
            login()
            return enabled

    async def main() -> list[bool]:
        return [await request(ALICE), await request(BOB)]

    with consent_capture(consent_lookup_uid=accounts.by_uid_async) as cap:
        assert asyncio.run(main()) == [True, False]
        assert product_users(cap) == [ALICE]
    assert accounts.calls == Counter({ALICE: 1, BOB: 1})


def test_resolve_consent_runs_a_sync_lookup_off_the_event_loop(accounts: Accounts) -> None:
    async def main() -> bool:
        with fm.bind(uid=ALICE):
            return await fm.resolve_consent()

    with consent_capture(accounts):
        assert asyncio.run(main()) is True
    assert accounts.threads == [accounts.threads[0]]
    assert accounts.threads[0].startswith("fxa_metrics-consent")


def test_tasks_of_one_request_share_one_lookup(accounts: Accounts) -> None:
    async def main() -> list[bool]:
        with fm.bind(uid=BOB):
            return list(await asyncio.gather(*(fm.resolve_consent() for _ in range(5))))

    with consent_capture(consent_lookup_uid=accounts.by_uid_async):
        assert asyncio.run(main()) == [False] * 5
    assert accounts.calls == Counter({BOB: 1})


def test_a_lookup_cancelled_with_its_event_loop_is_made_again_later(accounts: Accounts) -> None:
    slow_first = [True]

    async def lookup(uid: str) -> bool | None:
        if slow_first.pop() if slow_first else False:
            await asyncio.sleep(5)
        return accounts.by_uid(uid)

    async def abandon() -> None:
        # The request's loop ends while the lookup is in flight (asyncio.run cancels it).
        task = asyncio.ensure_future(fm.resolve_consent())
        await asyncio.sleep(0.01)
        task.cancel()

    with consent_capture(consent_lookup_uid=lookup) as cap, fm.bind(uid=ALICE):
        asyncio.run(abandon())
        assert asyncio.run(fm.resolve_consent()) is True  # a new lookup, in the new loop
        login()
        assert product_users(cap) == [ALICE]
    assert accounts.calls == Counter({ALICE: 1})


def test_an_async_lookup_times_out_fail_closed() -> None:
    async def hangs(uid: str) -> bool:
        await asyncio.sleep(5)
        return False

    async def main() -> bool:
        with fm.bind(uid=ALICE):
            return await fm.resolve_consent()

    with consent_capture(consent_lookup_uid=hangs, consent_timeout=0.05) as cap:
        assert asyncio.run(main()) is False
        assert fm.stats().errors == {"consent_lookup_timeout": 1}
        assert cap.pings() == []


def test_an_async_lookup_raising_is_fail_closed(accounts: Accounts) -> None:
    accounts.fail = True

    async def main() -> bool:
        with fm.bind(uid=ALICE):
            return await fm.resolve_consent()

    with consent_capture(consent_lookup_uid=accounts.by_uid_async):
        assert asyncio.run(main()) is False
        assert fm.stats().errors == {"consent_lookup_error": 1}


def test_resolve_consent_answers_without_lookup_when_it_can(accounts: Accounts) -> None:
    async def main() -> bool:
        with fm.bind(uid=ALICE):
            return await fm.resolve_consent()

    # Unconfigured: only the token can say anything.
    with fm.bind(uid=BOB, metrics_opt_out=True):
        assert fm.resolve_consent_sync() is False
    assert asyncio.run(main()) is True
    # The service is disabled: nothing would be emitted, so nothing is looked up.
    with consent_capture(accounts, enabled=False):
        assert asyncio.run(main()) is False
        with fm.bind(uid=ALICE):
            assert fm.resolve_consent_sync() is False
    assert accounts.total == 0
    with consent_capture(accounts), fm.bind(uid=BOB):
        assert fm.resolve_consent_sync() is False
        login()  # uses the answer resolved up front
    assert accounts.calls == Counter({BOB: 1})


# ------------------------------------------------------------------ consent changes


def test_opting_out_mid_request_takes_effect_on_the_next_record(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap, fm.bind(uid=ALICE, flow_id="f1"):
        login()  # signing in: consents
        accounts.opted_out[ALICE] = True  # the settings toggle writes the account...
        fm.set_opt_out(True)  # ...and tells fxa_metrics, in the same request
        login()
        fm.record(fm.DeletionRequest())
        fm.set_opt_out(False)
        login()
        assert fm.stats().drops == {"consent": 1}
    assert product_users(cap) == [ALICE, ALICE]
    assert [p.ping for p in cap.pings()] == ["events", "server-deletion-request", "events"]
    assert accounts.calls == Counter({ALICE: 1})  # the change needed no lookup


def test_rebinding_the_token_state_mid_request_takes_effect(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap, fm.bind(uid=ALICE):
        login()
        with fm.bind(metrics_opt_out=True):
            login()
        login()  # back out: Alice's earlier answer, still cached
    assert product_users(cap) == [ALICE, ALICE]
    assert accounts.calls == Counter({ALICE: 1})


def test_invalidate_consent_resolves_again_and_next_request_sees_the_change(
    accounts: Accounts,
) -> None:
    with consent_capture(accounts) as cap:
        with fm.bind(uid=ALICE):
            login()
            accounts.opted_out[ALICE] = True  # changed by another request
            login()  # this request's answer is still the cached one
            fm.invalidate_consent()
            login()  # resolved again: dropped
        with fm.bind(uid=ALICE):  # the next request of the sign-in flow
            login()
        assert product_users(cap) == [ALICE, ALICE]
        assert fm.stats().drops == {"consent": 2}
    assert accounts.calls == Counter({ALICE: 3})


def test_consent_calls_outside_a_request_change_nothing(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        fm.set_opt_out(True)
        fm.invalidate_consent()
        login()
        assert fm.current_context().state == {}
        assert len(cap.pings()) == 1


# ------------------------------------------------------------------ the matrix

# DESIGN 5, one row per sink, each cell the expected outcome for a record of that
# kind: "sent", "dropped:<reason>", or "sent:stripped" (MozLog without analytics fields).
USERS = {"consenting": ALICE, "opted_out": BOB}
MATRIX: dict[str, dict[str, str]] = {
    "glean_event": {
        "consenting": "sent",
        "opted_out": "dropped:consent",
        "service_disabled": "dropped:service_disabled",
    },
    "glean_custom_ping": {
        "consenting": "sent",
        "opted_out": "dropped:consent",
        "service_disabled": "dropped:service_disabled",
    },
    "glean_deletion": {
        "consenting": "sent",
        "opted_out": "sent",
        "service_disabled": "dropped:service_disabled",
    },
    "statsd": {"consenting": "sent", "opted_out": "sent", "service_disabled": "sent"},
    "mozlog": {"consenting": "sent", "opted_out": "sent:stripped", "service_disabled": "sent"},
    "sentry": {"consenting": "sent", "opted_out": "sent", "service_disabled": "sent"},
}
ANALYTICS = {
    "flow_id": "f" * 32,
    "flowBeginTime": 1700000000000,
    "entrypoint": "preferences",
    "entrypoint_experiment": "exp",
    "utm_source": "newsletter",
    "utmCampaign": "spring",
    "deviceType": "mobile",
    "service": "sync",
    "oauth_client_id": "5882386c6d801776",
    "session.flow_id": "f" * 32,
}
OPERATIONAL = {"errno": 0, "path": "/v1/account/login", "method": "POST", "t": 12, "code": 200}


def _record(kind: str) -> Any:
    return {
        "glean_event": fm.Event("login.complete", {"reason": "password"}),
        "glean_custom_ping": fm.Metrics({"activity.name": "email_changed"}),
        "glean_deletion": fm.DeletionRequest(),
        "statsd": fm.Timing("url_request", 12.5, tags={"method": "POST"}),
        "mozlog": fm.Log("request.summary", {**OPERATIONAL, "uid": "x", **ANALYTICS}),
        "sentry": fm.Crash(RuntimeError("boom")),
    }[kind]


_ROUTE = {"statsd": "statsd", "mozlog": "mozlog", "sentry": "sentry"}


@pytest.mark.parametrize("column", ["consenting", "opted_out", "service_disabled"])
@pytest.mark.parametrize("row", sorted(MATRIX))
def test_consent_matrix_cell(accounts: Accounts, row: str, column: str) -> None:
    # The cell is the consent *state*; how it is resolved is tested above, so the
    # token states it here (a consenting user in the service-disabled column).
    expected = MATRIX[row][column]
    opted_out = column == "opted_out"
    with (
        consent_capture(accounts, enabled=column != "service_disabled") as cap,
        fm.bind(uid=BOB if opted_out else ALICE, metrics_opt_out=opted_out, flow_id="f" * 32),
    ):
        fm.record(_record(row))
        route = _ROUTE.get(row, "glean")
        got = cap.records(route)
        if expected.startswith("dropped:"):
            assert got == []
            assert fm.stats().drops == {expected.split(":")[1]: 1}
            return
        assert len(got) == 1
        assert fm.stats().drops == {}
        if row == "mozlog":
            fields = got[0].fields
            assert OPERATIONAL.items() <= fields.items()
            assert fields["uid"] == "x"  # operational logs keep the uid, as FxA's do
            if expected == "sent:stripped":
                assert not set(ANALYTICS) & set(fields)
            else:
                assert ANALYTICS.items() <= fields.items()
        if row == "sentry":
            # The CRASH_NO_USER policy made the decision: user context only with consent.
            assert (got[0].user_id is not None) is not opted_out


def test_the_matrix_table_covers_every_route() -> None:
    routes = {_ROUTE.get(row, "glean") for row in MATRIX}
    assert routes | {"glean_deletion"} >= {r.name for r in fm.ROUTES.values()} - {
        "sentry_performance",  # its own tests: tests/test_route_table.py
        "sentry_pageload",  # its own tests: tests/test_beacon.py (AGGREGATE, every cell)
    }


def test_sentry_user_context_needs_a_known_consenting_user(accounts: Accounts) -> None:
    def allowed() -> bool:
        return _consent.user_context_allowed(fm.current_context(), _runtime.current())

    with consent_capture(accounts):
        assert allowed()  # anonymous
        with fm.bind(uid=ALICE):
            assert not allowed()  # unresolved: a crash never triggers a lookup
            login()
            assert allowed()  # resolved by the event
        with fm.bind(uid=ALICE, metrics_opt_out=False):
            assert allowed()
            fm.set_opt_out(True)
            assert not allowed()
        with fm.bind(uid=ALICE):
            accounts.fail = True
            login()
            assert not allowed()  # fail-closed answer
    assert accounts.calls == Counter({ALICE: 2})
    with fm.bind(uid=BOB, metrics_opt_out=True):  # unconfigured: the token still counts
        assert not allowed()


def test_mozlog_strips_every_spelling_and_never_adds_context(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        with fm.bind(uid=ALICE, flow_id="f" * 32, utm_source="x"):
            login()
            fm.record(fm.Log("request.summary", {"errno": 0}))
        with fm.bind(uid=BOB, metrics_opt_out=True):
            fields = {"FlowId": 1, "utm-term": 2, "relying_party.service": 3, "Entrypoint": 4}
            fm.record(fm.Log("request.summary", {**fields, "errno": 0, "uid": BOB}))
        consenting, opted_out = (r.fields for r in cap.records("mozlog"))
    # The request context is never copied into a log line, consenting or not.
    # (The environment fields are added by the MozLog sink, on the wire.)
    assert set(consenting) == {"errno"}
    assert set(opted_out) == {"errno", "uid"}


def test_mozlog_strips_for_an_unresolved_user_without_a_lookup(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap, fm.bind(uid=ALICE):
        fm.record(fm.Log("request.summary", {"errno": 0, "flow_id": "f"}))
        assert "flow_id" not in cap.records("mozlog")[0].fields
    assert accounts.total == 0


def test_policy_direct_for_a_context_outside_bind(accounts: Accounts) -> None:
    # The policy works on any context it is given (e.g. one built by middleware).
    product = fm.Policy.PER_USER_PRODUCT
    with consent_capture(accounts) as cap:
        rt = _runtime.current()
        assert rt is not None
        login()  # anonymous: emitted, and gives us a real prepared ping
        prepared = cap.pings()[0]
        assert _consent.apply(product, prepared, RequestContext(uid=BOB), rt) is None
        assert _consent.apply(product, prepared, RequestContext(uid=ALICE), rt) is prepared
    assert accounts.calls == Counter({BOB: 1, ALICE: 1})


# ------------------------------------------------------------------ environments


@pytest.mark.parametrize(
    ("channel", "app_id"),
    [("production", "accounts_backend"), ("stage", "accounts_backend_dev")],
)
def test_environment_is_in_every_glean_payload_and_mozlog_line(channel: str, app_id: str) -> None:
    glean_out, log_out = io.StringIO(), io.StringIO()
    fm.configure(
        service="fxa-test-api",
        app_id=app_id,
        app_version="1.0.0",
        channel=channel,
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=glean_out,
        mozlog_handler="always",
        mozlog_stream=log_out,
    )
    with fm.bind(uid=ALICE, metrics_opt_out=False):
        login()
        fm.record(fm.DeletionRequest())
        fm.record(fm.Log("request.summary", {"errno": 0}))
        fm.record(fm.Log("account.status", {"errno": 0}, level=logging.WARNING))
    fm.reset()
    glean_lines = [json.loads(x) for x in glean_out.getvalue().splitlines()]
    log_lines = [json.loads(x) for x in log_out.getvalue().splitlines()]
    assert len(glean_lines) == 2
    assert len(log_lines) == 2
    for line in glean_lines:
        assert line["Fields"]["document_namespace"] == app_id
        payload = json.loads(line["Fields"]["payload"])
        validate_payload(payload)
        assert payload["client_info"]["app_channel"] == channel
    for line in log_lines:
        assert (line["Fields"]["app_id"], line["Fields"]["app_channel"]) == (app_id, channel)


def test_environment_fields_are_reserved_in_mozlog() -> None:
    with consent_capture(strict=True), pytest.raises(fm.InvalidRecordError) as e:
        fm.record(fm.Log("request.summary", {"app_channel": "mine"}))
    assert (e.value.metric, e.value.field) == ("request.summary", "app_channel")


def test_environment_settings_are_explicit() -> None:
    with pytest.raises(fm.ConfigurationError, match="channel"):
        fm.configure(service="fxa-test-api", app_id="accounts_backend", app_version="1")


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("consent_lookup_uid", "db.account"),
        ("consent_lookup_email", 42),
        ("consent_timeout", 0),
        ("consent_timeout", -1.0),
        ("consent_timeout", 31),
        ("consent_timeout", True),
        ("consent_timeout", "0.5"),
    ],
)
def test_consent_settings_are_validated(key: str, value: Any) -> None:
    with pytest.raises(fm.ConfigurationError, match=key):
        fm.configure(
            service="fxa-test-api",
            app_id="accounts_backend_dev",
            app_version="1",
            channel="development",
            metrics_yaml=EXAMPLE_METRICS,
            pings_yaml=EXAMPLE_PINGS,
            **{key: value},
        )


# ------------------------------------------------------------------ isolation


def test_threads_never_see_each_others_consent(accounts: Accounts) -> None:
    users = [ALICE, BOB] * 4  # as many as the lookup pool has workers
    barrier = threading.Barrier(len(users), timeout=5)
    seen: dict[int, bool] = {}

    def lookup(uid: str) -> bool | None:
        # Every request's lookup is in flight at once: a shared cache would show here.
        barrier.wait()
        return accounts.by_uid(uid)

    with consent_capture(consent_lookup_uid=lookup, consent_timeout=5.0) as cap:

        def request(i: int, uid: str) -> None:
            with fm.bind(uid=uid, flow_id=f"{i:032x}"):
                login()
                login()
                seen[i] = fm.resolve_consent_sync()

        threads = [threading.Thread(target=request, args=(i, u)) for i, u in enumerate(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        by_flow = Counter(p.metrics["string"]["session.flow_id"] for p in cap.pings())
    assert seen == {i: u == ALICE for i, u in enumerate(users)}
    assert by_flow == Counter({f"{i:032x}": 2 for i, u in enumerate(users) if u == ALICE})
    assert accounts.calls == Counter({ALICE: 4, BOB: 4})  # once per request


def test_threads_of_one_request_share_its_single_lookup(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap, fm.bind(uid=ALICE):
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(login,)) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(cap.pings()) == 8
    assert accounts.calls == Counter({ALICE: 1})


def test_asyncio_tasks_never_see_each_others_consent(accounts: Accounts) -> None:
    async def request(i: int, uid: str) -> tuple[int, bool]:
        with fm.bind(uid=uid, flow_id=f"{i:032x}"):
            await asyncio.sleep(0)
            enabled = await fm.resolve_consent()
            await asyncio.sleep(0)
            login()
            return i, enabled

    users = [BOB, ALICE] * 8

    async def main() -> list[tuple[int, bool]]:
        return list(await asyncio.gather(*(request(i, u) for i, u in enumerate(users))))

    with consent_capture(consent_lookup_uid=accounts.by_uid_async) as cap:
        results = asyncio.run(main())
        flows = {p.metrics["string"]["session.flow_id"] for p in cap.pings()}
    assert results == [(i, u == ALICE) for i, u in enumerate(users)]
    assert flows == {f"{i:032x}" for i, u in enumerate(users) if u == ALICE}
    assert accounts.calls == Counter({ALICE: 8, BOB: 8})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_lookup_pool_works_in_a_forked_child(accounts: Accounts) -> None:
    with consent_capture(accounts) as cap:
        with fm.bind(uid=ALICE):
            login()  # the parent's pool now has a worker thread
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                with fm.bind(uid=ALICE):
                    code = 0 if fm.resolve_consent_sync() and len(cap.pings()) == 1 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
