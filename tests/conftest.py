"""Shared fixtures: the pipeline's Glean schema, the definitions under test, a capture."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings

import fxa_metrics as fm
from fxa_metrics import testing

pytest_plugins = ["pytester"]

# `make soak` (bench/soak.py) runs the property suites with HYPOTHESIS_PROFILE=soak:
# every property test's example budget, its own explicit one included, is
# multiplied by SOAK_FACTOR. Any other value (or none) leaves the budgets as written.
SOAK_FACTOR = int(os.environ.get("FXA_METRICS_SOAK_FACTOR", "20"))
hsettings.register_profile(
    "soak", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
hsettings.load_profile(_PROFILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _PROFILE != "soak":
        return
    for item in items:
        fn = getattr(item, "obj", None)
        current = getattr(fn, "_hypothesis_internal_use_settings", None)
        if current is not None:  # a @given test: hypothesis reads this at call time
            fn._hypothesis_internal_use_settings = hsettings(  # type: ignore[union-attr]
                current, max_examples=current.max_examples * SOAK_FACTOR, deadline=None
            )
        cls = getattr(item, "cls", None)
        machine = getattr(cls, "settings", None)
        if isinstance(machine, hsettings):  # a stateful machine's TestCase
            cls.settings = hsettings(  # type: ignore[union-attr]
                machine, max_examples=machine.max_examples * SOAK_FACTOR, deadline=None
            )


ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXAMPLE_METRICS = ROOT / "metrics.yaml"
EXAMPLE_PINGS = ROOT / "pings.yaml"
FXA_METRICS = DATA / "fxa-backend" / "fxa-backend-metrics.yaml"
FXA_PINGS = DATA / "fxa-backend" / "fxa-backend-pings.yaml"
OLDER_METRICS = DATA / "fxa-backend" / "older" / "fxa-backend-metrics.038a70d6.yaml"
OLDER_PINGS = DATA / "fxa-backend" / "older" / "fxa-backend-pings.c58acc6e.yaml"

_SCHEMA = json.loads((DATA / "glean.1.schema.json").read_text())
# The schema's "datetime" format is the pipeline's own, and it is not enforced
# there: glean_parser's server outputters send first_run_date "Unknown" and
# those pings are ingested. Standard formats are checked.
_FORMATS = jsonschema.FormatChecker()
_VALIDATOR = jsonschema.Draft6Validator(_SCHEMA, format_checker=_FORMATS)


def validate_payload(payload: dict[str, Any]) -> None:
    """Raise if ``payload`` does not validate against the pipeline's Glean ping schema."""
    errors = sorted(_VALIDATOR.iter_errors(payload), key=lambda e: list(e.path))
    if errors:
        raise AssertionError(
            "payload fails glean.1.schema.json:\n"
            + "\n".join(f"  {list(e.path)}: {e.message}" for e in errors)
        )


@pytest.fixture
def schema_validate() -> Any:
    return validate_payload


@pytest.fixture(autouse=True, scope="session")
def _private_definitions_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Compiled definitions are cached on disk across processes (_defs_cache):
    # the suite and the servers it starts use a cache of their own, not the
    # user's, so a run neither depends on nor leaves behind an earlier run's.
    import os

    os.environ["FXA_METRICS_CACHE_DIR"] = str(tmp_path_factory.mktemp("defs-cache"))


@pytest.fixture(autouse=True)
def _no_leftover_configuration() -> Iterator[None]:
    # Every test starts unconfigured and leaves nothing behind.
    fm.reset()
    yield
    fm.reset()


@pytest.fixture
def cap() -> Iterator[testing.Capture]:
    """Strict capture of the example definitions; every captured payload must validate."""
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as c:
        yield c
        for payload in c.payloads():
            validate_payload(payload)


@pytest.fixture
def fxa_cap() -> Iterator[testing.Capture]:
    """Strict capture of the real FxA backend definitions."""
    with testing.capture(
        metrics_yaml=FXA_METRICS, pings_yaml=FXA_PINGS, app_id="accounts_backend"
    ) as c:
        yield c
        for payload in c.payloads():
            validate_payload(payload)
