"""Benchmarks: ``python -m bench`` runs them all (one run, ratios against baselines)."""
