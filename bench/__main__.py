"""``make bench``: every route, 3 runs each in fresh interpreters, one table of ratios and targets.

``python -m bench --write`` also replaces the results table in docs/performance.md.
``--only glean,statsd`` runs some routes; ``--runs N`` changes the number of runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._timing import meets, summary

ROUTES = (
    "glean",
    "mozlog",
    "statsd",
    "sentry",
    "threads",
    "middleware",
    "startup",
    "fixture",
    "beacon",
    "integrations",
    "glean_sdk",
)
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
MARK = "BENCH-ROWS "
COMMAND = "make bench"


def run_route(route: str) -> list[dict[str, Any]]:
    """One run of one route's rows, in a fresh interpreter (no heap or cache left by another)."""
    code = f"import json, bench.bench_{route} as m; print({MARK!r} + json.dumps(m.run()))"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "SENTRY_DSN")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench_{route} failed:\n{out.stderr[-4000:]}")
    line = next(ln for ln in reversed(out.stdout.splitlines()) if ln.startswith(MARK))
    rows: list[dict[str, Any]] = json.loads(line[len(MARK) :])
    return rows


def aggregate(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each row over the runs: the median of all per-round values, its spread, each run's median."""
    out: list[dict[str, Any]] = []
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs]
        pooled = [x for r in same for x in r["rounds"]]
        agg = {**first, **summary(pooled)}
        agg["per_run"] = [statistics.median(r["rounds"]) for r in same]
        agg["ours"] = statistics.median(r["ours"] for r in same)
        bases = [r["base"] for r in same if r["base"] is not None]
        agg["base"] = statistics.median(bases) if bases else None
        agg["met"] = meets(agg["ratio"], first["target"])
        out.append(agg)
    return out


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def _verdict(met: bool | None) -> str:
    return "info" if met is None else ("**met**" if met else "**missed**")


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| row | ours | baseline | unit | ratio (median) | IQR | min to max | per run "
        "| target | met? |",
        "|---|---:|---:|---|---:|---|---|---|---|---|",
    ]
    for r in rows:
        per_run = ", ".join(_num(x) for x in r["per_run"])
        out.append(
            f"| {r['name']} | {_num(r['ours'])} | {_num(r['base'])} | {r['unit']} "
            f"| **{_num(r['ratio'])}** | {_num(r['q1'])} to {_num(r['q3'])} "
            f"| {_num(r['min'])} to {_num(r['max'])} | {per_run} | {r['target']} "
            f"| {_verdict(r['met'])} |"
        )
    return "\n".join(out)


def _commit() -> str:
    """The measured code's commit (``+`` when the work tree differs), or ``?``."""
    try:
        head = subprocess.run(
            ["git", "describe", "--always", "--dirty=+", "--abbrev=7"],
            capture_output=True, text=True, cwd=ROOT, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head or "?"


def stamp(runs: int, started: float, load: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Measured {now} at commit {_commit()} "
        f"with `{COMMAND}` (`python -m bench --write`), {runs} runs per route, "
        f"each in a fresh interpreter, {time.monotonic() - started:.0f} s in all. Machine: "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load} at the start."
    )


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument("--runs", type=int, default=3, help="runs per route (default 3)")
    parser.add_argument("--only", default="", help=f"comma-separated routes of {ROUTES}")
    args = parser.parse_args()
    routes = [r for r in ROUTES if not args.only or r in args.only.split(",")]
    started = time.monotonic()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows: list[dict[str, Any]] = []
    for route in routes:
        runs = []
        for i in range(args.runs):
            print(f"[bench] {route} run {i + 1}/{args.runs}", file=sys.stderr, flush=True)
            runs.append(run_route(route))
        rows.extend(aggregate(runs))
    text = f"{stamp(args.runs, started, load)}\n\n{table(rows)}"
    print(text)
    missed = [r["name"] for r in rows if r["met"] is False]
    print(f"\n{len(missed)} target(s) missed: {missed}" if missed else "\nevery target met")
    if args.write:
        write_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
