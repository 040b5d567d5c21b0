"""Issue 9: a statsd send that fails is counted, per sink and reason, never swallowed.

The ``statsd`` package catches ``OSError`` from ``sendto`` and drops the
datagram silently. These tests make ``sendto`` really fail on a real socket:
a datagram to the broadcast address without ``SO_BROADCAST`` is refused by
the kernel (``EACCES``), and a socket closed underneath fails with ``EBADF``.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _facade, _statsd
from fxa_metrics._recv_udp import UdpReceiver

BROADCAST = "255.255.255.255"


@pytest.fixture(autouse=True)
def _no_statsd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STATSD_HOST", "STATSD_PORT", "STATSD_PREFIX"):
        monkeypatch.delenv(name, raising=False)


def configure(**kw: Any) -> None:
    settings: dict[str, Any] = {
        "service": "fxa-test-api",
        "app_id": "accounts_backend_dev",
        "app_version": "1.2.3",
        "channel": "development",
        "metrics_yaml": (),
        "glean_stream": io.StringIO(),
        "mozlog_handler": "never",
        "strict": False,
    }
    settings.update(kw)
    fm.configure(**settings)


def send_errors() -> dict[tuple[str, str], int]:
    return {k: v for k, v in fm.stats().drops_by_metric.items() if k[0] == "statsd_send_error"}


def sink() -> _statsd.StatsdSink:
    rt = _facade.get_runtime()
    assert rt is not None
    (s,) = [s for s in rt.sinks["statsd"] if isinstance(s, _statsd.StatsdSink)]
    return s


def test_refused_sends_are_counted_per_reason() -> None:
    configure(statsd_host=BROADCAST, statsd_port=9)
    for _ in range(300):
        fm.record(fm.Counter("login.attempt"))
        fm.record(fm.Timing("login.check", 1.5))
    errors = send_errors()
    assert sum(errors.values()) == 600  # the issue: 600 lost, 0 counted
    (reason,) = errors
    assert reason[1].startswith("statsd:E")  # the errno's name (EACCES, or ENETUNREACH)


def test_a_failed_batch_counts_every_stat_it_held() -> None:
    configure(statsd_host=BROADCAST, statsd_port=9)
    with fm.statsd_batch():
        for i in range(50):
            fm.record(fm.Counter(f"batch.stat{i}"))
    # 50 stats of about 20 bytes pack into a few 512-byte datagrams: each one
    # lost is as many stats as it held.
    assert sum(send_errors().values()) == 50


def test_a_socket_closed_underneath_is_counted_as_ebadf() -> None:
    with UdpReceiver() as rx:
        configure(statsd_host=rx.host, statsd_port=rx.port)
        fm.record(fm.Counter("before"))
        assert rx.wait_for(1, timeout=5)
        os.close(sink().client._sock.detach())  # the fd closed under the sink
        fm.record(fm.Counter("after"))
        assert send_errors() == {("statsd_send_error", "statsd:EBADF"): 1}


def test_a_send_racing_reset_is_counted_not_raised() -> None:
    # A thread still holding the old runtime sends after close() set the
    # client's socket to None: counted (after reset, in the log), never raised.
    with UdpReceiver() as rx:
        configure(statsd_host=rx.host, statsd_port=rx.port)
        s = sink()
        fm.reset()
        s.client._send("raced:1|c")  # the statsd package would raise AttributeError here
        assert _statsd._orphan_stats.snapshot().drops["statsd_send_error"] >= 1


def test_healthy_sends_count_nothing() -> None:
    with UdpReceiver() as rx:
        configure(statsd_host=rx.host, statsd_port=rx.port)
        for _ in range(20):
            fm.record(fm.Counter("ok"))
        assert len(rx.wait_for(20, timeout=5)) == 20
        assert send_errors() == {}


def test_sends_from_many_threads_are_all_counted() -> None:
    configure(statsd_host=BROADCAST, statsd_port=9)

    def burst() -> None:
        for _ in range(100):
            fm.record(fm.Counter("threaded"))

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(send_errors().values()) == 800
