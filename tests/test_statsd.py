"""The statsd route against a real UDP socket on 127.0.0.1: exact datagram bytes."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import testing
from fxa_metrics._recv_udp import UdpReceiver

SENTINEL = b"sentinel:1|c"


@pytest.fixture
def rx() -> Iterator[UdpReceiver]:
    with UdpReceiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _no_statsd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner's own STATSD_* must not leak into what these tests configure.
    for name in ("STATSD_HOST", "STATSD_PORT", "STATSD_PREFIX"):
        monkeypatch.delenv(name, raising=False)


def configure(rx: UdpReceiver | None, **kw: Any) -> None:
    settings: dict[str, Any] = {
        "service": "fxa-test-api",
        "app_id": "accounts_backend_dev",
        "app_version": "1.2.3",
        "channel": "development",
        "metrics_yaml": (),
        "glean_stream": io.StringIO(),
        "mozlog_handler": "never",
        "strict": True,
    }
    if rx is not None:
        settings.update(statsd_host=rx.host, statsd_port=rx.port)
    settings.update(kw)
    fm.configure(**settings)


def received(rx: UdpReceiver) -> list[bytes]:
    """Everything sent before now: a sentinel counter follows the same socket and marks the end.

    A test that expects *nothing* is then a test that can fail: the sentinel
    arrives, and nothing arrived before it.
    """
    prefix = fm._facade.get_runtime().settings.statsd_prefix  # type: ignore[union-attr]
    fm.record(fm.Counter("sentinel", rate=1.0))
    want = (prefix.encode() + b"." if prefix else b"") + SENTINEL
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        got = rx.datagrams()
        if got and got[-1] == want:
            rx.clear()
            return got[:-1]
        rx.wait_for(len(got) + 1, timeout=0.05)
    raise AssertionError(f"sentinel never arrived; got {rx.datagrams()!r}")


# ---------------------------------------------------------------- exact bytes per kind


@pytest.mark.parametrize(
    ("rec", "wire"),
    [
        (fm.Timing("url_request", 12.5), b"url_request:12.500000|ms"),
        (fm.Timing("url_request", 7), b"url_request:7.000000|ms"),
        (fm.Timing("db.query", dt.timedelta(milliseconds=1.25)), b"db.query:1.250000|ms"),
        (fm.Counter("login.complete"), b"login.complete:1|c"),
        (fm.Counter("login.complete", 5), b"login.complete:5|c"),
        (fm.Counter("queue.depth", -2), b"queue.depth:-2|c"),
        (fm.Gauge("pool.size", 42), b"pool.size:42|g"),
        (fm.Gauge("pool.load", 0.75), b"pool.load:0.75|g"),
        (fm.Gauge("pool.size", 3, delta=True), b"pool.size:+3|g"),
        (fm.Gauge("pool.size", -3, delta=True), b"pool.size:-3|g"),
        # statsd reads "-5|g" as a decrement: an absolute negative gauge is reset, then set.
        (fm.Gauge("temp", -5), b"temp:0|g\ntemp:-5|g"),
        (fm.Set("active.clients", "sync"), b"active.clients:sync|s"),
        (fm.Set("status.codes", 404), b"status.codes:404|s"),
    ],
)
def test_each_kind_is_sent_as_exact_bytes(rx: UdpReceiver, rec: Any, wire: bytes) -> None:
    configure(rx)
    fm.record(rec)
    assert received(rx) == [wire]


def test_prefix_is_per_service_with_or_without_trailing_dot(rx: UdpReceiver) -> None:
    for prefix in ("fxa-auth-server.", "fxa-auth-server"):
        configure(rx, statsd_prefix=prefix)
        fm.record(fm.Counter("login.complete"))
        assert received(rx) == [b"fxa-auth-server.login.complete:1|c"]
        fm.reset()


def test_tags_go_in_the_name_telegraf_style_with_keys_sorted(rx: UdpReceiver) -> None:
    configure(rx, statsd_prefix="fxa-auth-server.")
    fm.record(fm.Timing("url_request", 12.5, tags={"path": "/v1/account/login", "method": "POST"}))
    fm.record(fm.Timing("url_request", 12.5, tags={"method": "POST", "path": "/v1/account/login"}))
    fm.record(fm.Counter("login", tags={"status": 200, "new_device": True, "ok": False}))
    series = b"fxa-auth-server.url_request,method=POST,path=/v1/account/login:12.500000|ms"
    assert received(rx) == [
        series,
        series,  # one series, one spelling, whatever order the caller wrote
        b"fxa-auth-server.login,new_device=true,ok=false,status=200:1|c",
    ]


def test_sample_rate_from_record_or_settings(
    rx: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(rx, statsd_sample_rate=0.25)
    draw = [0.1]
    # statsd samples with random.random(); pin the draw to decide in or out.
    monkeypatch.setattr(random, "random", lambda: draw[0])
    fm.record(fm.Counter("login"))  # default rate from settings
    fm.record(fm.Timing("t", 2.0, rate=0.5))  # the record's own rate wins
    fm.record(fm.Counter("always", rate=1.0))  # 1.0 is never marked nor sampled
    fm.record(fm.Counter("tagged", tags={"a": "b"}, rate=0.5))
    assert received(rx) == [
        b"login:1|c|@0.25",
        b"t:2.000000|ms|@0.5",
        b"always:1|c",
        b"tagged,a=b:1|c|@0.5",
    ]
    draw[0] = 0.9  # sampled out: nothing is sent, nothing is dropped
    fm.record(fm.Counter("login"))
    fm.record(fm.Timing("t", 2.0, rate=0.5))
    assert received(rx) == []
    assert fm.stats().dropped == 0


def test_sample_rate_settings_are_checked_at_configure() -> None:
    with pytest.raises(fm.ConfigurationError, match="statsd_sample_rate"):
        configure(None, statsd_sample_rate=1.5)
    with pytest.raises(fm.ConfigurationError, match="statsd_sample_rate"):
        configure(None, statsd_sample_rate=0.00001)


# ---------------------------------------------------------------- name, tag and PII rules

BAD_RECORDS = [
    # (record, error class, field)
    (fm.Counter("login complete"), fm.InvalidRecordError, "name"),
    (fm.Counter("login:complete"), fm.InvalidRecordError, "name"),
    (fm.Counter("login|c"), fm.InvalidRecordError, "name"),
    (fm.Counter("login,x=y"), fm.InvalidRecordError, "name"),
    (fm.Counter("a..b"), fm.InvalidRecordError, "name"),
    (fm.Counter("trailing."), fm.InvalidRecordError, "name"),
    (fm.Counter(""), fm.InvalidRecordError, "name"),
    (fm.Counter("x" * 201), fm.InvalidRecordError, "name"),
    (fm.Counter("ünïcode"), fm.InvalidRecordError, "name"),
    (fm.Counter(42), fm.InvalidRecordError, "name"),  # type: ignore[arg-type]
    (fm.Counter("ok", tags={"k": "a b"}), fm.InvalidRecordError, "tag:k"),
    (fm.Counter("ok", tags={"k": "a:1|c\nevil"}), fm.InvalidRecordError, "tag:k"),
    (fm.Counter("ok", tags={"k": ""}), fm.InvalidRecordError, "tag:k"),
    (fm.Counter("ok", tags={"k": 1.5}), fm.InvalidRecordError, "tag:k"),
    (fm.Counter("ok", tags={"k": None}), fm.InvalidRecordError, "tag:k"),
    (fm.Counter("ok", tags={"a=b": "c"}), fm.InvalidRecordError, "tag:a=b"),
    (fm.Counter("ok", tags={1: "c"}), fm.InvalidRecordError, "tags"),
    (fm.Counter("ok", tags={f"k{i}": "v" for i in range(17)}), fm.InvalidRecordError, "tags"),
    (fm.Timing("ok", "12"), fm.InvalidRecordError, "ms"),  # type: ignore[arg-type]
    (fm.Timing("ok", float("nan")), fm.InvalidRecordError, "ms"),
    (fm.Timing("ok", float("inf")), fm.InvalidRecordError, "ms"),
    (fm.Timing("ok", -1.0), fm.InvalidRecordError, "ms"),
    (fm.Timing("ok", True), fm.InvalidRecordError, "ms"),
    (fm.Counter("ok", 1.5), fm.InvalidRecordError, "value"),  # type: ignore[arg-type]
    (fm.Counter("ok", True), fm.InvalidRecordError, "value"),
    (fm.Counter("ok", 2**60), fm.InvalidRecordError, "value"),
    (fm.Gauge("ok", float("-inf")), fm.InvalidRecordError, "value"),
    (fm.Gauge("ok", 1, delta=1), fm.InvalidRecordError, "delta"),  # type: ignore[arg-type]
    (fm.Counter("ok", rate=1.5), fm.InvalidRecordError, "rate"),
    (fm.Counter("ok", rate=1e-6), fm.InvalidRecordError, "rate"),
    (fm.Counter("ok", rate="1"), fm.InvalidRecordError, "rate"),  # type: ignore[arg-type]
    (fm.Set("ok", "has space"), fm.InvalidRecordError, "value"),
    # No user identity in aggregate metrics.
    (fm.Counter("ok", tags={"user": "alice@example.com"}), fm.PiiRejectedError, "tag:user"),
    (fm.Counter("ok", tags={"ip": "203.0.113.7"}), fm.PiiRejectedError, "tag:ip"),
    (fm.Counter("ok", tags={"ip": "2001:db8::7"}), fm.PiiRejectedError, "tag:ip"),
    (fm.Counter("ok", tags={"ip": "::1"}), fm.PiiRejectedError, "tag:ip"),
    (fm.Counter("ok", tags={"ip": "2001:db8:1:2:3:4:5:6"}), fm.PiiRejectedError, "tag:ip"),
    (fm.Counter("ok", tags={"uid": "0123456789abcdef0123456789ABCDEF"}), fm.PiiRejectedError,
     "tag:uid"),
    (fm.Counter("ok", tags={"flow": "x-" + "f" * 40}), fm.PiiRejectedError, "tag:flow"),
    (fm.Counter("ok", tags={"device": "5d4b4e2a-9c1f-4b0e-8a7d-6c5b4a392817"}),
     fm.PiiRejectedError, "tag:device"),
    (fm.Counter("login.by.alice@example.com"), fm.PiiRejectedError, "name"),
    (fm.Counter("from.10.0.0.1"), fm.PiiRejectedError, "name"),
    (fm.Counter("user.0123456789abcdef0123456789abcdef.login"), fm.PiiRejectedError, "name"),
    (fm.Set("active.users", "0123456789abcdef0123456789abcdef"), fm.PiiRejectedError, "value"),
    (fm.Set("active.emails", "bob@example.org"), fm.PiiRejectedError, "value"),
]  # fmt: skip

PII_STRINGS = ("alice@example.com", "203.0.113.7", "2001:db8", "0123456789abcdef", "bob@", "5d4b")


@pytest.mark.parametrize(("rec", "error", "field"), BAD_RECORDS)
def test_strict_mode_raises_a_precise_error(
    rx: UdpReceiver, rec: Any, error: type[fm.RecordError], field: str
) -> None:
    configure(rx)
    with pytest.raises(error) as e:
        fm.record(rec)
    assert type(e.value) is error
    assert e.value.field == field
    # The error (logged, counted per metric) never repeats the identity it refused.
    text = f"{e.value} {e.value.metric}"
    assert not any(p in text for p in PII_STRINGS), text
    assert received(rx) == []


def test_production_mode_drops_and_counts_without_raising(rx: UdpReceiver) -> None:
    configure(rx, strict=False)
    for rec, _, _ in BAD_RECORDS:
        fm.record(rec)  # never raises
    fm.record(fm.Counter("good"))
    assert received(rx) == [b"good:1|c"]
    pii = sum(1 for _, err, _ in BAD_RECORDS if err is fm.PiiRejectedError)
    assert fm.stats().drops == {"pii": pii, "invalid_record": len(BAD_RECORDS) - pii}


def test_pii_error_names_metric_and_tag(rx: UdpReceiver) -> None:
    configure(rx)
    with pytest.raises(fm.PiiRejectedError) as e:
        fm.record(fm.Counter("login", tags={"email": "alice@example.com"}))
    assert (e.value.metric, e.value.field, e.value.reason) == ("login", "tag:email", "pii")
    assert "looks like an email address" in str(e.value)
    with pytest.raises(fm.PiiRejectedError) as e:
        fm.record(fm.Counter("login.alice@example.com"))
    assert e.value.metric == "[Filtered]"  # over-redacted rather than half-leaked


def test_statsd_is_sent_for_opted_out_users_and_a_disabled_service(rx: UdpReceiver) -> None:
    # Aggregate, no identity by construction (DESIGN 5): consent does not gate statsd.
    configure(rx, enabled=False)
    with fm.bind(uid="0123456789abcdef0123456789abcdef", metrics_opt_out=True):
        fm.record(fm.Counter("login"))
    assert received(rx) == [b"login:1|c"]
    assert fm.stats().dropped == 0


# ---------------------------------------------------------------- configuration


def test_unresolvable_host_fails_at_configure() -> None:
    with pytest.raises(fm.ConfigurationError, match=r"no-such-host\.invalid.*does not resolve"):
        configure(None, statsd_host="no-such-host.invalid")
    assert not fm.is_configured()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"statsd_host": "127.0.0.1", "statsd_port": 0}, "statsd_port"),
        ({"statsd_host": "127.0.0.1", "statsd_port": "http"}, "statsd_port"),
        ({"statsd_host": "127.0.0.1", "statsd_prefix": "fxa auth"}, "statsd_prefix"),
        ({"statsd_host": "127.0.0.1", "statsd_prefix": "a..b"}, "statsd_prefix"),
        ({"statsd_host": ""}, "statsd_host"),
    ],
)
def test_bad_statsd_settings_fail_at_configure(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(fm.ConfigurationError, match=match):
        configure(None, **kw)


def test_settings_come_from_the_usual_environment_variables(
    rx: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATSD_HOST", rx.host)
    monkeypatch.setenv("STATSD_PORT", str(rx.port))
    monkeypatch.setenv("STATSD_PREFIX", "fxa-auth-server.")
    configure(None)
    fm.record(fm.Counter("login"))
    assert received(rx) == [b"fxa-auth-server.login:1|c"]
    fm.reset()
    # Explicit settings win over the environment.
    configure(rx, statsd_prefix="fxa-profile-server")
    fm.record(fm.Counter("login"))
    assert received(rx) == [b"fxa-profile-server.login:1|c"]
    fm.reset()
    monkeypatch.setenv("STATSD_PORT", "not-a-port")
    with pytest.raises(fm.ConfigurationError, match="STATSD_PORT"):
        configure(None)


def test_no_host_means_no_statsd_sink() -> None:
    configure(None)
    rt = fm._facade.get_runtime()
    assert rt is not None
    assert rt.sinks["statsd"] == ()
    fm.record(fm.Counter("login"))  # checked, then goes nowhere
    with pytest.raises(fm.PiiRejectedError):
        fm.record(fm.Counter("login", tags={"ip": "10.1.2.3"}))


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("strict", [True, False])
def test_nothing_listening_is_never_an_exception(strict: bool) -> None:
    configure(None, statsd_host="127.0.0.1", statsd_port=_free_udp_port(), strict=strict)
    for _ in range(50):
        fm.record(fm.Counter("login"))
        fm.record(fm.Timing("t", 1.0))
        with fm.statsd_batch():
            fm.record(fm.Gauge("g", 1))
    assert fm.stats().dropped == 0
    rt = fm._facade.get_runtime()
    assert rt is not None
    assert rt.stats.internal_errors == []


def test_a_closed_sink_drops_quietly(rx: UdpReceiver) -> None:
    sink = fm.StatsdSink(rx.host, rx.port, prefix="svc")
    line = fm.StatsdLine("c", "x", (), "x", 1, 1.0)
    sink.emit(line)
    assert rx.wait_for(1) == [b"svc.x:1|c"]
    sink.close()
    sink.close()  # idempotent
    sink.emit(line)  # e.g. a thread that still held the runtime when reset() closed it


def test_host_name_is_resolved_and_ipv6_loopback_works() -> None:
    configure(None, statsd_host="localhost")
    fm.record(fm.Counter("login"))
    fm.reset()
    try:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.bind(("::1", 0))
    except OSError:  # pragma: no cover - depends on the host
        pytest.skip("no IPv6 loopback on this machine")
    with v6:
        v6.settimeout(2.0)
        configure(None, statsd_host="::1", statsd_port=v6.getsockname()[1])
        fm.record(fm.Counter("login"))
        assert v6.recv(100) == b"login:1|c"


# ---------------------------------------------------------------- batching


def test_batch_sends_a_handlers_stats_in_one_datagram(rx: UdpReceiver) -> None:
    configure(rx, statsd_prefix="fxa-auth-server.")
    with fm.statsd_batch():
        fm.record(fm.Counter("login", tags={"result": "ok"}))
        fm.record(fm.Timing("url_request", 12.5))
        with fm.statsd_batch():  # nested: joins the outer batch
            fm.record(fm.Gauge("pool", 3))
        assert rx.count == 0  # nothing left before the block ends
    assert received(rx) == [
        b"fxa-auth-server.login,result=ok:1|c\n"
        b"fxa-auth-server.url_request:12.500000|ms\n"
        b"fxa-auth-server.pool:3|g"
    ]


def test_batch_packs_into_datagrams_of_at_most_512_bytes(rx: UdpReceiver) -> None:
    configure(rx)
    with fm.statsd_batch():
        for i in range(100):
            fm.record(fm.Counter(f"counter.number{i:03d}"))
    got = received(rx)
    assert 1 < len(got) < 100
    assert all(len(d) < 512 for d in got)
    assert b"\n".join(got).split(b"\n") == [
        f"counter.number{i:03d}:1|c".encode() for i in range(100)
    ]


def test_batch_is_sent_even_when_the_block_raises_and_checks_still_apply(
    rx: UdpReceiver,
) -> None:
    configure(rx)

    def handler() -> None:
        with fm.statsd_batch():
            fm.record(fm.Counter("before"))
            fm.record(fm.Counter("bad", tags={"ip": "10.0.0.1"}))

    with pytest.raises(fm.PiiRejectedError):
        handler()
    assert received(rx) == [b"before:1|c"]


def test_batches_of_concurrent_threads_and_tasks_do_not_mix(rx: UdpReceiver) -> None:
    configure(rx)
    barrier = threading.Barrier(4)

    def handler(i: int) -> None:
        with fm.statsd_batch():
            fm.record(fm.Counter(f"t{i}.a"))
            barrier.wait()
            fm.record(fm.Counter(f"t{i}.b"))

    threads = [threading.Thread(target=handler, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def task(i: int) -> None:
        with fm.statsd_batch():
            fm.record(fm.Counter(f"a{i}.a"))
            await asyncio.sleep(0.01)
            fm.record(fm.Counter(f"a{i}.b"))

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(4)))

    asyncio.run(main())
    got = sorted(received(rx))
    assert got == sorted(
        [f"t{i}.a:1|c\nt{i}.b:1|c".encode() for i in range(4)]
        + [f"a{i}.a:1|c\na{i}.b:1|c".encode() for i in range(4)]
    )


def test_a_task_outliving_its_batch_sends_directly(rx: UdpReceiver) -> None:
    configure(rx)

    async def main() -> None:
        with fm.statsd_batch():
            fm.record(fm.Counter("in.batch"))
            late = asyncio.create_task(asyncio.sleep(0.01))  # inherits the batch context
            late.add_done_callback(lambda _: fm.record(fm.Counter("late")))
        await late
        await asyncio.sleep(0)

    asyncio.run(main())
    assert received(rx) == [b"in.batch:1|c", b"late:1|c"]


def test_batch_before_configure_is_harmless() -> None:
    with fm.statsd_batch():
        fm.record(fm.Counter("x"))


# ---------------------------------------------------------------- timer


def _ms(datagram: bytes) -> float:
    return float(datagram.split(b":")[1].split(b"|")[0])


def test_timer_as_a_context_manager(rx: UdpReceiver) -> None:
    configure(rx)
    with fm.timer("db.query", tags={"table": "accounts"}):
        time.sleep(0.02)
    [got] = received(rx)
    assert got.startswith(b"db.query,table=accounts:")
    assert got.endswith(b"|ms")
    assert 20.0 <= _ms(got) < 2000.0


def test_timer_reused_across_threads_pairs_each_exit_with_its_enter(rx: UdpReceiver) -> None:
    configure(rx)
    t = fm.timer("shared")
    go = threading.Event()

    def slow() -> None:
        with t:
            go.wait(2)
            time.sleep(0.05)

    worker = threading.Thread(target=slow)
    worker.start()
    with t:  # entered while the other thread is inside, left first
        with t:
            pass
        go.set()
    worker.join()
    values = sorted(_ms(d) for d in received(rx))
    assert len(values) == 3
    assert values[0] < 50.0
    assert values[2] >= 50.0


def test_timer_decorates_a_sync_function_transparently(rx: UdpReceiver) -> None:
    configure(rx)

    @fm.timer("handler.login", tags={"method": "POST"})
    def login(user: str, *, fast: bool = False) -> str:
        """Log in."""
        return f"hello {user}"

    assert login("alice", fast=True) == "hello alice"
    assert login.__name__ == "login"
    assert login.__doc__ == "Log in."
    [got] = received(rx)
    assert got.startswith(b"handler.login,method=POST:")


def test_timer_decorates_a_coroutine_function(rx: UdpReceiver) -> None:
    configure(rx)

    @fm.timer("handler.async")
    async def handler(x: int) -> int:
        await asyncio.sleep(0.02)
        return x * 2

    assert asyncio.iscoroutinefunction(handler)
    assert asyncio.run(handler(21)) == 42
    [got] = received(rx)
    assert got.startswith(b"handler.async:")
    assert _ms(got) >= 20.0


def test_timer_times_failures_and_reraises_them_unchanged(rx: UdpReceiver) -> None:
    configure(rx)
    boom = ValueError("boom")

    @fm.timer("sync.fail")
    def sync() -> None:
        raise boom

    @fm.timer("async.fail")
    async def coro() -> None:
        raise boom

    with pytest.raises(ValueError, match="boom") as e1:
        sync()
    with pytest.raises(ValueError, match="boom") as e2:
        asyncio.run(coro())
    with pytest.raises(ValueError, match="boom") as e3, fm.timer("block.fail"):
        raise boom
    assert e1.value is boom
    assert e2.value is boom
    assert e3.value is boom
    assert [d.split(b":")[0] for d in received(rx)] == [b"sync.fail", b"async.fail", b"block.fail"]


def test_timer_with_a_bad_name_raises_in_strict_but_never_hides_the_hosts_error(
    rx: UdpReceiver,
) -> None:
    configure(rx)

    @fm.timer("user.alice@example.com")
    def ok() -> int:
        return 1

    @fm.timer("bad name")
    def failing() -> None:
        raise KeyError("host")

    with pytest.raises(fm.PiiRejectedError):
        ok()
    with pytest.raises(KeyError, match="host"):
        failing()
    assert fm.stats().drops == {"pii": 1, "invalid_record": 1}
    fm.reset()
    configure(rx, strict=False)
    assert ok() == 1  # production: dropped and counted, the function still works
    assert fm.stats().drops == {"pii": 1}
    assert received(rx) == []


# ---------------------------------------------------------------- capture


def test_capture_sees_checked_statsd_lines() -> None:
    with testing.capture(metrics_yaml=()) as cap:
        fm.record(fm.Timing("url_request", 3.0, tags={"path": "/v1/x", "method": "GET"}))
        with pytest.raises(fm.PiiRejectedError):
            fm.record(fm.Counter("x", tags={"uid": "f" * 32}))
    [line] = cap.records("statsd")
    assert line == fm.StatsdLine(
        kind="ms",
        name="url_request",
        tags=(("method", "GET"), ("path", "/v1/x")),
        stat="url_request,method=GET,path=/v1/x",
        value=3.0,
        rate=1.0,
    )
