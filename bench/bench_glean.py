"""Glean event rows: ours against upstream (as shipped, with orjson), its floor, and per request.

Every side writes to stdout, pointed at ``/dev/null`` (fd 1, the deployment
path). Upstream writes through ``sys.stdout.write`` (a buffered text file: one
``write`` syscall per ~8 KiB), ours one ``os.write`` per line (durable): that
is each as shipped.

Run: ``python -m bench.bench_glean`` (``python -m bench`` for every route).
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import orjson

import fxa_metrics as fm

from . import _fxa
from ._fxa import CONTEXT, IP, UA, UID
from ._timing import abba, loop

EVENT_LABEL = 'fm.record("login.complete") in a request bound outside the loop'


def _ours() -> None:
    fm.record("login.complete")


def _one_line() -> bytes:
    """The exact line ours writes for one event (to size the floor with the same bytes)."""
    buf = io.StringIO()
    _fxa.configure(glean_stream=buf)
    try:
        with fm.bind(uid=UID, user_agent=UA, ip_address=IP, **CONTEXT):
            fm.record("login.complete")
    finally:
        fm.reset()
    line = buf.getvalue().encode()
    assert line.count(b"\n") == 1, f"expected one Glean line, got {line!r}"
    return line


def _floor() -> Any:
    """Two orjson encodes (the payload, then the envelope embedding it) and one ``os.write``."""
    envelope = orjson.loads(_one_line())
    payload = orjson.loads(envelope["Fields"]["payload"])

    def floor() -> None:
        envelope["Fields"]["payload"] = orjson.dumps(payload).decode()
        os.write(1, orjson.dumps(envelope) + b"\n")

    return floor


def _vs_upstream() -> list[dict[str, Any]]:
    shipped = _fxa.upstream_logger(_fxa.generate_upstream())
    fast = _fxa.upstream_logger(_fxa.with_orjson(_fxa.generate_upstream()))
    floor = _floor()  # before configure(): it configures (and resets) to capture one line
    sha = fm.uid_sha256(UID)
    _fxa.configure()
    try:
        with fm.bind(uid=UID, user_agent=UA, ip_address=IP, **CONTEXT):
            rows = [
                abba(
                    "Glean event vs upstream as shipped",
                    loop(_ours),
                    loop(lambda: _fxa.upstream_login_complete(shipped, sha)),
                    target="(info)",
                    ours_label=EVENT_LABEL,
                    base_label="glean_parser python_server record_login_complete(...), stdlib json",
                ),
                abba(
                    "Glean event vs upstream with orjson",
                    loop(_ours),
                    loop(lambda: _fxa.upstream_login_complete(fast, sha)),
                    target="<= 0.6",
                    ours_label=EVENT_LABEL,
                    base_label="the same generated code, its json.dumps swapped for orjson",
                ),
                abba(
                    "Glean event vs its serialisation floor (/dev/null)",
                    loop(_ours),
                    loop(floor),
                    target="<= 2.5",
                    ours_label=EVENT_LABEL,
                    base_label="two orjson encodes of our own line's dicts + one os.write",
                ),
            ]
        _fxa.check_clean("Glean event")
    finally:
        fm.reset()
    return rows


def _per_request() -> dict[str, Any]:
    shipped = _fxa.upstream_logger(_fxa.generate_upstream())

    def ours() -> None:
        with fm.bind(uid=UID, user_agent=UA, ip_address=IP, **CONTEXT):
            fm.record("login.complete")

    def theirs() -> None:
        sha = hashlib.sha256(UID.encode()).hexdigest()
        _fxa.upstream_login_complete(shipped, sha)

    _fxa.configure()
    try:
        out = abba(
            "bind() + one event per request vs upstream + sha256",
            loop(ours),
            loop(theirs),
            target="<= 0.5",
            ours_label="with fm.bind(uid, user_agent, ip_address, 8 context fields): "
            "fm.record(...)",
            base_label="sha256 of the uid + upstream record_login_complete(...), as shipped",
        )
        _fxa.check_clean("bind + event")
    finally:
        fm.reset()
    return out


def run() -> list[dict[str, Any]]:
    with _fxa.stdout_to_devnull():
        return [*_vs_upstream(), _per_request()]


if __name__ == "__main__":
    for r in run():
        print(r)
