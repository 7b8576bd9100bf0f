"""Market data in: one collector per source (fetch, then parse), validation, the SQLite store, history import
and the embedded offline data."""
