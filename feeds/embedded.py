"""Read market history from CSV files laid out like the project's shared data (the embedded slice by default).

A directory holds `ercot_hub_prices_hourly.csv`, `btc_usd_hourly.csv`, `bitcoin_network_daily.csv`,
`gpu_rental_rates.csv` and optionally `ercot_ancillary_prices_hourly.csv`, `ercot_native_load_hourly.csv` and
`ercot_4cp_intervals.csv`, each plain or gzipped.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hashpivot.feeds.tables import read_table
from hashpivot.models.errors import DataError
from hashpivot.models.hashprice import REFERENCE_BLOCK, subsidy_schedule_btc
from hashpivot.models.market import MarketData

POWER_FILE = "ercot_hub_prices_hourly.csv"
BTC_FILE = "btc_usd_hourly.csv"
NETWORK_FILE = "bitcoin_network_daily.csv"
GPU_FILE = "gpu_rental_rates.csv"
ANCILLARY_FILE = "ercot_ancillary_prices_hourly.csv"

# The columns of each file as the embedded data has them (`feeds import` recognises a file by its header)
POWER_COLUMNS = ["interval_start_utc", "settlement_point", "rt_price_usd_per_mwh", "da_price_usd_per_mwh"]
BTC_COLUMNS = ["interval_start_utc", "btc_usd"]
NETWORK_COLUMNS = ["date_utc", "btc_usd", "difficulty", "hashrate_th_s", "blocks", "fees_btc_per_block", "issuance_btc"]
GPU_COLUMNS = ["timestamp_utc", "gpu_model", "source", "usd_per_gpu_hour", "series", "index_code", "index_status"]
LOAD_FILE = "ercot_native_load_hourly.csv"
FOUR_CP_FILE = "ercot_4cp_intervals.csv"
LOAD_COLUMNS = ["interval_start_utc", "interval_start_local", "hour_ending_label", "dst_repeat_hour", "COAST", "EAST",
                "FWEST", "NORTH", "NCENT", "SOUTH", "SCENT", "WEST", "ERCOT"]
FOUR_CP_COLUMNS = ["year", "month", "interval_start_local", "interval_end_local", "weekday", "cp_mw_15min", "source_kind"]
ERCOT_TZ = "America/Chicago"
ANCILLARY_COLUMNS = ["interval_start_utc", "regup_usd_per_mw_hour", "regdn_usd_per_mw_hour", "rrs_usd_per_mw_hour",
                     "nspin_usd_per_mw_hour", "ecrs_usd_per_mw_hour"]



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


def _index(times: pd.Series) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(times, name="interval_start_utc")


def subsidy_from_issuance(issuance_btc: pd.Series, blocks: pd.Series) -> pd.Series:
    """Per-block subsidy snapped to the halving schedule (the day's issuance / blocks, e.g. 6.25 or 3.125)."""
    raw = (issuance_btc / blocks.replace(0, np.nan)).to_numpy()
    schedule = np.array(subsidy_schedule_btc())
    snapped = schedule[np.abs(raw[:, None] - schedule[None, :]).argmin(axis=1)]
    return pd.Series(snapped, index=issuance_btc.index)


def heights_at_day_start(blocks: pd.Series) -> pd.Series:
    """Block height at the start of each UTC day, counted in the days' block counts from `REFERENCE_BLOCK`
    (NaN when the data does not reach the reference day). Lets subsidies follow the height within a day, so
    the hours after a halving are valued at the new subsidy."""
    height, when = REFERENCE_BLOCK
    day = pd.Timestamp(when).floor("D")
    if day not in blocks.index:
        return pd.Series(np.nan, index=blocks.index)
    starts = blocks.cumsum() - blocks  # blocks mined since the first day's start
    fraction = (pd.Timestamp(when) - day) / pd.Timedelta(days=1)
    at_reference_day = height - blocks[day] * fraction
    return at_reference_day + (starts - starts[day])


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
    df = read_table(path, POWER_COLUMNS, numeric=POWER_COLUMNS[2:], times=POWER_COLUMNS[:1])
    available = sorted(df["settlement_point"].unique())
    df = df[df["settlement_point"] == settlement_point]
    if df.empty:
        hint = ("; other nodes: `hashpivot feeds fetch`, then --source store" if directory == embedded_data_dir()
                else "")
        raise DataError(f"site.settlement_point = {settlement_point!r}: {path} has no prices for it; it has "
                        f"{', '.join(available)}{hint}")
    power = df.set_index(_index(df["interval_start_utc"]))[["rt_price_usd_per_mwh", "da_price_usd_per_mwh"]]
    power = power[~power.index.duplicated(keep="last")].sort_index()

    path = _find(directory, BTC_FILE)
    df = read_table(path, BTC_COLUMNS, numeric=["btc_usd"], times=["interval_start_utc"])
    btc = df.set_index(_index(df["interval_start_utc"]))[["btc_usd"]].sort_index()

    path = _find(directory, NETWORK_FILE)
    df = read_table(path, {"date_utc", "difficulty", "fees_btc_per_block", "issuance_btc", "blocks"},
                    numeric=NETWORK_COLUMNS[1:], times=["date_utc"])
    network = pd.DataFrame(
        {
            "difficulty": df["difficulty"].to_numpy(),
            "fees_btc_per_block": df["fees_btc_per_block"].to_numpy(),
            "subsidy_btc": subsidy_from_issuance(df["issuance_btc"], df["blocks"]).to_numpy(),
            "blocks": df["blocks"].to_numpy(),
        },
        index=_index(df["date_utc"]),
    ).sort_index()
    network["height_at_day_start"] = heights_at_day_start(network["blocks"])

    path = _find(directory, GPU_FILE)
    df = read_table(path, {"timestamp_utc", "gpu_model", "usd_per_gpu_hour", "series"}, numeric=["usd_per_gpu_hour"],
                    times=["timestamp_utc"])
    gpu_rates = gpu_rate_table(df)

    path = _find(directory, ANCILLARY_FILE, required=False)
    if path is not None:
        df = read_table(path, ANCILLARY_COLUMNS[:1], numeric=ANCILLARY_COLUMNS[1:], times=ANCILLARY_COLUMNS[:1])
        ancillary = df.set_index(_index(df["interval_start_utc"])).drop(columns=["interval_start_utc"]).sort_index()
    else:
        ancillary = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="interval_start_utc"))

    path = _find(directory, LOAD_FILE, required=False)
    load = MarketData.__dataclass_fields__["load"].default_factory()
    if path is not None:
        load = read_load(path)

    path = _find(directory, FOUR_CP_FILE, required=False)
    four_cp = MarketData.__dataclass_fields__["four_cp_intervals"].default_factory()
    if path is not None:
        four_cp = read_four_cp(path)

    return MarketData(
        settlement_point=settlement_point,
        power=power,
        btc=btc,
        network=network,
        gpu_rates=gpu_rates,
        ancillary=ancillary,
        source=str(directory),
        load=load,
        four_cp_intervals=four_cp,
    )


def read_load(path: Path) -> pd.DataFrame:
    """ERCOT native load (`ERCOT`, the system total, MW) as `system_load_mw` by UTC hour start."""
    df = read_table(path, {"interval_start_utc", "ERCOT"}, numeric=["ERCOT"], times=["interval_start_utc"])
    load = df.set_index(_index(df["interval_start_utc"]))[["ERCOT"]].rename(columns={"ERCOT": "system_load_mw"})
    return load[~load.index.duplicated(keep="last")].sort_index()


def read_four_cp(path: Path) -> pd.DataFrame:
    """Official 4CP intervals: `year`, `month`, `interval_start_utc` (from Central prevailing time), `cp_mw`."""
    columns = ["year", "month", "interval_start_local", "cp_mw_15min"]
    df = read_table(path, set(columns), numeric=["year", "month", "cp_mw_15min"])
    for column in columns:  # an official interval with a blank cell is damaged, never a missing value to skip
        blank = df[column].isna() | (df[column].astype(str).str.strip() == "")
        if blank.any():
            raise DataError(f"{path}: line {int(blank.to_numpy().argmax()) + 2}, column {column}: empty (every "
                            "official 4CP interval needs its year, month, start and MW)")
    local = pd.to_datetime(df["interval_start_local"], format="%Y-%m-%d %H:%M", errors="coerce")
    bad = df.index[local.isna()]
    if len(bad):
        raise DataError(f"{path}: row {int(bad[0]) + 2}, column interval_start_local: expected YYYY-MM-DD HH:MM "
                        f"(Central time), got {df['interval_start_local'].iloc[int(bad[0])]!r}")
    start = local.dt.tz_localize(ERCOT_TZ, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return pd.DataFrame({"year": df["year"].astype(int).to_numpy(), "month": df["month"].astype(int).to_numpy(),
                         "interval_start_utc": start.to_numpy(), "cp_mw": df["cp_mw_15min"].to_numpy()}
                        ).sort_values("interval_start_utc").reset_index(drop=True)
