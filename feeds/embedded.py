"""Read market history from CSV files laid out like the project's shared data (the embedded slice by default).

A directory holds `ercot_hub_prices_hourly.csv`, `btc_usd_hourly.csv`, `bitcoin_network_daily.csv`,
`gpu_rental_rates.csv` and optionally `ercot_ancillary_prices_hourly.csv`, each plain or gzipped.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hashpivot.models.errors import DataError
from hashpivot.models.hashprice import subsidy_schedule_btc
from hashpivot.models.market import MarketData

POWER_FILE = "ercot_hub_prices_hourly.csv"
BTC_FILE = "btc_usd_hourly.csv"
NETWORK_FILE = "bitcoin_network_daily.csv"
GPU_FILE = "gpu_rental_rates.csv"
ANCILLARY_FILE = "ercot_ancillary_prices_hourly.csv"



def embedded_data_dir() -> Path:
    """Folder of the market data shipped inside the package."""
    return Path(str(resources.files("hashpivot.feeds") / "data"))


def _find(directory: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.exists():
            return candidate
    if required:
        raise DataError(f"{directory}: missing {name} (or {name}.gz)")
    return None


def _read(path: Path, required_columns: set[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read CSV: {exc}") from None
    missing = required_columns - set(df.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}; found {list(df.columns)}")
    return df


def _utc_index(values: pd.Series, path: Path) -> pd.DatetimeIndex:
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True), name="interval_start_utc")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: bad timestamps: {exc}") from None


def subsidy_from_issuance(issuance_btc: pd.Series, blocks: pd.Series) -> pd.Series:
    """Per-block subsidy snapped to the halving schedule (the day's issuance / blocks, e.g. 6.25 or 3.125)."""
    raw = (issuance_btc / blocks.replace(0, np.nan)).to_numpy()
    schedule = np.array(subsidy_schedule_btc())
    snapped = schedule[np.abs(raw[:, None] - schedule[None, :]).argmin(axis=1)]
    return pd.Series(snapped, index=issuance_btc.index)


def gpu_rate_table(df: pd.DataFrame) -> pd.DataFrame:
    """Monthly USD/GPU-hour per model: the published index where it exists, else the median of that month's
    provider list prices. `df` has timestamp_utc (tz-aware), gpu_model, usd_per_gpu_hour, series."""
    index_rows = df[df["series"] == "index_value"]
    provider_median = df[df["series"] != "index_value"].pivot_table(
        index="timestamp_utc", columns="gpu_model", values="usd_per_gpu_hour", aggfunc="median"
    )
    index_values = index_rows.pivot_table(index="timestamp_utc", columns="gpu_model", values="usd_per_gpu_hour", aggfunc="last")
    rates = index_values.combine_first(provider_median).sort_index()
    rates.index.name = "interval_start_utc"
    return rates


def load_market_data(directory: str | Path | None = None, settlement_point: str = "HB_WEST") -> MarketData:
    """Load every series from `directory` (default: the embedded slice) for one ERCOT settlement point."""
    directory = Path(directory) if directory is not None else embedded_data_dir()
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory of market data CSVs")

    path = _find(directory, POWER_FILE)
    df = _read(path, {"interval_start_utc", "settlement_point", "rt_price_usd_per_mwh", "da_price_usd_per_mwh"})
    available = sorted(df["settlement_point"].unique())
    df = df[df["settlement_point"] == settlement_point]
    if df.empty:
        raise DataError(f"{path}: no prices for settlement point {settlement_point!r}; available: {', '.join(available)}")
    power = df.set_index(_utc_index(df["interval_start_utc"], path))[["rt_price_usd_per_mwh", "da_price_usd_per_mwh"]]
    power = power[~power.index.duplicated(keep="last")].sort_index()

    path = _find(directory, BTC_FILE)
    df = _read(path, {"interval_start_utc", "btc_usd"})
    btc = df.set_index(_utc_index(df["interval_start_utc"], path))[["btc_usd"]].sort_index()

    path = _find(directory, NETWORK_FILE)
    df = _read(path, {"date_utc", "difficulty", "fees_btc_per_block", "issuance_btc", "blocks"})
    network = pd.DataFrame(
        {
            "difficulty": df["difficulty"].astype(float).to_numpy(),
            "fees_btc_per_block": df["fees_btc_per_block"].astype(float).to_numpy(),
            "subsidy_btc": subsidy_from_issuance(df["issuance_btc"], df["blocks"]).to_numpy(),
        },
        index=_utc_index(df["date_utc"], path),
    ).sort_index()

    path = _find(directory, GPU_FILE)
    df = _read(path, {"timestamp_utc", "gpu_model", "usd_per_gpu_hour", "series"})
    df = df.assign(timestamp_utc=_utc_index(df["timestamp_utc"], path))
    gpu_rates = gpu_rate_table(df)

    path = _find(directory, ANCILLARY_FILE, required=False)
    if path is not None:
        df = _read(path, {"interval_start_utc"})
        ancillary = df.set_index(_utc_index(df["interval_start_utc"], path)).drop(columns=["interval_start_utc"]).sort_index()
    else:
        ancillary = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="interval_start_utc"))

    return MarketData(
        settlement_point=settlement_point,
        power=power,
        btc=btc,
        network=network,
        gpu_rates=gpu_rates,
        ancillary=ancillary,
        source=str(directory),
    )
