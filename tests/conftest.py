"""Shared fixtures: the pipeline's Glean schema, the definitions under test, a capture."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import fxa_metrics as fm
from fxa_metrics import testing

pytest_plugins = ["pytester"]

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
