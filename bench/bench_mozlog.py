"""MozLog rows: one request.summary line, ours vs stdlib logging + dockerflow's MozlogFormatter.

- our handler (``mozlog_handler="own"``): fxa_metrics formats the line and
  writes it to fd 1 itself;
- a host's handlers (``mozlog_handler="host"``): the host configured logging
  (a root handler with dockerflow's formatter, as a Dockerflow service's
  dictConfig does); ours hands a ``LogRecord`` to the logger and the line goes
  through the host's handler, like the baseline's;
- the formatter alone, same ``LogRecord`` (information: what the encoder saves).

Run: ``python -m bench.bench_mozlog``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from dockerflow.logging import MozlogFormatter

import fxa_metrics as fm

from . import _fxa
from ._fxa import UA
from ._timing import abba, loop

FIELDS = {
    "errno": 0,
    "agent": UA,
    "lang": "en-US",
    "method": "POST",
    "path": "/v1/account/login",
    "rid": "f6a7c2b9-6f1d-4b7e-9a55-0d3c2e1f4a8b",
    "t": 12,
    "code": 200,
}
OURS_LABEL = 'fm.record(fm.Log("request.summary", fields)), 8 fields'
BASE_LABEL = 'logging.getLogger(...).info("", extra=fields), dockerflow MozlogFormatter'


def _dockerflow_handler() -> logging.Handler:
    # sys.stdout, whose fd 1 points at /dev/null while timing (_fxa.stdout_to_devnull).
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(MozlogFormatter(logger_name="fxa-auth-api"))
    return handler


def _our_handler() -> dict[str, Any]:
    base_logger = logging.getLogger("bench.dockerflow.request.summary")
    base_logger.propagate = False
    base_logger.setLevel(logging.INFO)
    handler = _dockerflow_handler()
    base_logger.addHandler(handler)
    _fxa.configure(metrics_yaml=(), mozlog_handler="own")
    record = fm.Log("request.summary", FIELDS)
    try:
        out = abba(
            "MozLog line vs dockerflow, our handler",
            loop(lambda: fm.record(record)),
            loop(lambda: base_logger.info("", extra=FIELDS)),
            target="<= 0.5",
            ours_label=OURS_LABEL + ", fxa_metrics' handler",
            base_label=BASE_LABEL + " on a StreamHandler",
        )
        _fxa.check_clean("MozLog, our handler")
    finally:
        fm.reset()
        base_logger.removeHandler(handler)
    return out


def _host_handlers() -> dict[str, Any]:
    root = logging.getLogger()
    handler = _dockerflow_handler()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    summary_logger = logging.getLogger("request.summary")
    _fxa.configure(metrics_yaml=(), mozlog_handler="host")
    record = fm.Log("request.summary", FIELDS)
    try:
        out = abba(
            "MozLog line vs dockerflow, through a host's handlers",
            loop(lambda: fm.record(record)),
            loop(lambda: summary_logger.info("", extra=FIELDS)),
            target="<= 1.0",
            ours_label=OURS_LABEL + ", the host's root handler and formatter",
            base_label=BASE_LABEL + ", the same root handler",
        )
        _fxa.check_clean("MozLog, host's handlers")
    finally:
        fm.reset()
        root.removeHandler(handler)
        root.setLevel(logging.WARNING)
    return out


def _formatter_alone() -> dict[str, Any]:
    rec = logging.getLogger("request.summary").makeRecord(
        "request.summary", logging.INFO, __file__, 1, "", (), None, extra=FIELDS
    )
    ours = fm.MozLogFormatter("fxa-auth-api")
    theirs = MozlogFormatter(logger_name="fxa-auth-api")
    return abba(
        "MozLog formatter alone (same LogRecord)",
        loop(lambda: ours.format(rec)),
        loop(lambda: theirs.format(rec)),
        target="(info)",
        ours_label="fxa_metrics.MozLogFormatter.format",
        base_label="dockerflow MozlogFormatter.format",
    )


def run() -> list[dict[str, Any]]:
    with _fxa.stdout_to_devnull():
        return [_our_handler(), _host_handlers(), _formatter_alone()]


if __name__ == "__main__":
    for r in run():
        print(r)
