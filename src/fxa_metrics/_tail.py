"""``fxa-metrics tail``: the local "Glean debug view" for a server's stdout.

Mobile and desktop Glean have a debug view; a server has its log stream. This
reads that stream (stdin, or a file it can follow), decodes each
``glean-server-event`` line down to its payload and each MozLog line, and
checks them as the pipeline would: the MozLog envelope, the Glean envelope in
``Fields``, the payload against the pipeline's ping schema (shipped in
``fxa_metrics/schemas``) and, when definitions are given, against
metrics.yaml/pings.yaml. A line the pipeline would reject is flagged
``REJECT``; one it would take but that disagrees with the definitions, ``WARN``.

Decoding and checking (this module) are kept apart from the presentation
(``_tail_view``), so each can be tested alone.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from threading import Event as StopFlag
from typing import Any, TypeGuard

import attrs

from ._definitions import Definitions

GLEAN_TYPE = "glean-server-event"
_ENVELOPE: dict[str, tuple[type, ...]] = {
    "Timestamp": (int,),
    "Type": (str,),
    "Logger": (str,),
    "Hostname": (str,),
    "EnvVersion": (str,),
    "Severity": (int,),
    "Pid": (int,),
    "Fields": (dict,),
}
_GLEAN_FIELDS = (
    "document_namespace",
    "document_type",
    "document_version",
    "document_id",
    "user_agent",
    "ip_address",
    "payload",
)
NO_JSONSCHEMA = (
    "fxa-metrics tail validates payloads against the pipeline schema with jsonschema, "
    "which is not installed: pip install 'fxa-metrics[testing]' (or pass --no-schema)"
)


class MissingDependency(RuntimeError):
    """An optional dependency ``tail`` needs is not installed."""


@attrs.frozen
class Decoded:
    """One input line, decoded and judged."""

    number: int
    kind: str  # "glean", "mozlog" or "text" (not JSON: printed as it came)
    raw: str
    record: Mapping[str, Any] | None = None
    payload: Mapping[str, Any] | None = None
    reject: tuple[str, ...] = ()  # what the pipeline would refuse
    warnings: tuple[str, ...] = ()  # what disagrees with the definitions

    @property
    def events(self) -> tuple[str, ...]:
        if not self.payload or not isinstance(self.payload.get("events"), list):
            return ()
        return tuple(
            f"{e.get('category')}.{e.get('name')}" for e in self.payload["events"] if _is_map(e)
        )

    @property
    def fields(self) -> Mapping[str, Any]:
        fields = self.record.get("Fields") if self.record else None
        return fields if _is_map(fields) else {}


def _is_map(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict)


def schema_validator() -> Callable[[Any], list[str]]:
    """The pipeline's Glean ping schema as a function returning one message per error."""
    try:
        import jsonschema
    except ImportError as e:
        raise MissingDependency(NO_JSONSCHEMA) from e
    text = (resources.files("fxa_metrics") / "schemas" / "glean.1.schema.json").read_text()
    validator = jsonschema.Draft6Validator(json.loads(text))

    def validate(payload: Any) -> list[str]:
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.path))
        return [f"schema: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]

    return validate


def _envelope_problems(rec: Mapping[str, Any]) -> list[str]:
    out = []
    for key, kinds in _ENVELOPE.items():
        value = rec.get(key)
        if value is None:
            out.append(f"MozLog: missing {key}")
        elif not isinstance(value, kinds) or (kinds == (int,) and isinstance(value, bool)):
            out.append(f"MozLog: {key} must be {kinds[0].__name__}, got {type(value).__name__}")
    if rec.get("EnvVersion") not in (None, "2.0"):
        out.append(f"MozLog: EnvVersion must be '2.0', got {rec.get('EnvVersion')!r}")
    return out


def _glean_envelope(fields: Mapping[str, Any]) -> list[str]:
    out = [
        f"Glean: Fields.{key} must be a string"
        for key in _GLEAN_FIELDS
        if not isinstance(fields.get(key), str)
    ]
    if fields.get("document_version") not in (None, "1"):
        out.append("Glean: Fields.document_version must be '1'")
    doc_id = fields.get("document_id")
    if isinstance(doc_id, str):
        try:
            uuid.UUID(doc_id)
        except ValueError:
            out.append(f"Glean: Fields.document_id {doc_id!r} is not a UUID")
    return out


class Checker:
    """Decodes and judges lines; ``schema`` None skips the schema, ``defs`` None the definitions."""

    def __init__(
        self, schema: Callable[[Any], list[str]] | None, defs: Definitions | None = None
    ) -> None:
        self.schema = schema
        self.defs = defs

    def decode(self, number: int, raw: str) -> Decoded:
        raw = raw.rstrip("\r\n")
        try:
            rec = json.loads(raw)
        except ValueError:
            return Decoded(number, "text", raw)
        if not _is_map(rec):
            return Decoded(number, "text", raw)
        reject = _envelope_problems(rec)
        if rec.get("Type") != GLEAN_TYPE:
            return Decoded(number, "mozlog", raw, rec, reject=tuple(reject))
        given = rec.get("Fields")
        fields: dict[str, Any] = given if _is_map(given) else {}
        reject += _glean_envelope(fields)
        payload: Any = None
        if isinstance(fields.get("payload"), str):
            try:
                payload = json.loads(fields["payload"])
            except ValueError as e:
                reject.append(f"Glean: the payload is not JSON: {e}")
        if payload is not None and not _is_map(payload):
            reject.append("Glean: the payload is not a JSON object")
            payload = None
        if payload is not None and self.schema is not None:
            reject += self.schema(payload)
        warnings = self._against_definitions(fields, payload) if payload is not None else []
        return Decoded(number, "glean", raw, rec, payload, tuple(reject), tuple(warnings))

    def _against_definitions(
        self, fields: Mapping[str, Any], payload: Mapping[str, Any]
    ) -> list[str]:
        if self.defs is None:
            return []
        ping = fields.get("document_type")
        out = [] if ping in self.defs.pings else [f"ping '{ping}' is not declared"]
        for event in payload.get("events") or ():
            if _is_map(event):
                out += self._event(str(ping), event)
        metrics = payload.get("metrics")
        for kind, values in metrics.items() if _is_map(metrics) else ():
            for ident in values if _is_map(values) else ():
                md = self.defs.metric(ident)
                if md is None:
                    out.append(f"metric '{ident}' is not defined")
                elif md.type != kind:
                    out.append(f"metric '{ident}' is a {md.type}, sent as {kind}")
                elif ping not in md.pings:
                    out.append(f"metric '{ident}' is not sent in ping '{ping}'")
        return out

    def _event(self, ping: str, event: Mapping[str, Any]) -> list[str]:
        assert self.defs is not None
        ident = f"{event.get('category')}.{event.get('name')}"
        md = self.defs.metric(ident)
        if md is None or md.type != "event":
            return [f"event '{ident}' is not defined"]
        out = [] if ping in md.pings else [f"event '{ident}' is not sent in ping '{ping}'"]
        if md.expired or md.disabled:
            out.append(f"event '{ident}' is {'disabled' if md.disabled else 'expired'}")
        extra = event.get("extra")
        for key in extra if _is_map(extra) else ():
            if key not in md.extras:
                out.append(f"event '{ident}' has no extra '{key}'")
        return out


@attrs.frozen
class Filters:
    """Which decoded lines to show: every given filter must match (values of one filter: any)."""

    events: tuple[str, ...] = ()
    pings: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    loggers: tuple[str, ...] = ()
    uid_hashes: tuple[str, ...] = ()
    flagged: bool = False

    def any(self) -> bool:
        return bool(self.events or self.pings or self.types or self.loggers or self.uid_hashes)

    def match(self, d: Decoded) -> bool:
        if self.flagged and not (d.reject or d.warnings):
            return False
        if d.record is None:
            return not self.any()
        return all(
            (
                not self.events or _glob_any(d.events, self.events),
                not self.pings or d.fields.get("document_type") in self.pings,
                not self.types or d.record.get("Type") in self.types,
                not self.loggers or d.record.get("Logger") in self.loggers,
                not self.uid_hashes or _uid_hash(d) in self.uid_hashes,
            )
        )


def _glob_any(names: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(n, p) for n in names for p in patterns)


def _uid_hash(d: Decoded) -> str | None:
    """The line's ``account.user_id_sha256``; for a MozLog line, the hash of its ``uid`` field."""
    strings = (d.payload or {}).get("metrics", {}).get("string", {})
    if _is_map(strings) and isinstance(strings.get("account.user_id_sha256"), str):
        return str(strings["account.user_id_sha256"])
    uid = d.fields.get("uid")
    if isinstance(uid, str) and uid:
        from ._context import uid_sha256

        return uid_sha256(uid)
    return None


def follow(path: str | Path, stop: StopFlag, poll: float = 0.2) -> Iterator[str]:
    """Yield the lines of ``path`` as they are appended (``tail -f``), until ``stop`` is set.

    A partial last line is held until its newline arrives; a truncated file
    (log rotation by copytruncate) is read again from the start.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        pending = ""
        while True:
            chunk = fh.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
                continue
            if os.stat(path).st_size < fh.tell():
                fh.seek(0)
                pending = ""
                continue
            if stop.is_set():
                if pending:
                    yield pending
                return
            time.sleep(poll)
