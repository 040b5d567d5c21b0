"""Beacons for the tests, and the documented datagrams as an independent reference.

``expected_lines`` is written from docs/frontend.md ("What goes to statsd"),
not from the implementation: if either changes alone, the tests fail.
"""

from __future__ import annotations

from typing import Any

NAV_ORDER = [
    "fetchStart",
    "domainLookupStart",
    "domainLookupEnd",
    "connectStart",
    "connectEnd",
    "requestStart",
    "responseStart",
    "responseEnd",
    "domInteractive",
    "domContentLoadedEventStart",
    "domContentLoadedEventEnd",
    "domComplete",
    "loadEventStart",
    "loadEventEnd",
]


def valid_beacon(**changes: Any) -> dict[str, Any]:
    """What Chromium's snippet sent for a page (recorded from a real run, rounded)."""
    beacon: dict[str, Any] = {
        "v": 1,
        "page": "settings",
        "type": "navigate",
        "device": "desktop",
        "nav": {
            "redirectStart": 0,
            "redirectEnd": 0,
            "fetchStart": 4.3,
            "domainLookupStart": 4.3,
            "domainLookupEnd": 4.3,
            "connectStart": 4.3,
            "secureConnectionStart": 0,
            "connectEnd": 4.3,
            "requestStart": 20.5,
            "responseStart": 32.1,
            "responseEnd": 43.3,
            "domInteractive": 86.2,
            "domContentLoadedEventStart": 86.2,
            "domContentLoadedEventEnd": 86.3,
            "domComplete": 86.7,
            "loadEventStart": 86.7,
            "loadEventEnd": 87.7,
        },
        "paint": {"first-paint": 70.1, "first-contentful-paint": 70.1},
        "vitals": {"lcp": 120.5, "cls": 0.0123, "fcp": 70.1, "ttfb": 32.1},
    }
    beacon.update(changes)
    return beacon


def expected_lines(beacon: dict[str, Any], page: str, prefix: str = "") -> list[str]:
    """The statsd lines docs/frontend.md promises for a valid beacon, in order."""
    nav, paint, vitals = beacon["nav"], beacon.get("paint", {}), beacon.get("vitals", {})
    tags = f"device_type={beacon['device']},nav_type={beacon['type']},page={page}"
    pre = f"{prefix}." if prefix else ""
    timings: list[tuple[str, Any]] = [
        ("ttfb", vitals.get("ttfb", nav["responseStart"])),
        ("fcp", vitals.get("fcp", paint.get("first-contentful-paint"))),
        ("lcp", vitals.get("lcp")),
        ("inp", vitals.get("inp")),
        # A document mark of 0 was not reached: not a measurement, not sent.
        ("dom_interactive", nav["domInteractive"] or None),
        ("dom_content_loaded", nav["domContentLoadedEventEnd"] or None),
        ("load", nav["loadEventEnd"] or None),
    ]
    lines = [
        f"{pre}frontend.{name},{tags}:{float(value):0.6f}|ms"
        for name, value in timings
        if value is not None
    ]
    if "cls" in vitals:
        lines.append(f"{pre}frontend.cls,{tags}:{float(vitals['cls'])}|g")
    return lines
