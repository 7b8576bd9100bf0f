"""`hashpivot feeds import`: load history from CSV files in the format of the project's market data files
(recognised by their header, plain or gzipped), through the same validation as live data.

Each row's `fetched_at_utc` is set to when the value became known (end of the interval; day-ahead prices at
their 13:30 America/Chicago publication the day before; a 4CP interval when its month ends), so reading the store "as of" a past time never sees
a value before it was published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hashpivot.feeds.base import Observation
from hashpivot.feeds.collect import HASHPRICE_INPUTS, derive_hashprice
from hashpivot.feeds.embedded import (
    ANCILLARY_COLUMNS,
    BTC_COLUMNS,
    ERCOT_TZ,
    FOUR_CP_COLUMNS,
    GPU_COLUMNS,
    LOAD_COLUMNS,
    NETWORK_COLUMNS,
    POWER_COLUMNS,
    gpu_rate_table,
    read_four_cp,
    subsidy_from_issuance,
)
from hashpivot.feeds.store import Store
from hashpivot.feeds.tables import convert_columns, read_table
from hashpivot.feeds.validate import Rejected, validate
from hashpivot.models.calendar import dam_published_at_utc
from hashpivot.models.clock import now_utc
from hashpivot.models.errors import DataError

log = logging.getLogger(__name__)

HEADERS = {"power": POWER_COLUMNS, "btc": BTC_COLUMNS, "network": NETWORK_COLUMNS, "gpu": GPU_COLUMNS,
           "ancillary": ANCILLARY_COLUMNS, "load": LOAD_COLUMNS, "four_cp": FOUR_CP_COLUMNS}
TIME_COLUMN = {"power": "interval_start_utc", "btc": "interval_start_utc", "network": "date_utc", "gpu": "timestamp_utc",
               "ancillary": "interval_start_utc", "load": "interval_start_utc"}
NUMERIC = {"power": POWER_COLUMNS[2:], "btc": BTC_COLUMNS[1:], "network": NETWORK_COLUMNS[1:], "gpu": ["usd_per_gpu_hour"],
           "ancillary": ANCILLARY_COLUMNS[1:], "load": LOAD_COLUMNS[4:]}


@dataclass
class ImportResult:
    path: Path
    kind: str
    rows: int
    series: list[str]


def rows_from_file(path: Path) -> tuple[str, list[Observation]]:
    """Parse one history file into observations (pure apart from reading the file); DataError naming the
    file, line and column of anything damaged, or the headers it could have had."""
    path = Path(path)
    df = read_table(path, [])
    header = df.columns.tolist()
    kind = next((k for k, columns in HEADERS.items() if header == columns), None)
    if kind is None:
        known = "; ".join(f"{k}: {','.join(c)}" for k, c in HEADERS.items())
        raise DataError(f"{path}: unrecognised header {','.join(header)!r}; expected one of: {known}")
    if kind == "four_cp":  # Central prevailing time, read the way --data DIR reads it
        return kind, _four_cp_rows(path, f"import:{path.name}")
    df = convert_columns(df, path, numeric=NUMERIC[kind], times=[TIME_COLUMN[kind]])
    return kind, _rows(kind, df, f"import:{path.name}")


def _four_cp_rows(path: Path, source: str) -> list[Observation]:
    """One `ercot_4cp_peak_mw` row per official interval, at its UTC start. Known from the first instant of
    the next month (Central): the month's highest 15-minute load is settled once the month is over (ERCOT
    confirms the four in NP9-83-M after the summer)."""
    df = read_four_cp(path)
    if df.empty:  # a header alone: nothing to import, as for the other kinds
        return []
    if df["interval_start_utc"].isna().any():
        row = int(df["interval_start_utc"].isna().to_numpy().argmax())
        raise DataError(f"{path}: interval {int(df['year'][row])}-{int(df['month'][row]):02d}: its Central start time "
                        "does not exist or is ambiguous (a DST change)")
    starts = pd.DatetimeIndex(df["interval_start_utc"])
    month_start = starts.tz_convert(ERCOT_TZ).tz_localize(None).to_period("M").to_timestamp()
    known = (month_start + pd.offsets.MonthBegin(1)).tz_localize(ERCOT_TZ).tz_convert("UTC")
    return _obs("ercot_4cp_peak_mw", starts, df["cp_mw"], "MW", source, known)


def _obs(series: str, starts: pd.DatetimeIndex, values, unit: str, source: str, known: pd.DatetimeIndex) -> list[Observation]:
    return [
        Observation(series, s.to_pydatetime(), float(v), unit, source, k.to_pydatetime())
        for s, v, k in zip(starts, values, known)
        if pd.notna(v)
    ]


def _rows(kind: str, df: pd.DataFrame, source: str) -> list[Observation]:
    rows: list[Observation] = []
    hour = pd.Timedelta(hours=1)
    if kind == "power":
        for point, g in df.groupby("settlement_point", sort=True):
            idx = pd.DatetimeIndex(g["interval_start_utc"])
            rows += _obs(f"power_rt_usd_per_mwh.{point}", idx, g["rt_price_usd_per_mwh"], "USD/MWh", source, idx + hour)
            rows += _obs(f"power_da_usd_per_mwh.{point}", idx, g["da_price_usd_per_mwh"], "USD/MWh", source, dam_published_at_utc(idx))
    elif kind == "btc":
        idx = pd.DatetimeIndex(df["interval_start_utc"])
        rows += _obs("btc_usd", idx, df["btc_usd"], "USD/BTC", source, idx + hour)
    elif kind == "network":
        idx = pd.DatetimeIndex(df["date_utc"])
        known = idx + pd.Timedelta(days=1)
        subsidy = subsidy_from_issuance(df["issuance_btc"], df["blocks"])
        rows += _obs("difficulty", idx, df["difficulty"], "1", source, known)
        rows += _obs("hashrate_th_s", idx, df["hashrate_th_s"], "TH/s", source, known)
        rows += _obs("fees_btc_per_block", idx, df["fees_btc_per_block"], "BTC", source, known)
        rows += _obs("subsidy_btc", idx, subsidy, "BTC", source, known)
    elif kind == "gpu":
        rates = gpu_rate_table(df)
        for model in rates.columns:
            col = rates[model].dropna()
            idx = pd.DatetimeIndex(col.index)
            rows += _obs(f"gpu_rate_usd_per_gpu_hour.{model}", idx, col, "USD/GPU-h", source, idx)
    elif kind == "load":  # hourly averages, known when the hour ends; only the system total is stored
        idx = pd.DatetimeIndex(df["interval_start_utc"])
        rows += _obs("ercot_system_load_mw", idx, df["ERCOT"], "MW", source, idx + hour)
    elif kind == "ancillary":
        idx = pd.DatetimeIndex(df["interval_start_utc"])
        for column in HEADERS["ancillary"][1:]:
            product = column.removesuffix("_usd_per_mw_hour")
            rows += _obs(f"ancillary_usd_per_mw_hour.{product}", idx, df[column], "USD/MW-h", source, dam_published_at_utc(idx))
    return rows


def parse_files(paths: list[Path]) -> list[tuple[Path, str, list[Observation]]]:
    """Read and parse every file before anything is stored: one unreadable or unrecognised file stops the
    import with nothing written."""
    return [(Path(path), *rows_from_file(Path(path))) for path in paths]


def import_files(paths: list[Path], store: Store) -> list[ImportResult]:
    """Parse and validate every file, then store them all; a file whose rows fail validation is quarantined
    and the import stops with nothing imported."""
    return store_files(parse_files(paths), store)


def store_files(parsed: list[tuple[Path, str, list[Observation]]], store: Store) -> list[ImportResult]:
    results = []
    for path, kind, rows in parsed:
        by_series: dict[str, list[Observation]] = {}
        for r in rows:
            by_series.setdefault(r.series, []).append(r)
        try:
            for series_rows in by_series.values():
                validate(sorted(series_rows, key=lambda r: r.interval_start_utc))
        except Rejected as exc:
            store.quarantine(f"import:{kind}", f"import:{path.name}", now_utc(), exc.reason, None)
            raise DataError(f"{path}: rejected, nothing imported: {exc.reason}") from None
        results.append(ImportResult(path, kind, len(rows), sorted(by_series)))
    store.upsert([r for _, _, rows in parsed for r in rows])
    if {"btc", "network"} & {kind for _, kind, _ in parsed} and all(store.latest(s) is not None for s in HASHPRICE_INPUTS):
        derive_hashprice(store)  # as a collection pass does, so status does not call it "never received"
    for r in results:
        log.info("imported file=%s kind=%s rows=%d", r.path, r.kind, r.rows)
    return results
