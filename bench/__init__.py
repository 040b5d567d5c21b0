"""Benchmarks: ours vs the raw libraries and upstream code, measured in the same run, as ratios."""
