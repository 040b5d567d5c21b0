"""A sample FxA service module with three deliberate metrics mistakes.

tests/test_lint.py lints it against the FxA definitions (tests/data/fxa-backend)
and type-checks it with the stubs `fxa-metrics stubs` generates from them; both
must report exactly the three marked lines, and neither once they are fixed.
Positions matter: the tests assert line and column.
"""

from __future__ import annotations

from typing import Literal

from _metrics_stubs import record

import fxa_metrics as fm


def first_email_rejected(code: str) -> None:
    # MISTAKE 1: the extra is `error_code` in metrics.yaml (FxA's real bug).
    record("inactive_account_deletion.first_email_task_rejected", extra={"errorCode": code})


def login_finished() -> None:
    # MISTAKE 2: no such metric.
    record("login.compelte", extra={"reason": "password"})


def token_created() -> None:
    # MISTAKE 3: exclude_dau is a boolean extra.
    record("access_token.created", extra={"reason": "login", "exclude_dau": "yes"})


def outcome(event: Literal["login.complete", "login.submit_backend_error"]) -> None:
    # Through a variable: lint cannot resolve it (counted); the stubs check it.
    record(event)


def drop_path_test() -> None:
    # Deliberately undeclared, to exercise the drop counter: silenced for both tools.
    record("login.complete", extra={"why": "x"})  # type: ignore[call-overload]  # fxa-metrics: ignore[unknown-extra]


def timed() -> None:
    fm.record(fm.Timing("url_request", 12.5, tags={"method": "POST", "path": "/v1/login"}))
