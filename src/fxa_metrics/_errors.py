"""The exception hierarchy.

Every error fxa_metrics raises derives from :class:`FxaMetricsError`, so a host
can catch "anything telemetry" in one clause. Record-time errors carry the
metric, the field and a short machine-readable ``reason``: the same reason is
the drop counter's key in production mode, so a test that sees an exception in
strict mode knows exactly which counter production would bump.
"""

from __future__ import annotations

from collections.abc import Sequence


class FxaMetricsError(Exception):
    """Base class of every fxa_metrics error."""


class ConfigurationError(FxaMetricsError):
    """``configure()`` was given settings that cannot work. Raised at start-up, loudly."""


class DefinitionsError(FxaMetricsError):
    """metrics.yaml / pings.yaml could not be loaded.

    ``problems`` holds one :class:`Problem` per finding, each naming the file,
    the line where known, and the metric.
    """

    def __init__(self, problems: list[Problem], findings: Sequence[Problem] = ()) -> None:
        self.problems = problems
        # Non-fatal findings (expired, disabled, ...) found in the same pass:
        # ``fxa-metrics check`` reports them alongside the problems.
        self.findings = tuple(findings)
        super().__init__("\n".join(str(p) for p in problems))


class Problem:
    """One finding about the definitions (load time or ``fxa-metrics check``)."""

    __slots__ = ("file", "line", "message", "metric")

    def __init__(self, file: str, metric: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.metric = metric
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.metric}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class RecordError(FxaMetricsError):
    """A record failed a definition or consent check (strict mode only).

    In production mode the same condition drops the record and increments the
    drop counter named by ``reason``.
    """

    reason = "invalid"

    def __init__(self, metric: str, field: str | None, message: str) -> None:
        self.metric = metric
        self.field = field
        where = f"{metric}.{field}" if field else metric
        super().__init__(f"{where}: {message}")


class UndefinedMetricError(RecordError):
    """The metric is not in the loaded definitions."""

    reason = "undefined"


class InvalidExtraError(RecordError):
    """An event extra key is not declared for the event, or its value has the wrong type."""

    reason = "invalid_extra"


class InvalidValueError(RecordError):
    """A metric value has the wrong type or is out of range."""

    reason = "invalid_value"


class ValueTooLongError(RecordError):
    """A string or extra is over Glean's length limit (production truncates and counts)."""

    reason = "invalid_overflow"


class ExpiredMetricError(RecordError):
    """The metric's ``expires`` is in the past."""

    reason = "expired"


class DisabledMetricError(RecordError):
    """The metric is ``disabled: true``."""

    reason = "disabled"


class UndeclaredPingError(RecordError):
    """The ping is not declared in pings.yaml nor built in.

    Built in: ``events`` and ``server-deletion-request``.
    """

    reason = "undeclared_ping"


class InvalidRecordError(RecordError):
    """A non-Glean record (log, statsd, crash) is malformed: bad name, tag or value."""

    reason = "invalid_record"


class PiiRejectedError(InvalidRecordError):
    """A value that looks like user identity (email, IP, 32+ hex token) where none may go."""

    reason = "pii"
