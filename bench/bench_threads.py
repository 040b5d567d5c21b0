"""Threads rows: Glean events per second from 1, 2, 4, 8 threads, ours vs upstream as shipped.

**Wall time here**, not thread CPU time: what is measured is how the threads
share the interpreter and the output (locks, the GIL, the write). A block
starts the threads on a barrier and ends when the last one has written its
share; both sides write the same number of events to stdout (fd 1 pointed
at ``/dev/null``, then, for 8 threads, at a pipe read by another process, as
a container's stdout is), in ABBA rounds. The ratio is ours/upstream in records/s, so higher is
better here. Each of our threads binds one request context, outside its loop.

Run: ``python -m bench.bench_threads``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import fxa_metrics as fm

from . import _fxa
from ._fxa import CONTEXT, IP, UA, UID
from ._timing import row

THREADS = (1, 2, 4, 8)
EVENTS = 2400  # per block, split over the threads
ROUNDS = 9


def _block(threads: int, work: Callable[[int], None]) -> float:
    """Wall seconds for ``threads`` threads to do ``EVENTS`` events between them."""
    each = EVENTS // threads
    start = threading.Barrier(threads + 1)

    def body() -> None:
        start.wait()
        work(each)

    pool = [threading.Thread(target=body) for _ in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - t0


def _rows(
    ours: Callable[[int], None], theirs: Callable[[int], None], output: str
) -> list[dict[str, Any]]:
    out = []
    for threads in THREADS if output == "/dev/null" else THREADS[-1:]:
        _block(threads, ours), _block(threads, theirs)  # warm-up
        rate_ours: list[float] = []
        rate_base: list[float] = []
        ratios: list[float] = []
        for r in range(ROUNDS):
            order = (ours, theirs, theirs, ours) if r % 2 == 0 else (theirs, ours, ours, theirs)
            spent = {id(ours): 0.0, id(theirs): 0.0}
            for side in order:
                spent[id(side)] += _block(threads, side)
            events = 2 * (EVENTS // threads) * threads
            rate_ours.append(events / spent[id(ours)])
            rate_base.append(events / spent[id(theirs)])
            ratios.append(spent[id(theirs)] / spent[id(ours)])
        out.append(
            row(
                f"{threads} thread{'s' * (threads > 1)} to {output}, records/s vs upstream"
                " (wall time)",
                ratios,
                target=">= 1.5" if threads == 8 else "(info)",
                ours=statistics.median(rate_ours),
                base=statistics.median(rate_base),
                unit="records/s",
                ours_label=f"{threads} threads, each fm.record('login.complete'), bound context",
                base_label=f"{threads} threads, each upstream record_login_complete(...)",
            )
        )
    return out


def run() -> list[dict[str, Any]]:
    shipped = _fxa.upstream_logger(_fxa.generate_upstream())
    sha = fm.uid_sha256(UID)

    def ours(n: int) -> None:
        with fm.bind(uid=UID, user_agent=UA, ip_address=IP, **CONTEXT):
            for _ in range(n):
                fm.record("login.complete")

    def theirs(n: int) -> None:
        for _ in range(n):
            _fxa.upstream_login_complete(shipped, sha)

    _fxa.configure()
    try:
        with _fxa.stdout_to_devnull():
            rows = _rows(ours, theirs, "/dev/null")
        with _fxa.stdout_to_devnull(pipe=True):
            rows += _rows(ours, theirs, "a pipe")
        _fxa.check_clean("threads")
    finally:
        fm.reset()
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
