"""The pytest plugin, exercised with pytester: installed means registered."""

from __future__ import annotations

import pytest

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS

MARK = f'@pytest.mark.fxa_metrics(metrics_yaml=r"{EXAMPLE_METRICS}", pings_yaml=r"{EXAMPLE_PINGS}")'


def test_fixture_captures_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    fxa_metrics: settings\n")
    pytester.makepyfile(
        f"""
        import pytest
        import fxa_metrics as fm

        {MARK}
        def test_capture(fxa_metrics_capture):
            with fm.bind(uid="0123456789abcdef0123456789abcdef"):
                fm.record("login.complete", extra={{"reason": "password"}})
            assert fxa_metrics_capture.events() == [
                {{"category": "login", "name": "complete",
                  "extra": {{"reason": "password"}}, "timestamp": 0}}
            ]

        {MARK}
        def test_strict(fxa_metrics_capture):
            with pytest.raises(fm.InvalidExtraError):
                fm.record("login.error", extra={{"errorCode": 1}})
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_contained_internal_error_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    fxa_metrics: settings\n")
    pytester.makepyfile(
        f"""
        import pytest
        import fxa_metrics as fm

        class Broken(fm.Sink):
            def emit(self, record):
                raise RuntimeError("hidden sink bug")

        {MARK[:-1]}, sinks={{"glean": [Broken()]}})
        def test_hidden(fxa_metrics_capture):
            fm.record("login.complete")  # contained: does not raise here

        {MARK[:-1]}, sinks={{"glean": [Broken()]}})
        @pytest.mark.no_internal_errors_check
        def test_expected(fxa_metrics_capture):
            fm.record("login.complete")
            assert fm.stats().drops["sink_error"] == 1
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: hidden sink bug*"])
