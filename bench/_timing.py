"""Fair timing: ours and the baseline in interleaved ABBA rounds, by thread CPU time.

Why each choice:

- **ABBA rounds.** On a shared 2-core machine load comes in bursts; a round
  times ours, the baseline, the baseline again, then ours (the next round
  starts with the baseline), so a burst or a drift (warming caches, a growing
  heap) falls on both sides alike. Each round gives one ratio.
- **The calling thread's CPU time** (``time.thread_time_ns``): what the caller
  pays, user and kernel alike (a ``write``/``sendto`` is counted), and not the
  time another process or thread held the core. Work handed to a background
  thread is *not* counted; the rows where that happens say so.
- **The median of per-round ratios, with its spread** (IQR and min-max):
  a ratio of medians hides how much the rounds disagree.
- **GC stays on** (collected before each block): a side that allocates more
  pays for its collections, as it does in production. What setup built is
  frozen first (``gc.freeze()``, as pre-fork servers do after loading the app),
  so a collection does not walk a framework's heap on either side.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

Runner = Callable[[int], object]  # runs the measured work n times

BLOCK_NS = 6_000_000  # each timed block: ~6 ms of CPU, far above clock granularity
# BENCH_ROUNDS=2 for a quick smoke run of the rows (the figures then mean little).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))


def loop(fn: Callable[[], object]) -> Runner:
    """A runner that calls ``fn`` n times (the loop cost is the same on both sides)."""

    def run(n: int) -> None:
        for _ in range(n):
            fn()

    return run


def block_ns(run: Runner, n: int) -> int:
    gc.collect()
    t0 = time.thread_time_ns()
    run(n)
    return time.thread_time_ns() - t0


def calibrate(run: Runner, target_ns: int = BLOCK_NS) -> int:
    """How many calls make one block of about ``target_ns`` CPU time."""
    n = 1
    while True:
        spent = block_ns(run, n)
        if spent >= target_ns // 4 or n >= 1 << 22:
            return max(1, int(n * target_ns / max(spent, 1)))
        n *= 4


def quartiles(xs: Sequence[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return (xs[0], xs[0])
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return (q[0], q[2])


def summary(ratios: Sequence[float]) -> dict[str, float]:
    """Median, IQR and min-max of per-round ratios."""
    lo, hi = quartiles(ratios)
    return {
        "ratio": statistics.median(ratios),
        "q1": lo,
        "q3": hi,
        "min": min(ratios),
        "max": max(ratios),
    }


def abba(
    name: str,
    ours: Runner,
    base: Runner,
    *,
    target: str,
    ours_label: str,
    base_label: str,
    rounds: int = ROUNDS,
    switch: Callable[[str], object] | None = None,
    between: Callable[[], object] | None = None,
    n: int | None = None,
) -> dict[str, Any]:
    """One row: per-call µs of each side and the per-round ratios ours/baseline.

    ``switch(side)`` runs (untimed) before each block of that side, for rows
    whose two sides share global state (a logger's handlers). ``between()``
    runs (untimed) after each block (draining a queue). ``n`` fixes the calls
    per block (otherwise calibrated to ``BLOCK_NS`` on the slower side).
    """
    sides = {"ours": ours, "base": base}

    def timed(side: str, calls: int) -> int:
        if switch is not None:
            switch(side)
        spent = block_ns(sides[side], calls)
        if between is not None:
            between()
        return spent

    for side in sides:  # warm up: caches, lazily built tables, first-call imports
        if switch is not None:
            switch(side)
        sides[side](3)
    gc.collect()
    gc.freeze()
    if n is None:
        if switch is not None:
            switch("ours")
        n_ours = calibrate(ours)
        if switch is not None:
            switch("base")
        n = min(n_ours, calibrate(base))
    per_ours: list[float] = []
    per_base: list[float] = []
    ratios: list[float] = []
    for r in range(rounds):
        order = ("ours", "base", "base", "ours") if r % 2 == 0 else ("base", "ours", "ours", "base")
        spent = {"ours": 0, "base": 0}
        for side in order:
            spent[side] += timed(side, n)
        per_ours.append(spent["ours"] / (2 * n) / 1000.0)
        per_base.append(spent["base"] / (2 * n) / 1000.0)
        ratios.append(spent["ours"] / spent["base"])
    return row(
        name,
        ratios,
        target=target,
        ours=statistics.median(per_ours),
        base=statistics.median(per_base),
        unit="µs/call",
        ours_label=ours_label,
        base_label=base_label,
        calls_per_block=n,
    )


def row(
    name: str,
    ratios: Sequence[float],
    *,
    target: str,
    ours: float,
    base: float | None,
    unit: str,
    ours_label: str,
    base_label: str,
    **extra: Any,
) -> dict[str, Any]:
    """A result row as the runner aggregates it (JSON-serialisable).

    ``ratios`` are the per-round values the target applies to (a ratio
    ours/baseline, or an absolute figure for rows such as import time).
    """
    return {
        "name": name,
        "rounds": list(ratios),
        "ours": ours,
        "base": base,
        "unit": unit,
        "target": target,
        "ours_label": ours_label,
        "base_label": base_label,
        **extra,
    }


def meets(value: float, target: str) -> bool | None:
    """Whether ``value`` meets a target such as ``"<= 0.5"`` or ``">= 1.5"`` (None: no target)."""
    op, _, num = target.partition(" ")
    if op == "<=":
        return value <= float(num)
    if op == ">=":
        return value >= float(num)
    return None
