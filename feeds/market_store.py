"""Market data for a solve, read from the store as of a time (no look-ahead: only rows fetched by then).

Series keep their native resolution (15-minute or hourly prices, point BTC quotes, network snapshots); since
rows are filtered by when they were fetched (imports: when they were published), every row counts as known
from its timestamp on. ERCOT load is the exception: `MarketData.load` is hourly (15-minute demand averaged),
and the load forecast is the issue known at `as_of`, read with the values later issues replaced.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pandas as pd

from hashpivot.feeds.embedded import ERCOT_TZ
from hashpivot.feeds.store import Store
from hashpivot.models.errors import DataError
from hashpivot.models.market import MarketData
from hashpivot.models.series import staleness

log = logging.getLogger(__name__)

# A decision as of a time needs at most the staleness limit of the slowest series (GPU rate cards, 62 days):
# reading only this window keeps each of the daemon's decisions from growing with months of stored history.
LOOKBACK = timedelta(days=70)


def _series(store: Store, name: str, as_of: datetime | None) -> pd.Series:
    df = store.history(name, since=None if as_of is None else as_of - LOOKBACK, as_of=as_of)
    df = df[df["series"] == name] if not df.empty else df
    if df.empty:  # nothing fetched by `as_of`: an empty series that still has a time index
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"), name=name)
    return pd.Series(df["value"].to_numpy(), index=pd.DatetimeIndex(df["interval_start_utc"]), name=name).sort_index()


def latest_covered_time(store: Store, series: list[str], settlement_point: str) -> datetime:
    """What a solve from the store decides at when no time is given (like the embedded data's default): the
    latest time by which both the real-time price and the BTC price are known, and never before every one of
    `series` was first fetched. Every one of `series` must
    have something stored (the forecast then checks each against its staleness limit); DataError naming each
    series and its last interval otherwise."""
    known = {s: store.last_known(s) for s in series}
    missing = [s for s, k in known.items() if k is None]
    if missing:
        have = "; ".join(f"{s} last {k[0]:%Y-%m-%dT%H:%MZ}" for s, k in known.items() if k is not None) or "nothing"
        raise DataError(f"store {store.path}: nothing stored for {', '.join(missing)} (stored: {have}); "
                        "`hashpivot feeds fetch` or `feeds import` fills it")
    fast = [s for s in (f"power_rt_usd_per_mwh.{settlement_point}", "btc_usd") if s in known]
    # never before every required series has a value: a first fetch pass that crossed a second boundary left
    # the ones fetched later unknown at the earlier ones' time ("the clock moved back" for a real-time price,
    # "no rows" for a GPU rate fetched a second after the BTC price)
    return max(min(known[s][1] for s in fast), max(store.first_known_at(s) for s in series))


def market_from_store(store: Store, settlement_point: str, as_of: datetime | None = None) -> MarketData:
    rt = _series(store, f"power_rt_usd_per_mwh.{settlement_point}", as_of)
    if rt.empty:
        known = store.last_known(f"power_rt_usd_per_mwh.{settlement_point}")
        if known is not None and as_of is not None and known[1] > as_of:
            raise DataError(
                f"store {store.path}: the real-time prices for {settlement_point} were all fetched after "
                f"{as_of:%Y-%m-%dT%H:%M:%SZ} (the latest at {known[1]:%Y-%m-%dT%H:%M:%SZ}): the clock moved back")
        raise DataError(
            f"store {store.path}: no real-time prices for {settlement_point}; run `hashpivot feeds fetch` or "
            "`hashpivot feeds import` first"
        )
    da = _series(store, f"power_da_usd_per_mwh.{settlement_point}", as_of)
    power = pd.DataFrame({"rt_price_usd_per_mwh": rt, "da_price_usd_per_mwh": da if not da.empty else pd.Series(dtype=float)})
    btc = _series(store, "btc_usd", as_of).to_frame("btc_usd")
    network = pd.DataFrame({col: _series(store, col, as_of) for col in ("difficulty", "fees_btc_per_block", "subsidy_btc")}).dropna()
    gpu = {}
    for name in store.series_names():
        if name.startswith("gpu_rate_usd_per_gpu_hour."):
            gpu[name.split(".", 1)[1]] = _series(store, name, as_of)
    gpu_rates = pd.DataFrame(gpu) if gpu else pd.DataFrame()
    anc = {}
    for name in store.series_names():
        if name.startswith("ancillary_usd_per_mw_hour."):
            anc[f"{name.split('.', 1)[1]}_usd_per_mw_hour"] = _series(store, name, as_of)
    ancillary = pd.DataFrame(anc) if anc else pd.DataFrame()
    ambient = _series(store, "ambient_temp_c", as_of)
    forecast = load_forecast(store, as_of)
    zero = pd.Timedelta(0)  # rows are filtered by fetch time above: each is known from its timestamp on
    return MarketData(settlement_point, power, btc, network, gpu_rates, ancillary, source=f"store:{store.path}",
                      power_interval=zero, btc_interval=zero, network_interval=zero,
                      ambient_temp_c=ambient if not ambient.empty else None,
                      load=system_load(store, as_of), load_interval=zero,
                      load_forecast_mw=forecast.rename("load_forecast_mw") if not forecast.empty else None,
                      four_cp_intervals=four_cp_intervals(store, as_of))


def load_forecast(store: Store, as_of: datetime | None) -> pd.Series:
    """ERCOT's load forecast known by `as_of` (`MarketData.load_forecast_mw`), empty when none is, or when the
    newest issue fetched by then is older than the series' staleness limit (a dead feed's last issue is not
    presented as today's forecast; logged)."""
    series = "ercot_load_forecast_mw"
    known = store.as_known(series, as_of, None if as_of is None else as_of - LOOKBACK)
    empty = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    if known.empty:
        return empty
    newest = known["fetched_at_utc"].max()
    if as_of is not None and as_of - newest > staleness(series):
        log.warning("load forecast not used: the newest issue was fetched at %s, more than %s before %s",
                    f"{newest:%Y-%m-%dT%H:%MZ}", staleness(series), f"{as_of:%Y-%m-%dT%H:%MZ}")
        return empty
    return known["value"]


def hourly_load(hourly: pd.Series, quarter_hourly: pd.Series) -> pd.DataFrame:
    """`system_load_mw` by UTC hour start (pure): the hourly actuals, and for hours they do not cover yet the
    mean of the 15-minute demand where all four quarters are known (a partial hour would be a biased mean)."""
    if quarter_hourly.empty:
        means = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    else:
        grouped = quarter_hourly.groupby(quarter_hourly.index.floor("h"))
        counts = grouped.count()
        means = grouped.mean()[counts == 4]
    load = hourly.combine_first(means) if not hourly.empty else means
    out = pd.DataFrame({"system_load_mw": load.astype(float)})
    out.index = pd.DatetimeIndex(out.index, name="interval_start_utc")
    return out.sort_index()


def system_load(store: Store, as_of: datetime | None) -> pd.DataFrame:
    """ERCOT system load known by `as_of` (`MarketData.load`): hourly actuals filled with 15-minute means."""
    return hourly_load(_series(store, "ercot_system_load_mw", as_of), _series(store, "ercot_system_load_15min_mw", as_of))


def four_cp_intervals(store: Store, as_of: datetime | None) -> pd.DataFrame:
    """Official 4CP intervals known by `as_of` (`MarketData.four_cp_intervals`): year and month in Central
    time, the 15-minute interval's UTC start and the ERCOT load then (`cp_mw`). All of them, not a window."""
    df = store.history("ercot_4cp_peak_mw", as_of=as_of)
    df = df[df["series"] == "ercot_4cp_peak_mw"] if not df.empty else df
    if df.empty:
        return MarketData.__dataclass_fields__["four_cp_intervals"].default_factory()
    local = df["interval_start_utc"].dt.tz_convert(ERCOT_TZ)
    return pd.DataFrame({"year": local.dt.year.astype(int).to_numpy(), "month": local.dt.month.astype(int).to_numpy(),
                         "interval_start_utc": df["interval_start_utc"].to_numpy(), "cp_mw": df["value"].to_numpy()}
                        ).sort_values("interval_start_utc").reset_index(drop=True)
