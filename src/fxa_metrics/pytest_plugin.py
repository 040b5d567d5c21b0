"""pytest plugin, registered through the ``pytest11`` entry point: installing is enough.

Fixture ``fxa_metrics_capture``: every sink captured in memory, strict mode on,
with the assertion helpers of :class:`fxa_metrics.testing.Capture`. The
capture survives the app's own ``configure()`` (it adopts its settings).
Without ``metrics_yaml`` it reads ``metrics.yaml`` (and ``pings.yaml``) in
the project's rootdir, never the current directory. At teardown:

* every captured Glean payload is validated against the pipeline's schema;
* a strict-mode :class:`~fxa_metrics.RecordError` raised inside the code under
  test and swallowed there (a web framework turning it into a 500) fails the
  test. One the test itself caught (``pytest.raises`` in the test module) is
  the test's business;
* any internal error fxa_metrics contained during the test is re-raised, so a
  hidden bug fails the test (as sentry-python's own suite does).

Mark a test ``no_internal_errors_check`` when it checks containment itself;
``@pytest.mark.fxa_metrics(**settings)`` passes settings to the capture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Before the import below: pytest rewrites asserts only in modules registered
# before they are first imported.
pytest.register_assert_rewrite("fxa_metrics.testing")

from . import testing  # noqa: E402 - after register_assert_rewrite, on purpose


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_internal_errors_check: contained fxa_metrics internal (and strict) errors are expected",
    )
    config.addinivalue_line("markers", "fxa_metrics(**settings): settings for the capture")


def _caught_by_test(exc: BaseException, test_file: str) -> bool:
    """Whether ``exc`` ended in the test module (pytest.raises) or failed the test itself."""
    tb = exc.__traceback__
    if tb is None:  # pragma: no cover - a raised exception always has one
        return False
    where = os.path.normcase(os.path.abspath(tb.tb_frame.f_code.co_filename))
    if where == os.path.normcase(test_file):
        return True
    # Propagated out of the test function: pytest reports it as the failure already.
    return f"{os.sep}_pytest{os.sep}" in where or f"{os.sep}pluggy{os.sep}" in where


class StrictRecordErrorSwallowed(AssertionError):
    """A strict-mode RecordError was raised in the code under test, and something swallowed it."""


@pytest.fixture
def fxa_metrics_capture(request: pytest.FixtureRequest) -> Iterator[testing.Capture]:
    """Capture every fxa_metrics sink in memory (strict mode), for the test's duration."""
    settings: dict[str, Any] = {}
    marker = request.node.get_closest_marker("fxa_metrics")
    if marker is not None:
        settings.update(marker.kwargs)
    with testing.capture(root=request.config.rootpath, **settings) as cap:
        yield cap
        cap.validate()
    if request.node.get_closest_marker("no_internal_errors_check") is not None:
        return
    test_file = os.path.abspath(str(request.node.path))
    swallowed = [e for e in cap.strict_errors() if not _caught_by_test(e, test_file)]
    if swallowed:
        raise StrictRecordErrorSwallowed(
            f"{len(swallowed)} strict-mode error(s) raised inside the code under test were "
            "swallowed (a framework's 500?):\n"
            + "\n".join(f"  {type(e).__name__}: {e}" for e in swallowed)
        ) from swallowed[0]
    errors = cap.internal_errors()
    if errors:
        raise errors[0]
