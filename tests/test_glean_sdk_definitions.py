"""Definitions for the glean-sdk route: its types load, each metric's route, what is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import fxa_metrics as fm
from fxa_metrics import cli
from fxa_metrics._definitions import SDK_ROUTE_TYPES, SdkParams, routes
from tests.glean_sdk_support import ALL_PINGS, ALL_TYPES, MIXED

HEAD = "---\n$schema: moz://mozilla.org/schemas/glean/metrics/2-0-0\n"
COMMON = (
    "    description: x\n"
    "    bugs: [https://bugzilla.mozilla.org/1]\n"
    "    data_reviews: [https://bugzilla.mozilla.org/1]\n"
    "    notification_emails: [fxa-staff@mozilla.com]\n"
    "    expires: never\n"
)


def write(tmp_path: Path, body: str, name: str = "metrics.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body))
    return path


def metric(name: str, spec: str) -> str:
    return f"  {name}:\n" + textwrap.indent(textwrap.dedent(spec), "    ") + COMMON


def test_every_sdk_type_loads_with_what_the_sdk_needs() -> None:
    defs = fm.load_definitions(ALL_TYPES, ALL_PINGS)
    sdk = {ident: md for ident, md in defs.metrics.items() if md.route == "glean_sdk"}
    assert {md.type for md in sdk.values()} == SDK_ROUTE_TYPES
    assert sdk["svc.status"].sdk == SdkParams(labels=("error", "ok"))
    assert sdk["svc.latency"].sdk == SdkParams(time_unit="millisecond")
    assert sdk["svc.rss"].sdk == SdkParams(memory_unit="kilobyte")
    assert sdk["svc.batch"].sdk == SdkParams(
        range_min=0, range_max=100, bucket_count=10, histogram_type="linear"
    )
    assert sdk["svc.jobs"].pings == ("service-stats",)
    assert defs.sdk_pings == ("metrics", "service-stats")
    # The server route does not see them: no server ping carries them.
    for pd in defs.pings.values():
        assert not any(t in SDK_ROUTE_TYPES for t in pd.metrics_by_type)


def test_check_says_each_metrics_route(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check", "--metrics-yaml", str(MIXED)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "ok: definitions are valid"
    assert sorted(out[1:]) == [
        "route: account.user_id_sha256 (string): glean",
        "route: jobs.duration (timing_distribution): glean_sdk",
        "route: jobs.runs (counter): glean_sdk",
        "route: login.complete (event): glean",
        "route: session.flow_id (string): glean",
    ]


def test_routes_of_unparseable_or_missing_files_are_empty(tmp_path: Path) -> None:
    assert routes([tmp_path / "missing.yaml"]) == []
    bad = write(tmp_path, "svc:\n" + metric("x", "type: counter\ncolour: red\n"))
    assert routes([bad]) == []
    nothing = write(tmp_path, "svc:\n" + metric("x", "type: uuid\n"))
    (r,) = routes([nothing])
    assert (r.identifier, r.route, str(r)) == ("svc.x", None, "svc.x (uuid): no route")


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("type: counter\nlifetime: user\n", "lifetime: user"),
        ("type: counter\ndata_sensitivity: [highly_sensitive]\n", "highly_sensitive"),
        ("type: timing_distribution\ndata_sensitivity: [stored_content]\n", "stored_content"),
        ("type: labeled_counter\n", "without static labels"),
    ],
)
def test_user_identifying_sdk_metrics_are_refused(tmp_path: Path, spec: str, why: str) -> None:
    path = write(tmp_path, "svc:\n" + metric("thing", spec))
    with pytest.raises(fm.DefinitionsError) as info:
        fm.load_definitions(path)
    (problem,) = info.value.problems
    assert problem.metric == "svc.thing"
    assert problem.line is not None
    assert problem.message.startswith("refused: ")
    assert why in problem.message


def test_sdk_metrics_cannot_use_the_server_deletion_ping_or_undeclared_pings(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "svc:\n"
        + metric("a", "type: counter\nsend_in_pings: [server-deletion-request]\n")
        + metric("b", "type: counter\nsend_in_pings: [nowhere]\n")
        + metric("c", "type: counter\nsend_in_pings: [events]\n"),
    )
    with pytest.raises(fm.DefinitionsError) as info:
        fm.load_definitions(path)
    problems = {p.metric: p.message for p in info.value.problems}
    assert set(problems) == {"svc.a", "svc.b"}  # the SDK's own events ping is fine
    assert "belongs to the Glean server route" in problems["svc.a"]
    assert "neither declared in pings.yaml nor built in" in problems["svc.b"]


def test_check_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "svc:\n"
        + metric("a", "type: counter\nlifetime: user\n")
        + metric("b", "type: uuid\n")
        + metric("c", "type: labeled_counter\nsend_in_pings: [nowhere]\n")
        + metric("d", "type: event\n"),
    )
    problems = fm.check_definitions([path])
    assert sorted(p.metric for p in problems) == ["svc.a", "svc.b", "svc.c", "svc.c"]
