"""Planted secrets and the per-channel rules of docs/privacy.md, shared by the privacy tests.

A :class:`Plant` is one set of secrets of every kind issue 10 names. The
``check_*`` functions apply docs/privacy.md to what a channel received: where a
secret may appear, they remove exactly those fields; anything left must hold
none of the secrets (after percent-decoding, so an encoded leak counts too).
"""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import attrs
from hypothesis import strategies as st

from fxa_metrics._scrub import decode

_ALNUM = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits


@attrs.frozen
class Plant:
    """One secret of each kind; every value is random, so a match cannot be a coincidence."""

    email_local: str
    email_domain: str
    uid: str
    ipv4: str
    ipv6: str
    bearer: str
    jwt_sub: str
    jwt_sig: str
    cookie: str
    password: str
    url_password: str
    session_token: str
    # Analytics (metrics-context) values: not identity, but an opted-out user's must go nowhere.
    flow_id: str
    utm_source: str
    service: str
    device_type: str

    @property
    def email(self) -> str:
        return f"{self.email_local}@{self.email_domain}.com"

    @property
    def jwt(self) -> str:
        def b64(obj: dict[str, str]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        return f"{b64({'alg': 'HS256'})}.{b64({'sub': self.jwt_sub})}.{self.jwt_sig}"

    @property
    def userinfo_url(self) -> str:
        return f"https://admin:{self.url_password}@db.internal/accounts"

    def identity(self) -> dict[str, str]:
        """Every identity/credential secret, by name (what no-identity channels must lack)."""
        return {
            "email": self.email,
            "email_local": self.email_local,
            "email_domain": self.email_domain,
            "uid": self.uid,
            "ipv4": self.ipv4,
            "ipv6": self.ipv6,
            "bearer": self.bearer,
            "jwt": self.jwt,
            "jwt_sig": self.jwt_sig,
            "cookie": self.cookie,
            "password": self.password,
            "url_password": self.url_password,
            "session_token": self.session_token,
        }

    def analytics(self) -> dict[str, str]:
        return {
            "flow_id": self.flow_id,
            "utm_source": self.utm_source,
            "service": self.service,
            "device_type": self.device_type,
        }

    def everything(self) -> dict[str, str]:
        return {**self.identity(), **self.analytics()}


def _mixed(text: str) -> bool:
    # A letter and a digit: no word that the output holds anyway ("entrypoint").
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _text(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=n + 8).filter(_mixed)


def _ipv6() -> st.SearchStrategy[str]:
    # Eight non-zero groups: the printed form is the full address, exactly.
    group = st.integers(0x1000, 0xFFFF).map(lambda g: f"{g:x}")
    return st.lists(group, min_size=8, max_size=8).map(":".join)


def _ipv4() -> st.SearchStrategy[str]:
    # Octets of two or three digits: no output's version or float looks like one.
    return st.lists(st.integers(11, 254), min_size=4, max_size=4).map(
        lambda o: ".".join(map(str, o))
    )


def _distinct(p: Plant) -> bool:
    # The drawn values only: derived ones (the email holds its local part) overlap by design.
    values = list(attrs.asdict(p).values())
    return all(a == b or a not in b for a in values for b in values)


plants: st.SearchStrategy[Plant] = st.builds(
    Plant,
    email_local=_text(_LOWER, 10),
    email_domain=_text(_LOWER, 10),
    uid=_text("0123456789abcdef", 32).map(lambda s: s[:32]),
    ipv4=_ipv4(),
    ipv6=_ipv6(),
    bearer=_text(_ALNUM, 24),
    jwt_sub=_text(_ALNUM, 16),
    jwt_sig=_text(_ALNUM + "_-", 24),
    cookie=_text(_ALNUM, 24),
    password=_text(_ALNUM, 16),
    url_password=_text(_ALNUM, 16),
    session_token=_text("0123456789abcdef", 64).map(lambda s: s[:64]),
    flow_id=_text(_ALNUM, 20),
    utm_source=_text(_ALNUM, 20),
    service=_text(_ALNUM, 20),
    device_type=_text(_ALNUM, 20),
).filter(_distinct)


def found(secrets: dict[str, str], text: str) -> list[str]:
    """The names of the secrets in ``text``, as written or percent-encoded."""
    plain = decode(text)
    return sorted(name for name, value in secrets.items() if value in text or value in plain)


def _drop(obj: Any, path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return
    if isinstance(obj, dict):
        obj.pop(path[-1], None)


# ------------------------------------------------------------------ per channel


def check_no_identity(channel: str, text: str, plant: Plant, consenting: bool) -> None:
    """statsd, Sentry, our warnings: no identity ever; analytics only for a consenting user."""
    secrets = plant.identity() if consenting else plant.everything()
    leaked = found(secrets, text)
    assert not leaked, f"{channel} carries {leaked}:\n{text[:3000]}"


def check_glean(lines: list[dict[str, Any]], plant: Plant, consenting: bool) -> None:
    """A consenting user's product ping carries what the host gave it (user agent, IP, uid,
    metrics context, extras); a deletion request only the uid metrics; nothing else, anywhere."""
    for line in lines:
        fields = line["Fields"]
        payload = json.loads(fields["payload"])
        if fields["document_type"] == "server-deletion-request":
            assert (fields["user_agent"], fields["ip_address"]) == ("", "")
            assert set(payload["metrics"]["string"]) == {
                "account.user_id",
                "account.user_id_sha256",
            }
            assert payload["events"] == []
        else:
            assert consenting, f"a product ping for a user who does not consent: {line}"
            fields.pop("user_agent")
            fields.pop("ip_address")
            payload.pop("metrics", None)
            for event in payload["events"]:
                event.pop("extra", None)
        payload.get("metrics", {}).get("string", {}).pop("account.user_id", None)
        fields["payload"] = payload
        leaked = found(plant.everything(), json.dumps(line))
        assert not leaked, f"a Glean line carries {leaked} where it may not: {line}"


# MozLog: the host's own fields go as given (a restricted operational log, as
# FxA's); request.summary carries the path, user agent and uid.
_MOZLOG_HOST_FIELDS = {
    "request.summary": (("agent",), ("path",), ("uid",)),
    "privacy.probe": (("note",),),
}
_MOZLOG_ANALYTICS = (("flowId",), ("metricsContext",))


def check_mozlog(lines: list[dict[str, Any]], plant: Plant, consenting: bool) -> None:
    for line in lines:
        if not consenting:
            leaked = found(plant.analytics(), json.dumps(line))
            assert not leaked, f"an opted-out user's MozLog line carries {leaked}: {line}"
        for path in _MOZLOG_HOST_FIELDS.get(line["Type"], ()):
            _drop(line["Fields"], path)
        if consenting:
            for path in _MOZLOG_ANALYTICS:
                _drop(line["Fields"], path)
        leaked = found(plant.everything(), json.dumps(line))
        assert not leaked, f"a MozLog line carries {leaked} where it may not: {line}"
