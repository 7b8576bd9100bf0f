"""Forecast assembly, the allocation model (build, solve, explain) and the CLI."""
