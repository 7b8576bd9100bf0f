"""Market data in: the embedded offline history (now), collectors and the SQLite store (issue 4)."""
