"""Benchmark: a one-year hourly rolling backtest of the example site (24-hour horizon), local vs Dask.

    python -m benchmarks.backtest_bench                       # 2024-06-01 .. 2025-06-01
    python -m benchmarks.backtest_bench --days 30 --windows 12

Prints total time and per-step solve time for the sequential replay, then the same period cut into N windows
run locally and on a 2-worker Dask LocalCluster, with the speed-up and a check that both give the same profit.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.config import load_config
from hashpivot.optimizer.studies.backtest import run_backtest_windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2024-06-01")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    cfg, market = load_config("configs/site.toml"), load_market_data()
    start = pd.Timestamp(args.start, tz="UTC")
    end = start + pd.Timedelta(days=args.days)
    hours = args.days * 24
    print(f"example site, rolling, {start:%Y-%m-%d} .. {end:%Y-%m-%d} ({hours:,} hourly decisions, 24-step horizon)", flush=True)
    if not args.skip_sequential:
        t0 = time.perf_counter()
        seq = run_backtest_windows(cfg, market, start, end, "rolling")
        total = time.perf_counter() - t0
        print(f"sequential, local: {total:,.0f} s total, {total / hours * 1000:.0f} ms per decision "
              f"(solve {seq.totals['mean_solve_time_s'] * 1000:.0f} ms), profit {seq.totals['profit_usd']:,.0f} USD", flush=True)
    t0 = time.perf_counter()
    local = run_backtest_windows(cfg, market, start, end, "rolling", windows=args.windows)
    t_local = time.perf_counter() - t0
    print(f"{args.windows} windows, local: {t_local:,.0f} s, profit {local.totals['profit_usd']:,.0f} USD", flush=True)
    t0 = time.perf_counter()
    dask = run_backtest_windows(cfg, market, start, end, "rolling", windows=args.windows, executor="dask")
    t_dask = time.perf_counter() - t0
    same = dask.totals["profit_usd"] == local.totals["profit_usd"]
    print(f"{args.windows} windows, Dask LocalCluster (2 workers): {t_dask:,.0f} s, speed-up {t_local / t_dask:.2f}x, "
          f"identical profit: {same}", flush=True)


if __name__ == "__main__":
    main()
