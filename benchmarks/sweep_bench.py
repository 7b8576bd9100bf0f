"""Benchmark: sweep points on the example site, series-only (one persistent LP per process, numbers moved in
place) against config points (each rebuilt), and one CLI sweep end to end.

    python -m benchmarks.sweep_bench
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.config import config_from_raw, load_raw_config
from hashpivot.optimizer.forecast import build_forecast
from hashpivot.optimizer.studies.sweep import parse_param, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def per_point_ms(raw: dict, forecast, spec: str) -> tuple[float, int]:
    param = parse_param(spec)
    t0 = time.perf_counter()
    run_sweep(raw, forecast, [param])
    return (time.perf_counter() - t0) / len(param.values) * 1000.0, len(param.values)


def main() -> None:
    raw, label = load_raw_config(ROOT / "configs" / "site.toml", [])
    cfg = config_from_raw(raw, label)
    forecast = build_forecast(cfg, load_market_data(None, cfg.site.settlement_point))
    run_sweep(raw, forecast, [parse_param("btc_usd=10000,20000")])  # warm: imports, first build
    series, n = per_point_ms(raw, forecast, "btc_usd=10000:150000:1000")
    rebuilt, m = per_point_ms(raw, forecast, "set:site.interconnect_cap_kw=80000:94000:100")
    print(f"series-only points: {series:.1f} ms per point ({n} points, persistent LP)")
    print(f"config points:      {rebuilt:.1f} ms per point ({m} points, each rebuilt)")
    print(f"persistent vs rebuild: {rebuilt / series:.1f}x faster per point")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "sweep", "--param", "btc_usd=10000:150000:1000",
                        "--out", out], check=True, capture_output=True)
        print(f"CLI `hashpivot sweep --param btc_usd=10000:150000:1000` end to end, charts included: "
              f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
