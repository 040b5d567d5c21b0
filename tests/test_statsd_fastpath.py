"""The statsd sink's direct send writes exactly the datagram StatsClient writes."""

from __future__ import annotations

import socket

import statsd
from hypothesis import given, settings
from hypothesis import strategies as st

from fxa_metrics._statsd import StatsdLine, StatsdSink

_NAME = st.from_regex(r"[a-z][a-z0-9_.]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    name=_NAME,
    prefix=st.none() | st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
    ms=st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.integers(0, 10**9),
    count=st.integers(-(10**6), 10**6),
)
def test_direct_send_equals_statsclient(
    name: str, prefix: str | None, ms: float, count: int
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        port = rx.getsockname()[1]
        ours = StatsdSink("127.0.0.1", port, prefix)
        raw = statsd.StatsClient("127.0.0.1", port, prefix=prefix)
        try:
            ours.emit(StatsdLine("ms", name, (), name, ms, 1.0))
            raw.timing(name, ms)
            ours.emit(StatsdLine("c", name, (), name, count, 1.0))
            raw.incr(name, count)
            got = [rx.recv(2048) for _ in range(4)]
        finally:
            ours.close()
            raw.close()
    assert got[0] == got[1]
    assert got[2] == got[3]
