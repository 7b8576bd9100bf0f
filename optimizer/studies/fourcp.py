"""4CP in backtests (pure): the realised charge's inputs from the official intervals, how each strategy fared
at the peaks, and the call-day rule of the `strike-4cp` baseline.

The realised charge itself is not computed here: the realised problem carries p = 1 on every hour holding an
official 4CP interval of the period, so the one profit evaluation (`schedule.PROFIT_TERMS`, `four_cp_cost_usd`)
charges rate/4 x the schedule's site-meter kW in each of those hours, for every strategy alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hashpivot.models.calendar import MARKET_TZ
from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.schedule import Schedule, site_kw

# strike-4cp: the window operators curtail on call days (15:45-17:45 Central held 63 of 64 peaks 2010-2025 in
# one public analysis) as the hours that overlap it, and the call-day threshold (README: 4CP)
WINDOW_START_MINUTES, WINDOW_END_MINUTES = 15 * 60 + 45, 17 * 60 + 45
CALL_THRESHOLD = 0.96
AVOIDED_FRACTION = 0.10  # a peak is avoided when the site ran at most 10 % of its typical load through it
PRICE_REACH_HOURS = 4  # 90 MW down and up again at 25 MW per step takes about four hours each way


def peak_hours(intervals: pd.DataFrame, grid: pd.DatetimeIndex, months: list[int] | tuple[int, ...]) -> np.ndarray:
    """Indices into the hourly `grid` of the hours holding an official 4CP interval (in `months`)."""
    if intervals is None or intervals.empty:
        return np.array([], dtype=int)
    starts = pd.DatetimeIndex(pd.to_datetime(intervals["interval_start_utc"], utc=True))
    starts = starts[starts.month.isin(list(months))] if len(starts) else starts
    hours = starts.floor("h")
    position = pd.DatetimeIndex(grid).get_indexer(hours)
    return np.sort(position[position >= 0])


def months_without_interval(intervals: pd.DataFrame, grid: pd.DatetimeIndex, months) -> list[str]:
    """The 4CP months (`YYYY-MM`, Central) that `grid` reaches but `intervals` has no official interval for:
    their realised charge cannot be computed (ERCOT publishes the four after the summer)."""
    local = pd.DatetimeIndex(grid).tz_convert(MARKET_TZ)
    reached = sorted({(t.year, t.month) for t in local if t.month in set(months)})
    known = set() if intervals is None or intervals.empty else {
        (int(y), int(m)) for y, m in zip(intervals["year"], intervals["month"])}
    return [f"{y}-{m:02d}" for y, m in reached if (y, m) not in known]


def realised_probability(intervals: pd.DataFrame, grid: pd.DatetimeIndex, months) -> np.ndarray:
    """p = 1 on each hour of `grid` that holds an official 4CP interval, 0 elsewhere (what perfect foresight
    knows, and what the realised charge of every strategy is computed from)."""
    p = np.zeros(len(grid))
    p[peak_hours(intervals, grid, months)] = 1.0
    return p


def window_hour(interval_start_utc: pd.Timestamp) -> bool:
    """Whether the hour starting at `interval_start_utc` overlaps the 15:45-17:45 Central call window."""
    local = pd.Timestamp(interval_start_utc).tz_convert(MARKET_TZ)
    start = local.hour * 60 + local.minute
    return start < WINDOW_END_MINUTES and start + 60 > WINDOW_START_MINUTES


def is_call_day(load_mw: pd.Series, day_start_utc: pd.Timestamp, months, threshold: float = CALL_THRESHOLD,
                load_interval: pd.Timedelta = pd.Timedelta(hours=1)) -> bool:
    """The strike-4cp call rule, decided at the start of the Central day from load of hours ended by then:
    a day of a 4CP month is a call day if yesterday's peak hourly load was at least `threshold` x the month's
    maximum so far (yesterday included), and always on the month's first day (no maximum yet). Persistence
    stands in for ERCOT's load forecast, of which no archive exists for backtests."""
    day = pd.Timestamp(day_start_utc).tz_convert(MARKET_TZ).normalize()
    if day.month not in months:
        return False
    known = load_mw[load_mw.index + load_interval <= pd.Timestamp(day_start_utc)].dropna()
    local = known.index.tz_convert(MARKET_TZ)
    month_to_date = known[(local >= day.replace(day=1)) & (local < day)]
    if month_to_date.empty:
        return True
    yesterday = known[(local >= day - pd.Timedelta(days=1)) & (local < day)]
    if yesterday.empty:
        return True
    return float(yesterday.max()) >= threshold * float(month_to_date.max())


def peak_outcomes(problem: Problem, schedule: Schedule, intervals: pd.DataFrame, grid: pd.DatetimeIndex,
                  months) -> dict[str, float]:
    """Peaks in the period, peaks avoided (site-meter kW in the peak hour <= 10 % of the schedule's median
    site kW) and hours curtailed for 4CP: hours of a 4CP month in which some ASIC pool ran under half its
    available units although every realised price within `PRICE_REACH_HOURS` of the hour (the time a full
    ramp down and up takes around a spike) was below that pool's breakeven: curtailment no price explains."""
    site = site_kw(problem, schedule)
    peaks = peak_hours(intervals, grid, months)
    typical = float(np.median(site)) if len(site) else 0.0
    avoided = int(sum(site[t] <= AVOIDED_FRACTION * typical for t in peaks))
    in_months = pd.DatetimeIndex(grid).tz_convert(MARKET_TZ).month.isin(list(months))
    price = pd.Series(problem.price_usd_per_mwh + problem.adder_usd_per_mwh)
    nearby_max = price.rolling(2 * PRICE_REACH_HOURS + 1, center=True, min_periods=1).max().to_numpy()
    curtailed = np.zeros(problem.steps, dtype=bool)
    for pool, units, revenue in zip(problem.asic, schedule.asic_units, problem.asic_revenue_usd()):
        if not pool.units_available:
            continue
        k = int(np.argmax(pool.mode_hashrate_th / pool.mode_power_kw))
        breakeven = revenue[k] / (pool.mode_power_kw[k] * problem.step_hours / 1000.0) / problem.pue
        low = units.sum(axis=0) < 0.5 * pool.units_available
        curtailed |= low & (nearby_max < breakeven)
    return {"four_cp_peaks": len(peaks), "four_cp_peaks_avoided": int(avoided),
            "four_cp_hours_curtailed": int((curtailed & in_months).sum())}
