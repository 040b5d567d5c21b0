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


def _optional_host(_inst: Any, attr: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{attr.name} must be a host name or address, got {value!r}")


def _port(value: Any) -> int:
    # Accepts the STATSD_PORT string; bool is an int subclass but never a port.
    try:
        port = int(value) if isinstance(value, str | int) and not isinstance(value, bool) else -1
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"statsd_port (or STATSD_PORT) must be 1..65535, got {value!r}")
    return port


_STATSD_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


def _prefix(value: Any) -> str | None:
    if value is None:
        return None
    stripped = value.removesuffix(".") if isinstance(value, str) else None
    if not stripped or not _STATSD_PREFIX.match(stripped):
        raise ValueError(
            f"statsd_prefix (or STATSD_PREFIX) must be dotted words of A-Z a-z 0-9 _ -, "
            f"like 'fxa-auth-server.'; got {value!r}"
        )
    return stripped


def _statsd_rate(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    # "%s" of a rate below 1e-4 is scientific notation, which Etsy statsd misreads as @1.
    if 0 < value < 0.0001:
        raise ValueError(f"{attr.name} must be 0 or 0.0001..1, got {value!r}")


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
    mozlog_handler: Literal["auto", "own", "host", "always", "never"] = attrs.field(
        default="auto",
        validator=attrs.validators.in_(("auto", "own", "host", "always", "never")),
    )
    mozlog_stream: IO[str] | None = None
    # How long a line may wait for a stdout pipe nobody reads before it is
    # dropped and counted (write_timeout); record() never blocks longer.
    write_timeout: float = attrs.field(default=0.5, validator=_timeout)

    # --- statsd (DESIGN 3.3). Not given = the usual environment variables
    # (STATSD_HOST, STATSD_PORT, STATSD_PREFIX); no host at all = no statsd sink.
    # The host is resolved when the sink is built, so a typo fails configure().
    statsd_host: str | None = attrs.field(
        factory=lambda: os.environ.get("STATSD_HOST") or None, validator=_optional_host
    )
    statsd_port: int = attrs.field(
        factory=lambda: _port(os.environ.get("STATSD_PORT") or 8125), converter=_port
    )
    # "fxa-auth-server." and "fxa-auth-server" are the same prefix.
    statsd_prefix: str | None = attrs.field(
        factory=lambda: os.environ.get("STATSD_PREFIX") or None, converter=_prefix
    )
    # Default for records that do not set their own ``rate``.
    statsd_sample_rate: float = attrs.field(default=1.0, validator=[_sample_rate, _statsd_rate])

    # --- Sentry (DESIGN 3.4); None DSN = use the host's initialised client, if any
    sentry_dsn: str | None = None
    sentry_environment: str | None = None
    sentry_traces_sample_rate: float = attrs.field(default=0.0, validator=_sample_rate)

    # --- extra sinks, per route name ("glean", "mozlog", "statsd", "sentry");
    # with replace_sinks=True only these are used (tests, custom transports).
    sinks: Mapping[str, Sequence[Sink]] = attrs.field(factory=dict)
    replace_sinks: bool = False
    # fxa_metrics.Route objects added to the default table, each naming its
    # consent policy (checked, with everything else about them, by build_table).
    routes: tuple[object, ...] = attrs.field(default=(), converter=tuple)


def build_settings(**kwargs: Any) -> Settings:
    try:
        return Settings(**kwargs)
    except TypeError as e:
        raise ConfigurationError(f"configure(): {e}") from None
    except ValueError as e:
        raise ConfigurationError(f"configure(): {e}") from None
