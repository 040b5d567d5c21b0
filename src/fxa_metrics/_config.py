"""Settings: validated once, at ``configure()``, so a misconfiguration fails loudly at start-up.

Every option is a typed attrs field: a misspelt keyword is a TypeError (turned
into :class:`~fxa_metrics.ConfigurationError`), never a silently ignored key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from os import PathLike
from typing import IO, Any, Literal, TypeAlias

import attrs

from ._errors import ConfigurationError
from ._sink import Sink

_APP_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | PathLike):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def _nonempty(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attr.name} must be a non-empty string, got {value!r}")


def _matches(pattern: re.Pattern[str]) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"{attr.name}={value!r} must match {pattern.pattern}")

    return check


def _sample_rate(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{attr.name} must be within 0.0..1.0, got {value!r}")


# A host's account lookup for consent: uid or email -> True (the account has
# metricsOptOutAt set), False (it has not), None (no such account). Sync or async.
ConsentLookup: TypeAlias = Callable[[str], bool | Awaitable[bool | None] | None]


def _lookup(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise ValueError(
            f"{attr.name} must be a callable (uid/email -> bool | None, sync or async) "
            f"or None, got {type(value).__name__}"
        )


def _timeout(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    # An upper bound too: a "timeout" of minutes would stall requests as surely as none.
    if not ok or not 0.0 < value <= 30.0:
        raise ValueError(f"{attr.name} must be None or seconds within (0, 30], got {value!r}")


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


@attrs.frozen(kw_only=True)
class Settings:
    """Everything ``configure()`` accepts. See docs/quickstart.md for a worked example."""

    # --- identity: who emits, and where (DESIGN 1: staging vs production is explicit)
    service: str = attrs.field(validator=_matches(_SERVICE))  # MozLog Logger, e.g. fxa-auth-api
    app_id: str = attrs.field(validator=_matches(_APP_ID))  # Glean document_namespace
    app_version: str = attrs.field(validator=_nonempty)
    channel: str = attrs.field(validator=_nonempty)  # e.g. production, stage, development

    # --- definitions
    metrics_yaml: tuple[str, ...] = attrs.field(default=("metrics.yaml",), converter=_paths)
    pings_yaml: tuple[str, ...] = attrs.field(default=(), converter=_paths)

    # --- behaviour
    # Strict (tests, dev): bad records raise. Production: dropped, counted, logged once.
    # FXA_METRICS_STRICT=1 in the environment turns it on when not given.
    strict: bool = attrs.field(
        factory=lambda: bool(_env_bool("FXA_METRICS_STRICT")),
        validator=attrs.validators.instance_of(bool),
    )
    # The service-level data collection switch (consent: service_enabled).
    enabled: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    # --- consent (DESIGN 5, docs/consent.md): the host's account lookups, used only
    # when the token credentials (RequestContext.metrics_opt_out) do not answer.
    consent_lookup_uid: ConsentLookup | None = attrs.field(default=None, validator=_lookup)
    consent_lookup_email: ConsentLookup | None = attrs.field(default=None, validator=_lookup)
    # Bound on one lookup, in seconds; a lookup that takes longer counts as opted out.
    # None calls sync lookups inline on the request's thread, unbounded (for lookups
    # that must run there, e.g. a thread-bound ORM connection).
    consent_timeout: float | None = attrs.field(default=0.5, validator=_timeout)

    # --- Glean server route
    glean_stream: IO[str] | None = None  # default: sys.stdout at write time
    glean_logger: str | None = None  # MozLog Logger of Glean lines; default "<service>-glean"
    # --- MozLog: attach our stdout handler "auto" (only if logging is not set up),
    # "always" or "never"
    mozlog_handler: Literal["auto", "always", "never"] = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "always", "never"))
    )
    mozlog_stream: IO[str] | None = None

    # --- statsd (DESIGN 3.3); None host = no statsd sink unless STATSD_HOST is set
    statsd_host: str | None = None
    statsd_port: int | None = None
    statsd_prefix: str | None = None
    statsd_sample_rate: float = attrs.field(default=1.0, validator=_sample_rate)

    # --- Sentry (DESIGN 3.4); None DSN = use the host's initialised client, if any
    sentry_dsn: str | None = None
    sentry_environment: str | None = None
    sentry_traces_sample_rate: float = attrs.field(default=0.0, validator=_sample_rate)

    # --- extra sinks, per route name ("glean", "mozlog", "statsd", "sentry");
    # with replace_sinks=True only these are used (tests, custom transports).
    sinks: Mapping[str, Sequence[Sink]] = attrs.field(factory=dict)
    replace_sinks: bool = False


def build_settings(**kwargs: Any) -> Settings:
    try:
        return Settings(**kwargs)
    except TypeError as e:
        raise ConfigurationError(f"configure(): {e}") from None
    except ValueError as e:
        raise ConfigurationError(f"configure(): {e}") from None
