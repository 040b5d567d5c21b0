"""PII scrubbing with FxA's rules: pure functions over plain data, usable by any sink.

FxA's shared Sentry filter is the bar (DESIGN 3.4). What it removes:

- tokens ``[a-fA-F0-9]{32,}`` (uids, session and OAuth tokens);
- email addresses, in values, URL paths and query strings (also with ``@`` as ``%40``);
- IPv4 and IPv6 addresses;
- URL user info (``https://user:password@host``);
- the value of every key matching :data:`PII_KEY` (``uid``, ``email*``, ``ip*``, ``user``...);
- request bodies (``request.data``), whole;
- anything deeper than :data:`MAX_DEPTH` or past the first :data:`MAX_BREADTH` items;
- and it drops errors a user caused (HTTP status below 500) and the email bounce
  errnos (:data:`IGNORED_ERRNOS`), which are expected, not bugs.

Nothing here imports sentry-sdk: the statsd and MozLog sinks can call
:func:`scrub_string`/:func:`scrub_value` on their own data.

>>> scrub_string("reset for alice@example.com from 203.0.113.7")
'reset for [Filtered] from [Filtered]'
>>> scrub_value({"uid": "0123456789abcdef0123456789abcdef", "n": 3})
{'uid': '[Filtered]', 'n': 3}
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
from collections.abc import Mapping
from typing import Any

FILTERED = "[Filtered]"
_FILTERED_AT = FILTERED + "@"
TRUNCATED = "[Truncated]"
MAX_DEPTH = 5
MAX_BREADTH = 50

# FxA's key rule, verbatim. Case-insensitive: header names arrive in any case.
PII_KEY = re.compile(
    r"^oidc-.*|^remote-groups$|^uid$|^email_?|^ip_?|^user$|^user_?(id|name)$", re.IGNORECASE
)
# Credentials that are not PII by FxA's rule but must never leave either
# (Hawk Authorization headers carry token ids; cookies carry sessions).
SECRET_KEY = re.compile(
    r"^(authorization|proxy-authorization|cookies?|set-cookie|password|passwd|secret)$",
    re.IGNORECASE,
)
TOKEN = re.compile(r"[a-fA-F0-9]{32,}")
# The local part takes the characters RFC 5322 allows unquoted, and '%' so a
# percent-encoded one (a%2Bb%40example.com in a query string) still matches;
# but not the URL delimiters / ? & =, or a whole path or query would match
# ("/v1/recovery/a@b.com" keeps its route). For the rare address that holds
# one of those, the part before it stays and the rest is filtered; an address
# made only of them ("?@example.com") is caught by the second branch: an
# "@domain" right after a delimiter.
EMAIL = re.compile(
    r"(?:[\w.!#$%'*+^`{|}~-]+|(?<=[/?&=]))(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    re.IGNORECASE,
)
# Whatever sits between "://" and an "@" before the path is user info.
URL_USERINFO = re.compile(r"(?<=://)[^/\s?#]+@")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)")
# A candidate only; ipaddress decides (so "12:34:56" or a MAC address is kept).
# No look-behind: a leading hex letter ("ab2001:db8::1") must not hide an address.
IPV6_CANDIDATE = re.compile(r"(?:[0-9A-Fa-f]{0,4}:){2,8}[0-9A-Fa-f.]*")
# FxA auth-server errnos that are never reported (its IGNORED_ERROR_NUMBERS):
# BOUNCE_COMPLAINT 133, BOUNCE_HARD 134, BOUNCE_SOFT 135. An address bouncing is
# the user's mail provider speaking, not a bug in the service.
IGNORED_ERRNOS = frozenset({133, 134, 135})

# Event fields that hold random ids or SDK metadata, never user data. Scrubbing
# them would only break Sentry (event_id and trace_id are 32 hex digits).
_VERBATIM = frozenset(
    {
        "event_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "timestamp",
        "start_timestamp",
        "level",
        "platform",
        "sdk",
        "type",
        "lineno",
        "colno",
        "in_app",
        # Set by the service's configuration, not by users ("fxa@v1.2.0" looks like an email).
        "release",
        "environment",
        "dist",
    }
)
# Subtrees of an event that carry caller or request data: these get the depth
# and breadth caps. The rest (exception/stacktrace/frames) is the SDK's own
# skeleton, walked without caps so no frame is lost.
_DATA = frozenset(
    {"vars", "extra", "data", "tags", "user", "headers", "env", "cookies", "query_string"}
)


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    # The candidate may carry a separator on either side ("ip:2001:db8::1." ends a sentence).
    lead = len(text) - len(text.lstrip(":"))
    for start in (0, lead) if lead == 1 else (0,):
        for end in (len(text), len(text.rstrip(".:"))):
            try:
                addr = ipaddress.IPv6Address(text[start:end])
            except ValueError:
                continue
            # "::", "::1" and "d::" name no user, and such short forms occur in
            # code ("std::string"): require two non-zero groups or an embedded IPv4.
            groups = [g for g in addr.exploded.split(":") if g != "0000"]
            if len(groups) >= 2 or addr.ipv4_mapped is not None:
                return text[:start] + FILTERED + text[end:]
    return text


def scrub_string(text: str) -> str:
    """``text`` with emails, URL user info, tokens and IP addresses replaced by ``[Filtered]``.

    >>> scrub_string("https://bob:hunter2@accounts.example/v1/a%40b.com?ip=2001:db8::7:1")
    'https://[Filtered]@accounts.example/v1/[Filtered]?ip=[Filtered]'
    """
    if len(text) < 5:
        return text  # shorter than any address or token ("@b.io" after a delimiter, "1:2::")
    # Each rule runs only when the characters it needs are there: substring
    # tests are C-speed, and most strings of an event (code lines, names,
    # timestamps) need at most one rule. Order matters: user info before
    # emails ("user:pw@host.com" would leave "user:"), emails before tokens (a
    # hex local part).
    if "://" in text:
        text = URL_USERINFO.sub(_FILTERED_AT, text)
    if "@" in text or "%40" in text:
        text = EMAIL.sub(FILTERED, text)
    if len(text) >= 32:
        text = TOKEN.sub(FILTERED, text)
    if text.count(":") >= 2:
        text = IPV6_CANDIDATE.sub(_ipv6, text)
    if text.count(".") >= 3:
        text = IPV4.sub(FILTERED, text)
    return text


_KEY_CACHE: dict[str, bool] = {}


def pii_key(key: str) -> bool:
    """Whether a value under ``key`` is filtered whole (FxA's key rule, or a credential).

    Cached: an event repeats the same few keys (variable names, headers). The
    cache is cleared when full, so a stream of distinct keys cannot grow it.
    """
    hit = _KEY_CACHE.get(key)
    if hit is None:
        if len(_KEY_CACHE) >= 4096:
            _KEY_CACHE.clear()
        hit = _KEY_CACHE[key] = bool(PII_KEY.match(key) or SECRET_KEY.match(key))
    return hit


def scrub_value(value: Any, key: Any = None, depth: int = 1) -> Any:
    """A scrubbed copy of ``value``: strings scrubbed, PII keys filtered, caps applied.

    ``depth`` is how deep ``value`` sits in its data root (1 = the root's own
    items). Containers below :data:`MAX_DEPTH` become ``[Truncated]``; only the
    first :data:`MAX_BREADTH` items of a container are kept. Anything that is
    not plain data is replaced by its scrubbed ``repr``, so the result is
    always JSON-able.

    >>> scrub_value({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})
    {'a': {'b': {'c': {'d': {'e': '[Truncated]'}}}}}
    """
    if key.__class__ is str and pii_key(key):
        return FILTERED
    cls = value.__class__
    # Exact-type checks first: an event is almost all str/dict/list/int, and
    # isinstance against the Mapping ABC is several times slower.
    if cls is str:
        return scrub_string(value)
    if value is None or cls is int or cls is bool or cls is float:
        return value
    if isinstance(value, str):
        return scrub_string(value)
    if isinstance(value, bool | int | float):
        return value
    if cls is dict or isinstance(value, Mapping):
        if depth > MAX_DEPTH:
            return TRUNCATED
        items = value.items()
        if len(value) > MAX_BREADTH:
            items = itertools.islice(items, MAX_BREADTH)
        depth += 1
        return {
            (scrub_string(k) if k.__class__ is str else k): scrub_value(v, k, depth)
            for k, v in items
        }
    if cls is list or isinstance(value, list | tuple | set | frozenset):
        if depth > MAX_DEPTH:
            return TRUNCATED
        return [scrub_value(v, None, depth + 1) for v in list(value)[:MAX_BREADTH]]
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break scrubbing
        text = f"<{type(value).__name__} object>"
    return scrub_string(text)


# Stack frame fields that come from the service's code, not from a request:
# the same few hundred strings in every event, so their scrubbed form is cached.
_CODE = frozenset(
    {"pre_context", "context_line", "post_context", "filename", "abs_path", "module", "function"}
)
_scrub_code = functools.lru_cache(maxsize=8192)(scrub_string)


def _walk(value: Any, key: Any) -> Any:
    """Scrub the event skeleton: no caps until a data subtree (:data:`_DATA`) is entered."""
    if key.__class__ is str:
        if key in _VERBATIM:
            return value
        if key in _DATA:
            return scrub_value(value, key)
        if key in _CODE:
            if value.__class__ is str:
                return _scrub_code(value)
            if value.__class__ is list:
                return [_scrub_code(v) if v.__class__ is str else _walk(v, None) for v in value]
    cls = value.__class__
    if cls is str:
        return scrub_string(value)
    if cls is dict or isinstance(value, Mapping):
        if key == "contexts":
            # Each context is caller data, except the SDK's trace ids.
            return {k: _walk(v, k) if k == "trace" else scrub_value(v, k) for k, v in value.items()}
        out = {}
        # The request body goes whole (FxA: passwords, emails, tokens in bodies).
        drop = "data" if key == "request" else None
        # Leaves inline: a call per node would be most of the cost of a walk.
        for k, v in value.items():
            if k == drop:
                continue
            if k in _VERBATIM:
                out[k] = v
            elif k in _DATA:
                out[k] = scrub_value(v, k)
            elif k.__class__ is str and pii_key(k):
                out[k] = FILTERED
            elif k in _CODE:
                out[k] = _walk(v, k)
            elif v.__class__ is str:
                out[k] = scrub_string(v)
            elif v is None or v.__class__ is int or v.__class__ is bool:
                out[k] = v
            else:
                out[k] = _walk(v, k)
        return out
    if cls is list:
        return [_walk(v, None) for v in value]
    return scrub_value(value, key)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception stands for, if it says (werkzeug, Starlette, Django REST)."""
    for attr in ("status_code", "code", "status"):
        status = getattr(exc, attr, None)
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            return status
    return None


def ignored_error(exc: BaseException) -> str | None:
    """Why FxA would not report ``exc`` (``"status"``/``"errno"``), or None to report it.

    >>> class AppError(Exception):
    ...     status_code, errno = 400, 134
    >>> ignored_error(AppError()), ignored_error(ValueError())
    ('status', None)
    """
    status = http_status(exc)
    if status is not None and status < 500:
        return "status"
    # OSError.errno is the C errno (133 is EHWPOISON on Linux): not FxA's.
    errno = None if isinstance(exc, OSError) else getattr(exc, "errno", None)
    if isinstance(errno, int) and errno in IGNORED_ERRNOS:
        return "errno"
    return None


def _hint_exception(hint: Mapping[str, Any] | None) -> BaseException | None:
    if not hint:
        return None
    exc_info = hint.get("exc_info")
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
        return exc if isinstance(exc, BaseException) else None
    return None


def scrub_event(
    event: Mapping[str, Any], hint: Mapping[str, Any] | None = None, *, service: str | None = None
) -> dict[str, Any] | None:
    """A scrubbed copy of a Sentry event, or None when FxA would not report it.

    Use as (or inside) a ``before_send``. ``hint`` is Sentry's hint: its
    ``exc_info`` decides the status/errno drop. ``service`` becomes the
    ``fxa.name`` tag. The input is not modified.

    >>> scrub_event({"message": "x", "request": {"data": "secret", "url": "/a/b@c.io"}},
    ...             service="fxa-auth-server")
    {'message': 'x', 'request': {'url': '/a/[Filtered]'}, 'tags': {'fxa.name': 'fxa-auth-server'}}
    """
    exc = _hint_exception(hint)
    if exc is not None and ignored_error(exc) is not None:
        return None
    response = (event.get("contexts") or {}).get("response")
    if isinstance(response, Mapping):
        status = response.get("status_code")
        if isinstance(status, int) and status < 500:
            return None
    # "user" is a PII key: the whole user interface goes (an opted-in user's
    # hashed id is put back by the Sentry sink, after this).
    out: dict[str, Any] = _walk({k: v for k, v in event.items() if k != "user"}, None)
    if service is not None:
        tags = out.get("tags")
        out["tags"] = {**(tags if isinstance(tags, dict) else {}), "fxa.name": service}
    return out
