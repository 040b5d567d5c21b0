"""``fxa-metrics record`` with statsd kinds, end to end: a subprocess, real UDP, exact bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fxa_metrics._recv_udp import UdpReceiver


@pytest.fixture
def rx() -> Iterator[UdpReceiver]:
    with UdpReceiver() as r:
        yield r


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STATSD_")}
    return subprocess.run(
        [sys.executable, "-m", "fxa_metrics", "record", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**base, **(env or {})},
        check=False,
    )


def to(rx: UdpReceiver, *extra: str) -> list[str]:
    return ["--statsd-host", rx.host, "--statsd-port", str(rx.port), *extra]


def test_every_kind_goes_out_in_command_line_order_with_prefix_and_sorted_tags(
    rx: UdpReceiver,
) -> None:
    p = cli(
        "--timing", "url_request=12.5",
        "--count", "login.complete",
        "--count", "login.retry=3",
        "--gauge", "pool.size=7",
        "--set", "active.clients=sync",
        "--tag", "result=ok",
        "--tag", "method=POST",
        *to(rx, "--statsd-prefix", "fxa-auth-server."),
    )  # fmt: skip
    assert (p.returncode, p.stderr) == (0, "")
    sent = [
        b"fxa-auth-server.url_request,method=POST,result=ok:12.500000|ms",
        b"fxa-auth-server.login.complete,method=POST,result=ok:1|c",
        b"fxa-auth-server.login.retry,method=POST,result=ok:3|c",
        b"fxa-auth-server.pool.size,method=POST,result=ok:7|g",
        b"fxa-auth-server.active.clients,method=POST,result=ok:sync|s",
    ]
    assert rx.wait_for(5) == sent
    # The engineer sees exactly the bytes that went out.
    assert p.stdout.splitlines() == [f"statsd: {d.decode()}" for d in sent]


def test_pii_tag_is_a_drop_and_nothing_is_sent(rx: UdpReceiver) -> None:
    p = cli("--count", "login", "--timing", "t=1", "--tag", "email=alice@example.com", *to(rx))
    assert p.returncode == 0
    lines = p.stderr.splitlines()
    assert lines[-2:] == ["dropped: pii", "dropped: pii"]
    assert "login.tag:email: looks like an email address" in p.stderr
    assert "alice" not in p.stderr
    # A good command afterwards: its datagram is the only one that arrived.
    assert cli("--count", "after", *to(rx)).returncode == 0
    assert rx.wait_for(1) == [b"after:1|c"]


def test_strict_makes_a_refused_record_exit_2(rx: UdpReceiver) -> None:
    p = cli("--count", "login", "--tag", "ip=203.0.113.7", "--strict", *to(rx))
    assert p.returncode == 2
    assert p.stderr == (
        "login.tag:ip: looks like an IP address; no user identity in aggregate metrics\n"
    )
    p = cli("--count", "bad name", "--strict", *to(rx))
    assert p.returncode == 2
    assert "bad name.name: has ' ' at 3" in p.stderr
    p = cli("--count", "bad name", *to(rx))
    assert p.returncode == 0
    assert p.stderr.endswith("dropped: invalid_record\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timing", "url_request"], "--timing expects NAME=VALUE, got 'url_request'"),
        (["--timing", "t=fast"], "'fast' is not a number"),
        (["--count", "c=1.5"], "--count 'c=1.5': '1.5' is not an integer"),
        (["--count", "c", "--tag", "novalue"], "--tag expects KEY=VALUE"),
        (["--tag", "a=b"], "--tag goes with --timing, --count, --gauge or --set"),
    ],
)
def test_malformed_options_exit_2(rx: UdpReceiver, args: list[str], message: str) -> None:
    p = cli(*args, *to(rx))
    assert p.returncode == 2
    assert message in p.stderr


def test_host_is_required_and_must_resolve() -> None:
    p = cli("--count", "login")
    assert p.returncode == 2
    assert "statsd records need --statsd-host (or STATSD_HOST" in p.stderr
    p = cli("--count", "login", "--statsd-host", "no-such-host.invalid")
    assert p.returncode == 2
    assert "'no-such-host.invalid' (statsd_host or STATSD_HOST) does not resolve" in p.stderr


def test_the_usual_environment_variables_configure_the_cli(rx: UdpReceiver) -> None:
    env = {"STATSD_HOST": rx.host, "STATSD_PORT": str(rx.port), "STATSD_PREFIX": "fxa-profile"}
    p = cli("--gauge", "queue=-2.5", env=env)
    assert (p.returncode, p.stderr) == (0, "")
    assert rx.wait_for(1) == [b"fxa-profile.queue:0|g\nfxa-profile.queue:-2.5|g"]
