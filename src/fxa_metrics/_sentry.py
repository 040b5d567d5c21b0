"""Sentry route (placeholder until the Sentry issue lands: no sink is built)."""

from __future__ import annotations

from typing import Any

from ._config import Settings
from ._context import RequestContext
from ._errors import InvalidRecordError
from ._records import Crash
from ._sink import Sink


def prepare(rt: Any, rec: Crash, ctx: RequestContext) -> Any:
    if not isinstance(rec.exc, BaseException):
        raise InvalidRecordError("crash", "exc", "must be an exception instance")
    return rec


def sinks_from_settings(settings: Settings) -> list[Sink]:
    return []
