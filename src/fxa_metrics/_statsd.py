"""statsd route (placeholder until the statsd issue lands: no sink is built)."""

from __future__ import annotations

from typing import Any

from ._config import Settings
from ._context import RequestContext
from ._sink import Sink


def prepare(rt: Any, rec: Any, ctx: RequestContext) -> Any:
    return rec


def sinks_from_settings(settings: Settings) -> list[Sink]:
    return []
