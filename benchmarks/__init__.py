"""Benchmarks: `python -m benchmarks.model_bench` (see README, Performance)."""
