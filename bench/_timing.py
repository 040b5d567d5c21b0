"""Interleaved timing: both sides measured in the same run, as alternating rounds.

Why interleave: on a noisy 2-core machine, a burst of load hits whichever side
happens to be running; alternating rounds spreads it over both, so the *ratio*
of medians is stable even when absolute numbers wander.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        return (time.perf_counter_ns() - t0) / n / 1000.0
    finally:
        gc.enable()


def compare(
    name: str,
    ours: Callable[[], Any],
    baseline: Callable[[], Any],
    *,
    goal: str,
    n: int = 5000,
    rounds: int = 9,
    ours_label: str = "",
    baseline_label: str = "",
) -> dict[str, Any]:
    """Median µs per call of each side over ``rounds`` alternating rounds, and their ratio."""
    for fn in (ours, baseline):  # warm caches, JIT-free but import/alloc warm-up matters
        per_call_us(fn, max(n // 10, 100))
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(per_call_us(ours, n))
        b.append(per_call_us(baseline, n))
    ours_us = statistics.median(a)
    base_us = statistics.median(b)
    return {
        "name": name,
        "ours": ours_label,
        "baseline": baseline_label,
        "ours_us": round(ours_us, 2),
        "baseline_us": round(base_us, 2),
        "ratio": round(ours_us / base_us, 3),
        "goal": goal,
    }
