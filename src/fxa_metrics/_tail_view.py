"""How ``fxa-metrics tail`` shows what ``_tail`` decoded: readable lines (coloured on a
terminal) or one JSON object per line, and the counts it ends with."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import attrs

from ._tail import Checker, Decoded, Filters

_RESET = "\x1b[0m"
_STYLE = {
    "time": "\x1b[2m",
    "glean": "\x1b[1;32m",
    "type": "\x1b[36m",
    "logger": "\x1b[35m",
    "text": "\x1b[2m",
    "reject": "\x1b[1;31m",
    "warn": "\x1b[33m",
    "error": "\x1b[31m",
}
# Syslog severities as MozLog writes them.
_SEVERITY = {0: "EMERG", 1: "ALERT", 2: "CRIT", 3: "ERROR", 4: "WARN", 5: "NOTICE", 6: "INFO"}


@attrs.define
class Counts:
    lines: int = 0
    glean: int = 0
    events: int = 0
    mozlog: int = 0
    text: int = 0
    rejected: int = 0
    warned: int = 0
    shown: int = 0

    def add(self, d: Decoded) -> None:
        self.lines += 1
        setattr(self, d.kind, getattr(self, d.kind) + 1)
        self.events += len(d.events)
        self.rejected += bool(d.reject)
        self.warned += bool(d.warnings)

    def __str__(self) -> str:
        return (
            f"{self.lines} lines: {self.glean} glean ({self.events} events), "
            f"{self.mozlog} MozLog, {self.text} other; {self.rejected} rejected, "
            f"{self.warned} with warnings; {self.shown} shown"
        )


class Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.colour else text


def _when(record: Mapping[str, Any]) -> str:
    ns = record.get("Timestamp")
    if not isinstance(ns, int) or isinstance(ns, bool):
        return "--:--:--.---"
    try:
        t = _dt.datetime.fromtimestamp(ns / 1e9, _dt.UTC)
    except (OverflowError, OSError, ValueError):
        return "--:--:--.---"
    return f"{t:%H:%M:%S}.{t.microsecond // 1000:03d}"


def _pairs(mapping: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v if isinstance(v, str) and v and ' ' not in v else json.dumps(v, default=str)}"
        for k, v in mapping.items()
    )


def _glean_body(d: Decoded, paint: Painter) -> str:
    fields = d.fields
    parts = [paint("glean", "glean"), str(fields.get("document_type", "?"))]
    for event in (d.payload or {}).get("events") or ():
        if isinstance(event, dict):
            name = f"{event.get('category')}.{event.get('name')}"
            extra = event.get("extra")
            parts.append(paint("glean", name) + (f" {_pairs(extra)}" if extra else ""))
    metrics = (d.payload or {}).get("metrics")
    for values in metrics.values() if isinstance(metrics, dict) else ():
        if isinstance(values, dict) and values:
            parts.append(_pairs(values))
    if fields.get("user_agent"):
        parts.append(f"ua={json.dumps(fields['user_agent'])}")
    return " ".join(parts)


def _mozlog_body(d: Decoded, paint: Painter) -> str:
    assert d.record is not None
    sev = d.record.get("Severity")
    level = _SEVERITY.get(sev, "DEBUG" if sev == 7 else str(sev)) if isinstance(sev, int) else "?"
    parts = [
        paint("error", level) if isinstance(sev, int) and sev <= 3 else level,
        paint("logger", str(d.record.get("Logger", "?"))),
        paint("type", str(d.record.get("Type", "?"))),
    ]
    if d.fields:
        parts.append(_pairs(d.fields))
    return " ".join(parts)


def render_text(d: Decoded, paint: Painter) -> str:
    if d.record is None:
        return paint("text", d.raw)
    body = _glean_body(d, paint) if d.kind == "glean" else _mozlog_body(d, paint)
    pid = d.record.get("Pid")
    lines = [f"{paint('time', _when(d.record))} {body}" + (f" [pid {pid}]" if pid else "")]
    lines += [f"    {paint('reject', 'REJECT')} {p}" for p in d.reject]
    lines += [f"    {paint('warn', 'WARN')} {p}" for p in d.warnings]
    return "\n".join(lines)


def render_json(d: Decoded) -> str:
    return json.dumps(
        {
            "line": d.number,
            "kind": d.kind,
            "ok": not d.reject,
            "reject": list(d.reject),
            "warnings": list(d.warnings),
            "events": list(d.events),
            "record": d.record,
            "payload": d.payload,
            "raw": d.raw,
        },
        default=str,
    )


def run(
    lines: Iterable[str],
    out: TextIO,
    checker: Checker,
    filters: Filters,
    as_json: bool = False,
    colour: bool = False,
) -> Counts:
    """Decode, judge, filter and print every line; return the counts."""
    counts = Counts()
    paint = Painter(colour)
    for number, raw in enumerate(lines, 1):
        d = checker.decode(number, raw)
        counts.add(d)
        if not filters.match(d):
            continue
        counts.shown += 1
        out.write((render_json(d) if as_json else render_text(d, paint)) + "\n")
        out.flush()  # a live view: each line as it comes
    return counts
