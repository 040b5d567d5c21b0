"""``make bench``: every route's benchmark in one run, printed as a Markdown table of ratios.

``python -m bench --write`` also replaces the results table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

MODULES = (
    "bench.bench_glean",
    "bench.bench_statsd",
    "bench.bench_sentry",
    "bench.bench_beacon",
)
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| benchmark | ours (µs/call) | baseline (µs/call) | ratio | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['name']} | {r['ours_us']} | {r['baseline_us']} "
            f"| **{r['ratio']}** | {r['goal']} |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name in MODULES:
        if importlib.util.find_spec(name) is None:
            print(f"(skipping {name}: not present)", file=sys.stderr)
            continue
        # Each route in a fresh interpreter: a heap grown by one benchmark would
        # tax the next one's allocations (and GC) and skew its ratio.
        code = f"import json, {name} as m; print(json.dumps(m.run()))"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        rows.extend(json.loads(out.stdout.strip().splitlines()[-1]))
    stamp = (
        f"Measured {dt.date.today().isoformat()} on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, with `make bench` "
        "(`python -m bench --write`); each ratio is from one run, both sides interleaved."
    )
    text = f"{stamp}\n\n{table(rows)}"
    print(text)
    for r in rows:
        if r.get("ours") or r.get("baseline"):
            print(
                f"  {r['name']}\n    ours:     {r.get('ours')}\n    baseline: {r.get('baseline')}"
            )
    if args.write:
        doc = DOC.read_text()
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
