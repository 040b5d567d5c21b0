"""Consent under arbitrary interleavings: a hypothesis state machine against a plain model.

Users sign in by uid or by email (or stay anonymous), opt out and back in,
get deleted; the account store's lookups start and stop failing; and every
kind of record is made in between. After every step the implementation must
agree with the model:

* no Glean product ping for a user who was opted out when it was recorded
  (and exactly the pings the model expects for everyone else);
* every deletion request sent (while the service is enabled);
* drop counters equal to what was withheld, lookup errors equal to the
  failed lookups, and lookups made exactly when the model needs one.

A consent change is made the way a service makes it: in the request of the
user who changes it, through ``set_opt_out`` (the settings toggle), or
elsewhere, after which the request calls ``invalidate_consent``; either way
it takes effect on the next record.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import fxa_metrics as fm
from fxa_metrics import _consent, _facade, testing
from fxa_metrics._config import build_settings
from fxa_metrics._definitions import Definitions, load
from fxa_metrics._glean import GleanEncoder
from fxa_metrics._route_table import build_table

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

USERS = [f"{i:032x}" for i in range(1, 4)]
EMAILS = {uid: f"user{i}@example.com" for i, uid in enumerate(USERS)}
NEWCOMER = "newcomer@example.com"  # signing up: no account behind this email
ANALYTICS = {"flow_id": "f" * 32, "utm_source": "news", "entrypoint": "menu"}


@functools.cache
def _definitions() -> Definitions:
    # Loaded once for the whole run: glean_parser takes ~0.1 s per load.
    return load((str(EXAMPLE_METRICS),), (str(EXAMPLE_PINGS),), app_version="0.0.0")


@attrs.define
class Request:
    """The model of one open request."""

    account: str | None  # the account behind it (None: anonymous or a newcomer)
    uid: str | None
    email: str | None
    token: bool | None  # metricsOptOutAt from the session token, read at request start
    said: bool | None = None  # what the request itself said with set_opt_out()
    looked_up: bool | None = None  # opted out? the looked-up (or fail-closed) answer
    lookups: int = 0


def _account_of(email: str) -> str | None:
    return next((u for u, e in EMAILS.items() if e == email), None)


class ConsentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.opted_out: dict[str, bool] = dict.fromkeys(USERS, False)  # the account store
        self.failing = False
        self.calls: Counter[str] = Counter()  # lookups made in the open request
        self.req: Request | None = None
        self._binds: list[Any] = []
        self.expected_pings: list[tuple[str, str | None]] = []  # (ping, account.user_id)
        self.expected_drops: Counter[str] = Counter()
        self.expected_errors: Counter[str] = Counter()
        self.expected_other: Counter[str] = Counter()  # statsd, mozlog, sentry records
        self.configured = False
        self.prev: Any = None

    # ------------------------------------------------------------ the host's lookups

    def _lookup(self, key: str) -> None:
        self.calls[key] += 1
        if self.failing:
            raise ConnectionError("account store down")

    def by_uid(self, uid: str) -> bool | None:
        self._lookup(uid)
        return self.opted_out.get(uid)

    def by_email(self, email: str) -> bool | None:
        self._lookup(email)
        uid = _account_of(email)
        return None if uid is None else self.opted_out.get(uid)

    # ------------------------------------------------------------ set-up

    @initialize(enabled=st.sampled_from([True, True, True, False]))
    def configure(self, enabled: bool) -> None:
        base = build_settings(
            service="fxa-test",
            app_id="accounts_backend_dev",
            app_version="0.0.0",
            channel="development",
            metrics_yaml=EXAMPLE_METRICS,
            pings_yaml=EXAMPLE_PINGS,
            strict=True,
            enabled=enabled,
            consent_lookup_uid=self.by_uid,
            consent_lookup_email=self.by_email,
            replace_sinks=True,
        )
        self.enabled = enabled
        self.cap = testing.Capture(
            GleanEncoder("accounts_backend_dev", "0.0.0", "development", "x")
        )
        sinks = {k: tuple(v) for k, v in self.cap.sinks().items()}
        self.prev = _facade.swap(_facade.Runtime(base, _definitions(), sinks, build_table()))
        self.configured = True

    def teardown(self) -> None:
        self._end()
        if self.configured:
            _facade.swap(self.prev)

    # ------------------------------------------------------------ the model

    def _known(self) -> bool | None:
        """Opted out? As far as the open request knows without a lookup (None: it doesn't)."""
        r = self.req
        if r is None:
            return False  # no request: anonymous
        for answer in (r.said, r.looked_up, r.token):
            if answer is not None:
                return answer
        return False if (r.uid is None and r.email is None) else None

    def _resolve(self) -> bool:
        """Opted out? What record() must act on, looking up as the model says it must."""
        known = self._known()
        if known is not None:
            return known
        r = self.req
        assert r is not None
        r.lookups += 1
        if self.failing:
            self.expected_errors["consent_lookup_error"] += 1
            r.looked_up = True  # fail-closed, and kept for the rest of the request
        elif r.uid is not None:
            r.looked_up = self.opted_out.get(r.uid, True)  # no account by uid: opted out
        else:
            assert r.email is not None
            uid = _account_of(r.email)
            r.looked_up = False if uid is None else self.opted_out.get(uid, False)
        return r.looked_up

    def _truly_opted_out(self) -> bool:
        """The account store's word for the open request's account, right now."""
        r = self.req
        return bool(r is not None and r.account is not None and self.opted_out.get(r.account))

    # ------------------------------------------------------------ requests

    def _end(self) -> None:
        while self._binds:
            self._binds.pop().__exit__(None, None, None)
        self.req = None
        self.calls.clear()

    @rule(
        user=st.sampled_from(USERS),
        by=st.sampled_from(["uid", "email", "uid+email", "anonymous", "newcomer"]),
        with_token=st.booleans(),
    )
    def start_request(self, user: str, by: str, with_token: bool) -> None:
        self._end()
        uid = user if "uid" in by else None
        email = EMAILS[user] if "email" in by else NEWCOMER if by == "newcomer" else None
        account = user if (uid or email == EMAILS[user]) else None
        # A session token reflects the account as it was when the request began.
        token = self.opted_out.get(user) if with_token and uid else None
        self.req = Request(account, uid, email, token)
        bind = fm.bind(new_request=True, uid=uid, email=email, metrics_opt_out=token)
        bind.__enter__()
        self._binds.append(bind)

    @rule()
    def end_request(self) -> None:
        self._end()

    # ------------------------------------------------------------ consent changes

    @precondition(lambda self: self.req is not None and self.req.account in self.opted_out)
    @rule(opt_out=st.booleans())
    def toggle_in_this_request(self, opt_out: bool) -> None:
        # The settings endpoint: writes the account and tells fxa_metrics.
        assert self.req is not None
        assert self.req.account is not None
        self.opted_out[self.req.account] = opt_out
        fm.set_opt_out(opt_out)
        self.req.said = opt_out

    @rule(user=st.sampled_from(USERS), opt_out=st.booleans())
    def toggle_elsewhere(self, user: str, opt_out: bool) -> None:
        # Another request changes another account: that user's next request sees it.
        if user in self.opted_out and (self.req is None or self.req.account != user):
            self.opted_out[user] = opt_out

    @rule(user=st.sampled_from(USERS))
    def delete_account(self, user: str) -> None:
        if self.req is None or self.req.account != user:
            self.opted_out.pop(user, None)

    @precondition(lambda self: self.req is not None)
    @rule()
    def invalidate(self) -> None:
        fm.invalidate_consent()
        assert self.req is not None
        self.req.looked_up = None  # forgotten; what the request said itself is kept

    @rule(failing=st.booleans())
    def lookups_fail(self, failing: bool) -> None:
        self.failing = failing

    # ------------------------------------------------------------ records

    def _product(self, record: Any, ping: str) -> None:
        before = len(self.cap.pings())
        fm.record(record)
        sent = len(self.cap.pings()) - before
        if self._truly_opted_out():
            assert sent == 0, "a product ping for a user who was opted out when it was recorded"
        if not self.enabled:
            self.expected_drops["service_disabled"] += 1
        elif self._resolve():
            self.expected_drops["consent"] += 1
        else:
            # The custom ping carries no uid metric; events carry the bound uid.
            uid = self.req.uid if self.req is not None and ping == "events" else None
            self.expected_pings.append((ping, uid))

    @rule()
    def record_event(self) -> None:
        self._product(fm.Event("login.complete", {"reason": "password"}), "events")

    @rule()
    def record_custom_ping(self) -> None:
        self._product(fm.Metrics({"activity.name": "email_changed"}), "accounts-activity")

    @rule(user=st.sampled_from(USERS))
    def record_deletion(self, user: str) -> None:
        uid = self.req.uid if self.req is not None and self.req.uid else user
        before = len(self.cap.pings("server-deletion-request"))
        fm.record(fm.DeletionRequest(uid))
        sent = len(self.cap.pings("server-deletion-request")) - before
        if self.enabled:
            assert sent == 1, "a deletion request must always be sent"
            self.expected_pings.append(("server-deletion-request", uid))
        else:
            assert sent == 0
            self.expected_drops["service_disabled"] += 1

    @rule()
    def record_log(self) -> None:
        fm.record(fm.Log("request.summary", {"errno": 0, **ANALYTICS}))
        self.expected_other["mozlog"] += 1
        fields = self.cap.records("mozlog")[-1].fields
        assert fields["errno"] == 0
        # Kept only for a user known to consent; never for one who has opted out.
        assert (set(ANALYTICS) <= set(fields)) is (self._known() is False)
        if self._truly_opted_out():
            assert not set(ANALYTICS) & set(fields)

    @rule()
    def record_timing(self) -> None:
        fm.record(fm.Timing("url_request", 3.0))
        self.expected_other["statsd"] += 1

    @rule()
    def record_crash(self) -> None:
        fm.record(fm.Crash(RuntimeError("boom")))
        self.expected_other["sentry"] += 1
        allowed = _consent.user_context_allowed(fm.current_context(), _facade.get_runtime())
        assert allowed is (self._known() is False)
        if self._truly_opted_out():
            assert not allowed

    @precondition(lambda self: self.req is not None)
    @rule()
    def resolve_up_front(self) -> None:
        # What an ASGI middleware does; asyncio.run's task sees this request's context.
        got = asyncio.run(fm.resolve_consent())
        if not self.enabled:
            assert got is False
        else:
            assert got is not self._resolve()

    # ------------------------------------------------------------ invariants

    @invariant()
    def counters_equal_what_was_withheld(self) -> None:
        if self.configured:
            snap = fm.stats()
            assert snap.drops == dict(+self.expected_drops)
            assert snap.errors == dict(+self.expected_errors)

    @invariant()
    def exactly_the_expected_records(self) -> None:
        if self.configured:
            got = [
                (p.ping, p.metrics.get("string", {}).get("account.user_id"))
                for p in self.cap.pings()
            ]
            assert got == self.expected_pings
            for route in ("statsd", "mozlog", "sentry"):
                assert len(self.cap.records(route)) == self.expected_other[route]

    @invariant()
    def lookups_exactly_when_needed(self) -> None:
        if self.req is not None:
            # At most one per request, plus one after each invalidate_consent();
            # none at all when the token answers.
            assert sum(self.calls.values()) == self.req.lookups
            if self.req.token is not None:
                assert self.req.lookups == 0


ConsentMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
test_consent_interleavings = ConsentMachine.TestCase
