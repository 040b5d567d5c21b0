"""The one identity scrubber: FxA's rules plus credential shapes, shared by every channel
that must carry no identity (Sentry, statsd, fxa_metrics' own warnings).

FxA's shared Sentry filter is the floor (DESIGN 3.4). What it removes:

- tokens ``[a-fA-F0-9]{32,}`` (uids, session and OAuth tokens);
- email addresses, in values, URL paths and query strings (also with ``@`` as ``%40``);
- IPv4 and IPv6 addresses;
- URL user info (``https://user:password@host``);
- the value of every key matching :data:`PII_KEY` (``uid``, ``email*``, ``ip*``, ``user``...);
- request bodies (``request.data``), whole;
- anything deeper than :data:`MAX_DEPTH` or past the first :data:`MAX_BREADTH` items;
- and it drops errors a user caused (HTTP status below 500) and the email bounce
  errnos (:data:`IGNORED_ERRNOS`), which are expected, not bugs.

FxA's filter misses credentials that are not hex (DESIGN 9), so this one also removes:

- authorization values: ``Bearer``/``Basic``/``Digest``/``Negotiate``/``Hawk`` credentials
  (the scheme stays, so an event still says what kind of credential was involved);
- JWTs (``eyJ...`` header and payload), whatever they are embedded in;
- cookies (``Cookie: ...``/``Set-Cookie: ...``) in text;
- query, form and ``key=value`` parameters whose name looks like a secret
  (:data:`SECRET_PARAM`: ``password``, ``token``, ``secret``, ``key``, ``code``, ``session``...);
- the value of every key whose *name* looks like a secret (:data:`SECRET_KEY`, by pattern:
  ``auth_header``, ``X-Auth-Token``, ``sessionToken``, ``bearer``...), not only exact names.

Every rule matches after decoding: percent-encoding (applied up to three times,
so ``%2540`` is an ``@``) and ``+`` for a space. A string where nothing matched
is returned exactly as given.

Nothing here imports sentry-sdk: the statsd sink and the stats logger call
:func:`identity`/:func:`log_safe`; the consent gate and the Sentry route call
:func:`strip_analytics`.

>>> scrub_string("reset for alice@example.com from 203.0.113.7")
'reset for [Filtered] from [Filtered]'
>>> scrub_string("GET /v1/recovery/bob%2540example.com?password=hunter2")
'GET /v1/recovery/[Filtered]?password=[Filtered]'
>>> scrub_value({"uid": "0123456789abcdef0123456789abcdef", "auth_header": "x", "n": 3})
{'uid': '[Filtered]', 'auth_header': '[Filtered]', 'n': 3}
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from ._common_metrics import COMMON_METRICS

FILTERED = "[Filtered]"
_FILTERED_AT = FILTERED + "@"
TRUNCATED = "[Truncated]"
MAX_DEPTH = 5
MAX_BREADTH = 50

# FxA's key rule, verbatim. Case-insensitive: header names arrive in any case.
PII_KEY = re.compile(
    r"^oidc-.*|^remote-groups$|^uid$|^email_?|^ip_?|^user$|^user_?(id|name)$", re.IGNORECASE
)
# Credentials by key *pattern*: a frame local named auth_header, a header
# X-Auth-Token, a field sessionToken. Exact names missed all three (issue 10).
SECRET_KEY = re.compile(
    r"auth|token|secret|passw|cookie|session|bearer|jwt|credential|csrf|api_?key"
    r"|private_?key|^pwd$|^otp$",
    re.IGNORECASE,
)
# Names that match a pattern above but are public identifiers, not credentials:
# the relying party's OAuth client id is a Glean common metric (DESIGN 2).
_PUBLIC_KEYS = frozenset({"oauthclientid"})
TOKEN = re.compile(r"[a-fA-F0-9]{32,}")
# The local part takes the characters RFC 5322 allows unquoted, and '%' so a
# percent-encoded one (a%2Bb%40example.com in a query string) still matches;
# but not the URL delimiters / ? & =, or a whole path or query would match
# ("/v1/recovery/a@b.com" keeps its route). For the rare address that holds
# one of those, the part before it stays and the rest is filtered; an address
# made only of them ("?@example.com") is caught by the second branch: an
# "@domain" right after a delimiter.
# The local part starts only where a run of its characters starts (the
# look-behind): "aaaa...a" with no "@" is then one linear scan, not one per offset.
EMAIL = re.compile(
    r"(?:(?<![\w.!#$%'*+^`{|}~-])[\w.!#$%'*+^`{|}~-]+|(?<=[/?&=]))"
    r"(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    re.IGNORECASE,
)
# Whatever sits between "://" and an "@" before the path is user info.
URL_USERINFO = re.compile(r"(?<=://)[^/\s?#]+@")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)")
# A candidate only; ipaddress decides (so "12:34:56" or a MAC address is kept).
# No look-behind: a leading hex letter ("ab2001:db8::1") must not hide an address.
IPV6_CANDIDATE = re.compile(r"(?:[0-9A-Fa-f]{0,4}:){2,8}[0-9A-Fa-f.]*")
# Authorization values (RFC 7235 schemes, and Hawk's id="..", mac=".." list):
# group 1 is the scheme, kept; the credentials after it go.
AUTH_VALUE = re.compile(
    r"\b(Bearer|Basic|Digest|Negotiate)\s+[A-Za-z0-9._~+/=-]+"
    r"|\b(Hawk)\s+(?:[A-Za-z]+=\\?\"[^\"\\]*\\?\"[\s,]*)+",
    re.IGNORECASE,
)
# A JWT (or JWE): base64url JSON header "eyJ", a dot, then at least a payload.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,3}")
# A cookie header written out in text: everything to the end of the line goes.
COOKIE = re.compile(r"\b((?:set-)?cookie\s*[:=]\s*)[^\r\n]+", re.IGNORECASE)
# name=value (query, form, cookie, log text) or 'name': 'value' (a dict's repr,
# JSON) where the name looks like a secret: group "name" and the separator stay.
# A name starts only where a run of name characters starts (the look-behind)
# and is bounded: otherwise a long word with no "=" costs quadratic time, the
# regex retrying from every offset. Only the name and separator are matched:
# whether the name looks like a secret is decided in _params, and a value is
# consumed only then, so "q=password=x" still finds the password.
# The separator takes an opening quote with it: a repr (``Session(token='x')``) too.
SECRET_PARAM = re.compile(r"(?<![\w.\[\]-])([\w.\[\]-]{1,80})(=[\"']?|[\"']\s*:\s*[\"']?)")
_PARAM_VALUE = re.compile(r"[^&\s;#\"',<>]+")
_SECRET_NAME = re.compile(
    r"passw|pwd|token|secret|key|code|session|auth|cookie|jwt|credential|csrf|otp", re.IGNORECASE
)
# FxA auth-server errnos that are never reported (its IGNORED_ERROR_NUMBERS):
# BOUNCE_COMPLAINT 133, BOUNCE_HARD 134, BOUNCE_SOFT 135. An address bouncing is
# the user's mail provider speaking, not a bug in the service.
IGNORED_ERRNOS = frozenset({133, 134, 135})
# Percent-decoding rounds: %252540 is three. A fixed bound keeps scrubbing
# linear in the input whatever an attacker nests.
_DECODE_ROUNDS = 3
_AUTH_SCHEMES = ("bearer", "basic", "digest", "negotiate", "hawk")
_PARAM_HINTS = ("pass", "pwd", "token", "secret", "key", "code", "session", "auth", "cookie",
                "jwt", "credential", "csrf", "otp")  # fmt: skip

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


# ------------------------------------------------------------------ strings


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


def _auth(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2)} {FILTERED}"


def _params(text: str) -> str:
    """``text`` with the value of every secret-named parameter filtered."""
    out: list[str] = []
    pos = 0
    for m in SECRET_PARAM.finditer(text):
        name = m.group(1)
        if m.start() < pos or not _SECRET_NAME.search(name) or _norm(name) in _PUBLIC_KEYS:
            continue  # inside a value already filtered, or not a secret's name
        value = _PARAM_VALUE.match(text, m.end())
        if value is not None:
            out += (text[pos : m.end()], FILTERED)
            pos = value.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _credentials(text: str) -> str:
    """Credential shapes; each regex runs only when a cheap substring test says it may match."""
    if "eyJ" in text:
        text = JWT.sub(FILTERED, text)
    low = text.lower()
    if any(s in low for s in _AUTH_SCHEMES):
        text = AUTH_VALUE.sub(_auth, text)
    if "cookie" in low:
        text = COOKIE.sub(r"\1" + FILTERED, text)
    if ("=" in text or ":" in text) and any(h in low for h in _PARAM_HINTS):
        text = _params(text)
    return text


def _scrub_plain(text: str) -> str:
    # Each rule runs only when the characters it needs are there: substring
    # tests are C-speed, and most strings of an event (code lines, names,
    # timestamps) need at most one rule. Order matters: user info before
    # emails ("user:pw@host.com" would leave "user:"), credentials before
    # emails and tokens (a Bearer value may hold either), emails before tokens
    # (a hex local part).
    if "://" in text:
        text = URL_USERINFO.sub(_FILTERED_AT, text)
    if len(text) >= 8:
        text = _credentials(text)
    if "@" in text or "%40" in text:
        text = EMAIL.sub(FILTERED, text)
    if len(text) >= 32:
        text = TOKEN.sub(FILTERED, text)
    if text.count(":") >= 2:
        text = IPV6_CANDIDATE.sub(_ipv6, text)
    if text.count(".") >= 3:
        text = IPV4.sub(FILTERED, text)
    return text


def decode(text: str) -> str:
    """``text`` percent-decoded until stable (at most three rounds: ``%2540`` is ``@``).

    >>> decode("a%252540b")
    'a@b'
    """
    for _ in range(_DECODE_ROUNDS):
        if "%" not in text:
            break
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def scrub_string(text: str) -> str:
    """``text`` with identity and credentials replaced by ``[Filtered]``.

    Rules match the decoded text (percent-encoding, ``+``); when one fires the
    result is the decoded, scrubbed text, and otherwise ``text`` unchanged.

    >>> scrub_string("https://bob:hunter2@accounts.example/v1/a%40b.com?ip=2001:db8::7:1")
    'https://[Filtered]@accounts.example/v1/[Filtered]?ip=[Filtered]'
    >>> scrub_string("Authorization: Bearer+mF_9.B5f-4.1JqM")
    'Authorization: Bearer [Filtered]'
    """
    if len(text) < 5:
        return text  # shorter than any address or token ("@b.io" after a delimiter, "1:2::")
    base = decode(text) if "%" in text else text
    out = _scrub_plain(base)
    if "+" in out:
        # Form encoding: "+" is a space ("Bearer+abc"). Only used when it
        # reveals something, since "+" is literal in paths and email addresses.
        spaced = out.replace("+", " ")
        again = _scrub_plain(spaced)
        if again != spaced:
            out = again
    return text if out == base else out


_IDENTITY_RULES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("user info in a URL", lambda t: "://" in t and URL_USERINFO.search(t) is not None),
    ("a JWT", lambda t: JWT.search(t) is not None),
    ("an authorization credential", lambda t: AUTH_VALUE.search(t) is not None),
    ("a cookie", lambda t: COOKIE.search(t) is not None),
    ("a secret parameter", lambda t: _params(t) != t),
    ("an email address", lambda t: EMAIL.search(t) is not None),
    ("a 32+ hex token", lambda t: TOKEN.search(t) is not None),
    ("an IP address", lambda t: IPV4.search(t) is not None),
    ("an IP address", lambda t: t.count(":") >= 2 and _scrub_plain(t) != t),
)


def identity(text: str) -> str | None:
    """What identity or credential ``text`` holds after decoding (``"a JWT"``...), or None.

    For channels that refuse rather than filter (statsd names and tags).

    >>> identity("/v1/recovery/a%2540example.com"), identity("/v1/account/login")
    ('an email address', None)
    """
    base = decode(text) if "%" in text else text
    variants = (base, base.replace("+", " ")) if "+" in base else (base,)
    for variant in variants:
        for what, found in _IDENTITY_RULES:
            if found(variant):
                return what
    return None


# ------------------------------------------------------------------ keys and values


_KEY_CACHE: dict[str, bool] = {}


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace(".", "").replace("-", "")


def pii_key(key: str) -> bool:
    """Whether a value under ``key`` is filtered whole (FxA's key rule, or a credential name).

    Cached: an event repeats the same few keys (variable names, headers). The
    cache is cleared when full, so a stream of distinct keys cannot grow it.

    >>> pii_key("X-Auth-Token"), pii_key("oauth_client_id"), pii_key("reason")
    (True, False, False)
    """
    hit = _KEY_CACHE.get(key)
    if hit is None:
        if len(_KEY_CACHE) >= 4096:
            _KEY_CACHE.clear()
        hit = _KEY_CACHE[key] = bool(
            PII_KEY.match(key) or (SECRET_KEY.search(key) and _norm(key) not in _PUBLIC_KEYS)
        )
    return hit


def _scrub_mapping(value: Mapping[Any, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        return TRUNCATED
    items: Iterable[tuple[Any, Any]] = value.items()
    if len(value) > MAX_BREADTH:
        items = itertools.islice(items, MAX_BREADTH)
    depth += 1
    return {
        (scrub_string(k) if k.__class__ is str else k): scrub_value(v, k, depth) for k, v in items
    }


def _scrub_other(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break scrubbing
        text = f"<{type(value).__name__} object>"
    return scrub_string(text)


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
        return _scrub_mapping(value, depth)
    if cls is list or isinstance(value, list | tuple | set | frozenset):
        if depth > MAX_DEPTH:
            return TRUNCATED
        return [scrub_value(v, None, depth + 1) for v in list(value)[:MAX_BREADTH]]
    return _scrub_other(value)


# ------------------------------------------------------------------ Sentry events


# Stack frame fields that come from the service's code, not from a request:
# the same few hundred strings in every event, so their scrubbed form is cached.
_CODE = frozenset(
    {"pre_context", "context_line", "post_context", "filename", "abs_path", "module", "function"}
)
_scrub_code = functools.lru_cache(maxsize=8192)(scrub_string)
# Keys _walk_item must look at before treating a value as a plain leaf.
_SPECIAL = _VERBATIM | _DATA | _CODE


def _walk_code(value: Any) -> Any:
    if value.__class__ is str:
        return _scrub_code(value)
    if value.__class__ is list:
        return [_scrub_code(v) if v.__class__ is str else _walk(v, None) for v in value]
    return _walk(value, None)


def _walk_item(key: Any, value: Any) -> Any:
    """An item of a skeleton mapping whose key is in :data:`_SPECIAL` or is a PII key."""
    if key in _VERBATIM:
        return value
    if key in _DATA:
        return scrub_value(value, key)
    if key in _CODE:
        return _walk_code(value)
    return FILTERED  # a PII or credential key


def _walk_mapping(value: Mapping[Any, Any], key: Any) -> dict[Any, Any]:
    if key == "contexts":
        # Each context is caller data, except the SDK's trace ids.
        return {k: _walk(v, k) if k == "trace" else scrub_value(v, k) for k, v in value.items()}
    out = {}
    # The request body goes whole (FxA: passwords, emails, tokens in bodies).
    drop = "data" if key == "request" else None
    # Plain leaves inline: a call per node would be most of the cost of a walk.
    for k, v in value.items():
        if k == drop:
            continue
        if k in _SPECIAL or (k.__class__ is str and pii_key(k)):
            out[k] = _walk_item(k, v)
        elif v.__class__ is str:
            out[k] = scrub_string(v)
        elif v is None or v.__class__ is int or v.__class__ is bool:
            out[k] = v
        else:
            out[k] = _walk(v, k)
    return out


def _walk(value: Any, key: Any) -> Any:
    """Scrub the event skeleton: no caps until a data subtree (:data:`_DATA`) is entered."""
    cls = value.__class__
    if cls is str:
        return scrub_string(value)
    if cls is dict or isinstance(value, Mapping):
        return _walk_mapping(value, key)
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
    """A scrubbed copy of a Sentry event or transaction, or None when FxA would not report it.

    Use as (or inside) a ``before_send``/``before_send_transaction``: messages,
    exception values (their chained causes and ``__notes__`` included), tags,
    extra, contexts, request, breadcrumbs, frame locals, spans and their data
    are all walked. ``hint`` is Sentry's hint: its ``exc_info`` decides the
    status/errno drop. ``service`` becomes the ``fxa.name`` tag. The input is
    not modified.

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


# ------------------------------------------------------------------ analytics (consent)


# Fields a consenting user's logs and crash contexts may carry but an opted-out
# user's must not: the FxA metrics context, i.e. what fills the Glean common
# metrics, except the uid, which operational logs keep (FxA's request.summary
# does). Matched after normalising case and separators, so ``flowId``,
# ``flow_id`` and ``session.flow_id`` are one name.
ANALYTICS_FIELDS: frozenset[str] = frozenset(
    {_norm(attr) for name, attr in COMMON_METRICS.items() if name != "account.user_id"}
    | {_norm(name) for name in COMMON_METRICS if name != "account.user_id"}
    # FxA's own spellings in metricsContext that are not Glean metric names.
    | {"flowbegintime", "utm", "useridsha256", "clientid", "deviceid"}
)
# Nesting a host's log fields may reach before the rest is cut (fail closed):
# deeper than any real metricsContext, and a bound against cycles.
MAX_STRIP_DEPTH = 16
_DROP = object()  # _strip_mapping's marker: remove this key
_ANALYTICS_VERDICT: dict[str, bool] = {}


def is_analytics(key: str) -> bool:
    """Whether ``key`` names an analytics (metrics-context) field, in any spelling.

    >>> is_analytics("flowBeginTime"), is_analytics("utm_source"), is_analytics("errno")
    (True, True, False)
    """
    # Field names come from code, so they are few: remember each verdict
    # (bounded, in case they are not).
    verdict = _ANALYTICS_VERDICT.get(key)
    if verdict is None:
        norm = _norm(key)
        verdict = norm in ANALYTICS_FIELDS or norm.startswith("utm")
        if len(_ANALYTICS_VERDICT) < 4096:
            _ANALYTICS_VERDICT[key] = verdict
    return verdict


def _strip(value: Any, depth: int) -> Any:
    if isinstance(value, Mapping):
        return _strip_mapping(value, depth)
    if isinstance(value, list | tuple):
        if depth >= MAX_STRIP_DEPTH:
            return TRUNCATED
        items = [_strip(v, depth + 1) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _strip_mapping(value: Mapping[Any, Any], depth: int) -> Any:
    if depth >= MAX_STRIP_DEPTH:
        return TRUNCATED
    out: dict[Any, Any] | None = None
    for k, v in value.items():
        if k.__class__ is str and is_analytics(k):
            new: Any = _DROP
        elif v.__class__ is str or v is None or isinstance(v, int | float):
            continue  # a leaf under a kept key: the common case, nothing to build
        else:
            new = _strip(v, depth + 1)
            if new is v:
                continue
        if out is None:  # the first change: copy what came before it
            out = dict(value)
        if new is _DROP:
            del out[k]
        else:
            out[k] = new
    return value if out is None else out


def strip_analytics(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields`` without analytics fields, at any depth (a nested ``metricsContext`` too).

    For an opted-out user's MozLog fields and Sentry ``contexts.fxa``
    (DESIGN 5, 9). Returns ``fields`` itself when there is nothing to strip,
    so the common case allocates nothing. Containers nested deeper than
    :data:`MAX_STRIP_DEPTH` are cut to ``[Truncated]`` (fail closed).

    >>> strip_analytics({"errno": 0, "metricsContext": {"flowId": "f", "utm_source": "s"}})
    {'errno': 0, 'metricsContext': {}}
    """
    out: Mapping[str, Any] = _strip_mapping(fields, 0)
    return out


# ------------------------------------------------------------------ our own warnings


# Characters that would split or hide a line in a plain-text log: C0/C1
# controls (newline, escape sequences), Unicode line/paragraph separators,
# bidi overrides and zero-width characters, and lone surrogates (unencodable).
_UNSAFE_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
LOG_SAFE_MAX = 300


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def log_safe(text: Any) -> str:
    """``text`` as fxa_metrics' warnings may show it: scrubbed, on one line, clipped.

    Names (metrics, extra keys, tags) pass through :func:`scrub_string`; every
    character that could break or hide a log line is escaped.

    >>> log_safe("login\\nfor bob@example.com\\u2028x")
    'login\\\\u000afor [Filtered]\\\\u2028x'
    """
    shown: str = text if isinstance(text, str) else _scrub_other(text)
    shown = _UNSAFE_CHARS.sub(_escape, scrub_string(shown))
    if len(shown) > LOG_SAFE_MAX:
        # Clipped after scrubbing: a secret found is already gone whole.
        shown = shown[:LOG_SAFE_MAX] + "..."
    return shown
