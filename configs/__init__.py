"""Example site configurations (shipped so the CLI has a default site from any directory)."""
