"""The plugin's traps from issue 12, each in a real pytest run (pytester, subprocess).

A lazily imported app that calls configure(), consent lookups wired there, a
strict error a framework turns into a 500, definitions parsed once per
session, definitions found from the rootdir, and each row of the matching
table in docs/testing.md.
"""

from __future__ import annotations

import shutil

import pytest

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

UID = "0123456789abcdef0123456789abcdef"
OPTED_OUT = "fedcba9876543210fedcba9876543210"

# An app module configured at import, as services are: imported lazily by a fixture.
APP = f'''
import flask
import fxa_metrics as fm

fm.configure(
    service="fxa-example-api",
    app_id="accounts_backend",
    app_version="1.2.3",
    channel="production",
    metrics_yaml=r"{EXAMPLE_METRICS}",
    pings_yaml=r"{EXAMPLE_PINGS}",
    consent_lookup_uid=lambda uid: uid == "{OPTED_OUT}",
    mozlog_handler="never",
)

app = flask.Flask("example")
app.wsgi_app = fm.WSGIMiddleware(app.wsgi_app)


@app.post("/login/<uid>")
def login(uid):
    with fm.bind(uid=uid):
        fm.record("login.complete", extra={{"reason": "password"}})
    return {{"ok": True}}


@app.post("/bad")
def bad():
    fm.record("login.error", extra={{"errorCode": 1}})  # a typo: strict mode raises
    return {{"ok": True}}
'''

CONFTEST = """
import pytest

@pytest.fixture
def client():
    from myapp import app   # imported lazily: configure() runs inside the test
    return app.test_client()
"""


def _project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(myapp=APP)
    pytester.makeconftest(CONFTEST)
    pytester.syspathinsert()


def test_lazy_configure_keeps_the_capture_in_either_fixture_order(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester)
    pytester.makepyfile(
        test_lazy=f"""
        def test_capture_first(fxa_metrics_capture, client):
            assert client.post("/login/{UID}").status_code == 200
            fxa_metrics_capture.assert_event_once("login.complete", {{"reason": "password"}})
            fxa_metrics_capture.assert_timing_once("url_request", tags={{"status": 200}})

        def test_client_first(client, fxa_metrics_capture):
            client.post("/login/{UID}")
            fxa_metrics_capture.assert_event_once("login.complete")

        def test_adopts_app_id(fxa_metrics_capture, client):
            client.post("/login/{UID}")
            [line] = fxa_metrics_capture.lines()
            assert line["Fields"]["document_namespace"] == "accounts_backend"
            assert line["Logger"] == "fxa-example-api-glean"
        """
    )
    for order in (["-p", "no:randomly"], ["-p", "no:randomly", "-k", "not capture_first"]):
        result = pytester.runpytest_subprocess("-s", *order)
        result.assert_outcomes(passed=3 if len(order) == 2 else 2)
        # Nothing leaked to the real stdout: the app's configure() built no sink.
        assert "glean-server-event" not in result.stdout.str()


def test_consent_lookup_from_the_apps_configure_is_applied(pytester: pytest.Pytester) -> None:
    _project(pytester)
    pytester.makepyfile(
        test_consent=f"""
        import pytest

        def test_opted_out_user_is_not_captured(fxa_metrics_capture, client):
            client.post("/login/{OPTED_OUT}")
            fxa_metrics_capture.assert_not_event("login.complete")
            client.post("/login/{UID}")
            fxa_metrics_capture.assert_event_once("login.complete")

        @pytest.mark.fxa_metrics(enabled=False)
        def test_explicit_override_wins(fxa_metrics_capture, client):
            client.post("/login/{UID}")   # the app says enabled; the test says not
            fxa_metrics_capture.assert_not_event()
            fxa_metrics_capture.assert_timing("url_request")   # statsd is not gated
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


def test_strict_error_turned_into_a_500_fails_the_test(pytester: pytest.Pytester) -> None:
    _project(pytester)
    pytester.makepyfile(
        test_strict="""
        import pytest
        import fxa_metrics as fm

        def test_flask_500_unchecked(fxa_metrics_capture, client):
            client.post("/bad")   # Flask turns the RecordError into a 500

        def test_raised_in_the_test_is_the_tests_business(fxa_metrics_capture, client):
            with pytest.raises(fm.InvalidExtraError):
                fm.record("login.error", extra={"errorCode": 1})

        @pytest.mark.no_internal_errors_check
        def test_opted_out_of_the_check(fxa_metrics_capture, client):
            assert client.post("/bad").status_code == 500
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*StrictRecordErrorSwallowed: 1 strict-mode error(s) raised inside the code*",
            "*InvalidExtraError: *login.error*errorCode*",
        ]
    )


def test_strict_error_inside_a_fastapi_handler_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fastapi=f"""
        import pytest
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse
        from starlette.testclient import TestClient
        import fxa_metrics as fm

        app = FastAPI()

        @app.exception_handler(Exception)
        async def oops(request, exc):
            return JSONResponse({{"error": "oops"}}, status_code=500)

        @app.get("/bad")
        def bad():
            fm.record("login.complete", extra={{"reasn": "password"}})

        @pytest.mark.fxa_metrics(metrics_yaml=r"{EXAMPLE_METRICS}", pings_yaml=r"{EXAMPLE_PINGS}")
        def test_unchecked(fxa_metrics_capture):
            TestClient(app, raise_server_exceptions=False).get("/bad")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*InvalidExtraError: *login.complete*reasn*"])


def test_definitions_are_parsed_once_per_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import fxa_metrics._defs_cache as cache

        calls = []
        real = cache.load

        def counting(*args, **kwargs):
            calls.append(args)
            return real(*args, **kwargs)

        cache.load = counting

        def pytest_sessionfinish(session):
            with open("parses.txt", "w") as f:
                f.write(str(len(calls)))
        """
    )
    tests = "\n".join(
        f"@MARK\ndef test_{i}(fxa_metrics_capture):\n"
        f"    fm.record('login.complete')\n"
        f"    fxa_metrics_capture.assert_event_once('login.complete')\n"
        for i in range(30)
    )
    pytester.makepyfile(
        test_many="import pytest\nimport fxa_metrics as fm\n"
        f'MARK = pytest.mark.fxa_metrics(metrics_yaml=r"{EXAMPLE_METRICS}", '
        f'pings_yaml=r"{EXAMPLE_PINGS}")\n' + tests
    )
    # A cache of its own: another test's compiled copy on disk would mean no parse at all.
    pytester._monkeypatch.setenv("FXA_METRICS_CACHE_DIR", str(pytester.path / "defs-cache"))
    pytester.runpytest_subprocess().assert_outcomes(passed=30)
    assert (pytester.path / "parses.txt").read_text() == "1"
    # ... and the next session, in a fresh process, parses nothing: the disk cache answers.
    pytester.runpytest_subprocess().assert_outcomes(passed=30)
    assert (pytester.path / "parses.txt").read_text() == "0"


def test_default_definitions_come_from_the_rootdir_not_the_cwd(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(EXAMPLE_METRICS, pytester.path / "metrics.yaml")
    shutil.copy(EXAMPLE_PINGS, pytester.path / "pings.yaml")
    pytester.makeini("[pytest]\n")
    sub = pytester.mkpydir("tests")
    (sub / "test_root.py").write_text(
        "import fxa_metrics as fm\n\n"
        "def test_defined(fxa_metrics_capture):\n"
        "    fm.record('login.complete')   # strict: undefined would raise\n"
        "    fm.record(fm.Metrics({'activity.name': 'x'}))   # a pings.yaml ping\n"
        "    fxa_metrics_capture.assert_event_once('login.complete')\n"
    )
    elsewhere = pytester.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    pytester.runpytest_subprocess(str(sub / "test_root.py")).assert_outcomes(passed=1)


# ------------------------------------------------------------------ the matching table

MATCHING = f'''
import pytest
import fxa_metrics as fm
from fxa_metrics.testing import AnyTagValue, Observed, register_kind

pytestmark = pytest.mark.fxa_metrics(
    metrics_yaml=r"{EXAMPLE_METRICS}", pings_yaml=r"{EXAMPLE_PINGS}"
)
UID = "{UID}"


@pytest.fixture
def cap(fxa_metrics_capture):
    with fm.bind(uid=UID):
        extra = {{"reason": "password", "is_new_device": True, "attempts": 2}}
        fm.record("login.complete", extra=extra)
        fm.record(fm.Timing("url_request", 12.0, tags={{"method": "POST", "status": 200}}))
        fm.record(fm.Counter("login.attempt", 2))
        fm.record(fm.Gauge("pool.size", 7))
        fm.record(fm.Set("active.clients", "sync"))
        fm.record(fm.Log("request.summary", {{"errno": 0, "rid": "r1", "ok": True}}))
        fm.record(fm.Crash(KeyError("boom"), tags={{"op": "mailer"}}))
        fm.record(fm.DeletionRequest())
    return fxa_metrics_capture


def fails(call, *args, **kwargs):
    with pytest.raises(AssertionError):
        call(*args, **kwargs)


def test_row_name_is_equal(cap):
    cap.assert_event("login.complete")
    fails(cap.assert_event, "login.completed")
    cap.assert_logged("request.summary")
    fails(cap.assert_logged, "request")


def test_row_fields_are_a_subset_unless_exact(cap):
    cap.assert_event("login.complete", {{"reason": "password"}})
    cap.assert_timing("url_request", tags={{"method": "POST"}})
    cap.assert_logged("request.summary", errno=0)
    cap.assert_crash(tags={{"op": "mailer"}})
    fails(cap.assert_event, "login.complete", {{"reason": "password"}}, exact=True)
    cap.assert_event(
        "login.complete",
        {{"reason": "password", "is_new_device": True, "attempts": 2}},
        exact=True,
    )
    fails(cap.assert_timing, "url_request", tags={{"method": "POST"}}, exact=True)
    fails(cap.assert_logged, "request.summary", exact=True, errno=0)


def test_row_missing_key_never_matches(cap):
    fails(cap.assert_event, "login.complete", {{"missing": "x"}})
    fails(cap.assert_timing, "url_request", tags={{"path": AnyTagValue}})


def test_row_typed_values_or_wire_text(cap):
    cap.assert_event("login.complete", {{"attempts": 2, "is_new_device": True}})
    cap.assert_event("login.complete", {{"attempts": "2", "is_new_device": "true"}})
    fails(cap.assert_event, "login.complete", {{"is_new_device": "True"}})
    cap.assert_timing("url_request", tags={{"status": 200}})
    cap.assert_timing("url_request", tags={{"status": "200"}})
    cap.assert_logged("request.summary", errno=0, ok=True)
    cap.assert_logged("request.summary", errno="0", ok="true")
    fails(cap.assert_logged, "request.summary", errno=1)


def test_row_numbers_compare_as_numbers(cap):
    cap.assert_gauge("pool.size", 7.0)
    cap.assert_timing("url_request", 12)
    cap.assert_incr("login.attempt", 2)
    fails(cap.assert_incr, "login.attempt", 3)


def test_row_any_tag_value(cap):
    cap.assert_timing("url_request", tags={{"method": AnyTagValue}})
    cap.assert_logged("request.summary", rid=AnyTagValue)


def test_row_ping_selector(cap):
    cap.assert_event("login.complete", ping="events")
    fails(cap.assert_event, "login.complete", ping="accounts-activity")


def test_row_crash_type_and_message(cap):
    cap.assert_crash(LookupError)   # isinstance: subclasses count
    cap.assert_crash(KeyError, match="boom")
    fails(cap.assert_crash, ValueError)
    fails(cap.assert_crash, KeyError, match="bang")


def test_row_deletion_by_uid(cap):
    cap.assert_deletion_once(UID)
    cap.assert_not_deletion("0" * 32)


def test_row_counts_for_every_kind(cap):
    for kind, name in [("timing", "url_request"), ("incr", "login.attempt"),
                       ("gauge", "pool.size"), ("set", "active.clients")]:
        getattr(cap, f"assert_{{kind}}")(name)
        getattr(cap, f"assert_{{kind}}_once")(name)
        getattr(cap, f"assert_not_{{kind}}")("nope")
        fails(getattr(cap, f"assert_not_{{kind}}"), name)
    cap.assert_event_once("login.complete")
    cap.assert_logged_once("request.summary")
    cap.assert_not_logged("nope")
    cap.assert_crash_once()
    cap.assert_not_crash(ValueError)
    fm.record(fm.Counter("login.attempt", 2))
    fails(cap.assert_incr_once, "login.attempt")
    cap.assert_record("incr", "login.attempt", value=2, times=2)
    fails(cap.assert_record, "incr", "login.attempt", times=3)


def test_row_generic_kind_for_a_new_route(cap):
    def levels(rec):
        yield Observed("log_level", rec.type, rec.level, {{}}, {{}}, f"level {{rec.level}}")

    register_kind("log_level", "mozlog", levels)
    cap.assert_record("log_level", "request.summary", value=20, times="once")
    assert [o.name for o in cap.filter_records("log_level")] == ["request.summary"]
    with pytest.raises(ValueError, match="unknown record kind"):
        cap.assert_record("nope")
'''


def test_each_row_of_the_matching_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_matching=MATCHING)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=MATCHING.count("\ndef test_row_"))
