"""What-ifs, sweeps and backtests over the one decision pipeline, their charts and the local/Dask runner."""
