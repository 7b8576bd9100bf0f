"""Domain types, hardware catalogue and site-config loading for hashpivot (no I/O beyond reading config)."""
