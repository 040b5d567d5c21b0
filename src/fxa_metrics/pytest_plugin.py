"""pytest plugin, registered through the ``pytest11`` entry point: installing is enough.

Fixture ``fxa_metrics_capture``: every sink captured in memory, strict mode on,
with the assertion helpers of :class:`fxa_metrics.testing.Capture`. At
teardown every captured Glean payload is validated against the pipeline's
schema, and any internal error fxa_metrics contained during the test is
re-raised, so a hidden bug fails the test (as sentry-python's own suite does).
Mark a test ``no_internal_errors_check`` when it checks containment itself;
``@pytest.mark.fxa_metrics(**settings)`` passes settings to the capture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# Before the import below: pytest rewrites asserts only in modules registered
# before they are first imported.
pytest.register_assert_rewrite("fxa_metrics.testing")

from . import _facade, testing  # noqa: E402 - after register_assert_rewrite, on purpose


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_internal_errors_check: contained fxa_metrics internal errors are expected",
    )
    config.addinivalue_line("markers", "fxa_metrics(**settings): settings for the capture")


@pytest.fixture
def fxa_metrics_capture(request: pytest.FixtureRequest) -> Iterator[testing.Capture]:
    """Capture every fxa_metrics sink in memory (strict mode), for the test's duration."""
    settings: dict[str, Any] = {}
    marker = request.node.get_closest_marker("fxa_metrics")
    if marker is not None:
        settings.update(marker.kwargs)
    with testing.capture(**settings) as cap:
        yield cap
        rt = _facade.get_runtime()
        errors = list(rt.stats.internal_errors) if rt is not None else []
        cap.validate()
    if errors and request.node.get_closest_marker("no_internal_errors_check") is None:
        raise errors[0]
