"""`hashpivot feeds import`: load history from CSV files in the format of the project's market data files
(recognised by their header, plain or gzipped), through the same validation as live data.

Each row's `fetched_at_utc` is set to when the value became known (end of the interval; day-ahead prices at
their 13:30 America/Chicago publication the day before), so reading the store "as of" a past time never sees
a value before it was published.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hashpivot.feeds.base import Observation
from hashpivot.feeds.embedded import gpu_rate_table, subsidy_from_issuance
from hashpivot.feeds.store import Store
from hashpivot.feeds.validate import Rejected, validate
from hashpivot.models.calendar import dam_published_at_utc
from hashpivot.models.clock import now_utc
from hashpivot.models.errors import DataError

log = logging.getLogger(__name__)

HEADERS = {
    "power": ["interval_start_utc", "settlement_point", "rt_price_usd_per_mwh", "da_price_usd_per_mwh"],
    "btc": ["interval_start_utc", "btc_usd"],
    "network": ["date_utc", "btc_usd", "difficulty", "hashrate_th_s", "blocks", "fees_btc_per_block", "issuance_btc"],
    "gpu": ["timestamp_utc", "gpu_model", "source", "usd_per_gpu_hour", "series", "index_code", "index_status"],
    "ancillary": ["interval_start_utc", "regup_usd_per_mw_hour", "regdn_usd_per_mw_hour", "rrs_usd_per_mw_hour",
                  "nspin_usd_per_mw_hour", "ecrs_usd_per_mw_hour"],
}


@dataclass
class ImportResult:
    path: Path
    kind: str
    rows: int
    series: list[str]


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            return [c.strip() for c in fh.readline().strip().split(",")]
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def recognise(path: Path) -> str:
    header = _header(path)
    for kind, columns in HEADERS.items():
        if header == columns:
            return kind
    known = "; ".join(f"{k}: {','.join(c)}" for k, c in HEADERS.items())
    raise DataError(f"{path}: unrecognised header {','.join(header)!r}; expected one of: {known}")


def _obs(series: str, starts: pd.DatetimeIndex, values, unit: str, source: str, known: pd.DatetimeIndex) -> list[Observation]:
    return [
        Observation(series, s.to_pydatetime(), float(v), unit, source, k.to_pydatetime())
        for s, v, k in zip(starts, values, known)
        if pd.notna(v)
    ]


def rows_from_file(path: Path) -> tuple[str, list[Observation]]:
    """Parse one history file into observations (pure apart from reading the file)."""
    kind = recognise(path)
    df = pd.read_csv(path)
    source = f"import:{path.name}"
    rows: list[Observation] = []
    hour = pd.Timedelta(hours=1)
    if kind == "power":
        df["t"] = pd.to_datetime(df["interval_start_utc"], utc=True)
        for point, g in df.groupby("settlement_point", sort=True):
            idx = pd.DatetimeIndex(g["t"])
            rows += _obs(f"power_rt_usd_per_mwh.{point}", idx, g["rt_price_usd_per_mwh"], "USD/MWh", source, idx + hour)
            rows += _obs(f"power_da_usd_per_mwh.{point}", idx, g["da_price_usd_per_mwh"], "USD/MWh", source, dam_published_at_utc(idx))
    elif kind == "btc":
        idx = pd.DatetimeIndex(pd.to_datetime(df["interval_start_utc"], utc=True))
        rows += _obs("btc_usd", idx, df["btc_usd"], "USD/BTC", source, idx + hour)
    elif kind == "network":
        idx = pd.DatetimeIndex(pd.to_datetime(df["date_utc"], utc=True))
        known = idx + pd.Timedelta(days=1)
        subsidy = subsidy_from_issuance(df["issuance_btc"], df["blocks"])
        rows += _obs("difficulty", idx, df["difficulty"], "1", source, known)
        rows += _obs("hashrate_th_s", idx, df["hashrate_th_s"], "TH/s", source, known)
        rows += _obs("fees_btc_per_block", idx, df["fees_btc_per_block"], "BTC", source, known)
        rows += _obs("subsidy_btc", idx, subsidy, "BTC", source, known)
    elif kind == "gpu":
        rates = gpu_rate_table(df.assign(timestamp_utc=pd.to_datetime(df["timestamp_utc"], utc=True)))
        for model in rates.columns:
            col = rates[model].dropna()
            idx = pd.DatetimeIndex(col.index)
            rows += _obs(f"gpu_rate_usd_per_gpu_hour.{model}", idx, col, "USD/GPU-h", source, idx)
    elif kind == "ancillary":
        idx = pd.DatetimeIndex(pd.to_datetime(df["interval_start_utc"], utc=True))
        for column in HEADERS["ancillary"][1:]:
            product = column.removesuffix("_usd_per_mw_hour")
            rows += _obs(f"ancillary_usd_per_mw_hour.{product}", idx, df[column], "USD/MW-h", source, dam_published_at_utc(idx))
    return kind, rows


def import_files(paths: list[Path], store: Store) -> list[ImportResult]:
    """Validate and store every file; a file that fails validation is rejected whole (quarantined), others go on."""
    results = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: no such file")
        kind, rows = rows_from_file(path)
        by_series: dict[str, list[Observation]] = {}
        for r in rows:
            by_series.setdefault(r.series, []).append(r)
        try:
            for series_rows in by_series.values():
                validate(sorted(series_rows, key=lambda r: r.interval_start_utc))
        except Rejected as exc:
            store.quarantine(f"import:{kind}", f"import:{path.name}", now_utc(), exc.reason, None)
            raise DataError(f"{path}: rejected, nothing imported: {exc.reason}") from None
        store.upsert(rows)
        log.info("imported file=%s kind=%s rows=%d", path, kind, len(rows))
        results.append(ImportResult(path, kind, len(rows), sorted(by_series)))
    return results
