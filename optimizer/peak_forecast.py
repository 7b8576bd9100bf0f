"""ERCOT 4CP peak probabilities: for each hour step, the chance it holds its month's 4CP interval (pure).

Method (a structured model with a few fitted statistics, not a classifier: 2021-2023 hold only 12 peaks):
the month's peak is the largest of a few *candidates*, each a day-level maximum of hourly ERCOT load,
- the month-to-date maximum M of the hours that have ended (known exactly),
- the rest of today, whose maximum is predicted by a stated proxy (same hour yesterday scaled by the ratio of the
  last ended hour to the same hour the day before, or ERCOT's load forecast where given) with a log-normal error
  whose bias and spread were fitted per Central hour of the decision,
- every later day of the month, predicted from the last completed day by k-day persistence (fitted log drift and
  spread per lead k) with a weekday offset (fitted),
so P(candidate wins) = integral of its density times the others' CDFs above M (candidates independent). A day's
probability is spread over its hours by the fitted hour-of-day share of the 4CP interval (the hour of the day's
highest hourly load on high-load summer days, shifted one hour earlier with the fitted share of official intervals
that fell in the hour before the hourly maximum); today's share is renormalised over the hours still to come.

Only load rows whose hour ended by `at` (index + 1 h <= at) are read. A step already in the past gets its honest
value: the probability that the hour it holds is still the month's peak (the month-to-date maximum hour, or the hour
before it, keeps P(known wins); every other past hour gets 0); in a month whose last hour has ended that is 1 on the
hourly maximum (split with the hour before it by the fitted shift share), since the hourly record decides it.
Day-ahead prices are accepted but not used by the fitted model: the embedded prices start in 2024, the validation
year, so there is no 2021-2023 history to fit their weight on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hashpivot.models.calendar import MARKET_TZ
from hashpivot.models.errors import DataError

MAX_LEAD_DAYS = 31  # persistence statistics per lead k = 1..31 days after the last completed day
HIGH_LOAD_SHARE = 0.95  # days whose peak is within 5 % of their month's maximum teach the hour-of-day share
FORECAST_SD_LOG = (0.02, 0.01)  # stated, not fitted (no archive of ERCOT forecasts): sd = a + b x days ahead
GRID_POINTS = 400
HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class PeakModel:
    """Fitted parameters (plain numbers; logs are natural logs of MW ratios).

    hour_share: P(the 4CP interval lies in Central hour h | its day is the peak day), h = 0..23.
    prev_hour_share: share of official intervals in the hour before the day's highest hourly load.
    weekday_log: log offset of a day's peak by weekday (Monday = 0), mean zero.
    persist_mu_log, persist_sd_log: log drift and spread of a day's (weekday-adjusted) peak k = 1..31 days after
        a completed day.
    today_bias_log, today_sd_log: log error of the proxy's maximum for the rest of today, by the Central hour of
        the decision (0..23).
    """

    years: tuple[int, ...]
    hour_share: tuple[float, ...]
    prev_hour_share: float
    weekday_log: tuple[float, ...]
    persist_mu_log: tuple[float, ...]
    persist_sd_log: tuple[float, ...]
    today_bias_log: tuple[float, ...]
    today_sd_log: tuple[float, ...]


# fit_peak_model(load_market_data().load, load_market_data().four_cp_intervals, (2021, 2022, 2023));
# tests/test_peak_forecast.py checks these equal a fresh fit
FITTED = PeakModel(
    years=(2021, 2022, 2023),
    hour_share=(
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.000548,
        0.003289, 0.003289, 0.003289, 0.003289, 0.003289, 0.004386, 0.01864, 0.16886,
        0.615132, 0.156798, 0.003289, 0.003289, 0.003289, 0.003289, 0.003289, 0.002741,
    ),
    prev_hour_share=0.166667,
    weekday_log=(
        0.008984, -0.002211, 0.00599, 0.011491, 0.017018, -0.019861, -0.02141,
    ),
    persist_mu_log=(
        0.000272, 0.000527, 0.001456, 0.002421, 0.003046, 0.00333, 0.003559, 0.003583,
        0.003134, 0.003127, 0.003104, 0.002992, 0.002839, 0.002358, 0.001039, -0.000493,
        -0.002255, -0.003623, -0.004871, -0.006098, -0.00673, -0.006846, -0.007138, -0.007402,
        -0.007901, -0.008538, -0.008907, -0.008683, -0.008712, -0.008884, -0.008658,
    ),
    persist_sd_log=(
        0.045902, 0.065211, 0.075574, 0.083922, 0.090393, 0.093836, 0.096595, 0.098137,
        0.098285, 0.098285, 0.098285, 0.098285, 0.098285, 0.100154, 0.102338, 0.104532,
        0.106771, 0.110213, 0.113841, 0.116053, 0.116053, 0.116728, 0.116728, 0.116728,
        0.116728, 0.116728, 0.116728, 0.116728, 0.116728, 0.116728, 0.116728,
    ),
    today_bias_log=(
        8.3e-05, 9.1e-05, 9.2e-05, 7.5e-05, 8e-05, 9.4e-05, 7.4e-05, -6.8e-05,
        -3e-06, 0.000211, 0.000271, 0.000294, 0.000297, 0.00027, 0.000233, 0.000146,
        5.9e-05, -5.9e-05, -0.000197, -9e-05, -5e-05, -0.000136, -1e-06, 5.5e-05,
    ),
    today_sd_log=(
        0.056983, 0.057271, 0.056612, 0.055319, 0.054009, 0.05293, 0.054493, 0.061397,
        0.063342, 0.055845, 0.047919, 0.042168, 0.036727, 0.030946, 0.025749, 0.019509,
        0.011696, 0.009099, 0.007892, 0.007455, 0.007101, 0.00726, 0.007542, 0.007426,
    ),
)


def _r(x: float) -> float:
    return round(float(x), 6)


def _hourly(load: pd.DataFrame) -> pd.Series:
    s = load["system_load_mw"].astype(float).dropna()
    return s[~s.index.duplicated(keep="last")].sort_index()


def _day_matrix(s: pd.Series) -> pd.DataFrame:
    """Central day x Central hour (0..23) matrix of hourly load (max where DST repeats an hour)."""
    local = s.index.tz_convert(MARKET_TZ)
    frame = pd.DataFrame({"day": local.tz_localize(None).normalize(), "hour": local.hour, "mw": s.to_numpy()})
    return frame.pivot_table(index="day", columns="hour", values="mw", aggfunc="max").reindex(columns=range(24))


def fit_peak_model(load: pd.DataFrame, four_cp_intervals: pd.DataFrame, years: Sequence[int]) -> PeakModel:
    """Fit the statistics from hourly ERCOT load and the official intervals of `years` (June-September)."""
    years = tuple(sorted(int(y) for y in years))
    s = _hourly(load)
    mat = _day_matrix(s)
    mat = mat[mat.index.year.isin(years)]
    summer = mat[mat.index.month.isin([6, 7, 8, 9])]
    peak = summer.max(axis=1)
    month_key = summer.index.year * 100 + summer.index.month
    month_max = peak.groupby(month_key).transform("max")

    # hour of the day's highest hour on high-load days, then the official intervals' shift to the hour before
    high = summer[peak >= HIGH_LOAD_SHARE * month_max]
    counts = np.bincount(high.to_numpy().argmax(axis=1), minlength=24).astype(float) + 0.5
    counts[:8] = 0.0  # no summer peak falls before 08:00 Central; smoothing only where peaks can be
    base = counts / counts.sum()
    prev = 0
    official = four_cp_intervals[four_cp_intervals["year"].isin(years)]
    for row in official.itertuples():
        cp_hour = pd.Timestamp(row.interval_start_utc).floor("h")
        local_day = cp_hour.tz_convert(MARKET_TZ).tz_localize(None).normalize()
        day_max_hour = int(np.nanargmax(mat.loc[local_day].to_numpy()))
        prev += int(cp_hour.tz_convert(MARKET_TZ).hour == day_max_hour - 1)
    prev_share = prev / max(len(official), 1)
    share = (1 - prev_share) * base + prev_share * np.roll(base, -1)

    # weekday offsets: a day's log peak minus its centred 7-day mean, by weekday
    log_peak = np.log(mat.max(axis=1))
    full = log_peak.asfreq("D")
    centred = full - full.rolling(7, center=True).mean()
    centred = centred[centred.index.month.isin([5, 6, 7, 8, 9, 10])].dropna()
    wd = centred.groupby(centred.index.day_of_week).mean().reindex(range(7)).to_numpy()
    wd = wd - wd.mean()

    # k-day persistence of the weekday-adjusted log peak, from any completed summer day
    adj = full - wd[full.index.day_of_week]
    mu, sd = [], []
    in_summer = adj.index.month.isin([6, 7, 8, 9])
    for k in range(1, MAX_LEAD_DAYS + 1):
        diff = (adj.shift(-k) - adj)[in_summer & pd.Series(adj.index.shift(k, "D").month, index=adj.index)
                                     .isin([6, 7, 8, 9]).to_numpy()].dropna()
        mu.append(diff.mean())
        sd.append(diff.std())
    sd = np.maximum.accumulate(np.array(sd))

    # proxy error for the rest of today, by the Central hour of the decision
    values = mat.to_numpy()
    yesterday = np.vstack([np.full(24, np.nan), values[:-1]])
    before = np.vstack([np.full((2, 24), np.nan), values[:-2]])
    days_ok = mat.index.month.isin([6, 7, 8, 9])
    bias, spread = [], []
    for h in range(24):
        if h == 0:
            ratio = yesterday[:, 23] / before[:, 23]
        else:
            ratio = values[:, h - 1] / yesterday[:, h - 1]
        with np.errstate(invalid="ignore"):
            proxy = np.fmax.reduce(yesterday[:, h:], axis=1) * ratio
            actual = np.fmax.reduce(values[:, h:], axis=1)
        err = np.log(actual / proxy)[days_ok]
        err = err[np.isfinite(err)]
        bias.append(err.mean())
        spread.append(err.std())
    return PeakModel(
        years=years,
        hour_share=tuple(_r(x) for x in share),
        prev_hour_share=_r(prev_share),
        weekday_log=tuple(_r(x) for x in wd),
        persist_mu_log=tuple(_r(x) for x in mu),
        persist_sd_log=tuple(_r(x) for x in sd),
        today_bias_log=tuple(_r(x) for x in bias),
        today_sd_log=tuple(_r(x) for x in spread),
    )


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26 erf, |error| < 1.5e-7), without scipy."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def _win_probabilities(mean: np.ndarray, sd: np.ndarray, known: float | None) -> tuple[np.ndarray, float]:
    """P(each log-normal candidate is the largest, and above `known`), and P(`known` stays the largest)."""
    if len(mean) == 0:
        return np.zeros(0), 1.0
    lo = known if known is not None else float(np.min(mean - 6 * sd))
    hi = max(float(np.max(mean + 6 * sd)), lo + 1e-6)
    x = np.linspace(lo, hi, GRID_POINTS)
    z = (x[None, :] - mean[:, None]) / sd[:, None]
    cdf = np.clip(_norm_cdf(z), 1e-300, 1.0)
    pdf = np.exp(-0.5 * z * z) / (sd[:, None] * math.sqrt(2 * math.pi))
    log_all = np.log(cdf).sum(axis=0)
    integrand = pdf * np.exp(log_all[None, :] - np.log(cdf))
    dx = x[1] - x[0]
    wins = (integrand[:, 1:] + integrand[:, :-1]).sum(axis=1) * dx / 2
    p_known = float(np.exp(log_all[0])) if known is not None else 0.0
    total = wins.sum() + p_known
    return wins / total, p_known / total


def peak_probabilities(load: pd.DataFrame, at: pd.Timestamp, steps: pd.DatetimeIndex, *,
                       model: PeakModel = FITTED,
                       da_price_usd_per_mwh: pd.Series | None = None,
                       load_forecast_mw: pd.Series | None = None,
                       months: Sequence[int] = (6, 7, 8, 9)) -> pd.Series:
    """P(the hour starting at each step holds its month's 4CP interval), 0 in months not in `months`.

    `load`: column `system_load_mw`, hourly, index = UTC hour start; only rows with index + 1 h <= `at` are read.
    `load_forecast_mw`: hourly MW by UTC hour start (ERCOT's forecast, as published), replaces the proxy where given.
    `da_price_usd_per_mwh`: accepted for a stable interface; the fitted model gives it no weight (see the module).
    """
    at = pd.Timestamp(at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    steps = pd.DatetimeIndex(steps)
    out = pd.Series(0.0, index=steps, name="four_cp_probability")
    if len(steps) == 0:
        return out
    local_steps = steps.tz_convert(MARKET_TZ)
    keys = sorted({(ts.year, ts.month) for ts in local_steps if ts.month in set(months)})
    if not keys:
        return out
    s = _hourly(load)
    # everything before the earliest month start (less two days for the proxy) is never read
    first = pd.Timestamp(year=keys[0][0], month=keys[0][1], day=1, tz=MARKET_TZ).tz_convert("UTC")
    s = s[(s.index >= min(first, at) - pd.Timedelta(days=3)) & (s.index + HOUR <= at)]
    forecast = None
    if load_forecast_mw is not None and len(load_forecast_mw):
        forecast = load_forecast_mw.dropna().astype(float)
        forecast = forecast[forecast.index + HOUR > at]
    for year, month in keys:
        probs = _month_hour_probabilities(s, at, year, month, model, forecast)
        mask = (local_steps.year == year) & (local_steps.month == month)
        out[mask] = probs.reindex(steps[mask]).fillna(0.0).to_numpy()
    return out.clip(0.0, 1.0)


def _month_hour_probabilities(s: pd.Series, at: pd.Timestamp, year: int, month: int, model: PeakModel,
                              forecast: pd.Series | None) -> pd.Series:
    """Per UTC hour start of the month, P(it holds the month's 4CP interval) as of `at`."""
    start_local = pd.Timestamp(year=year, month=month, day=1, tz=MARKET_TZ)
    end_local = start_local + pd.offsets.MonthBegin(1)
    hours = pd.date_range(start_local.tz_convert("UTC"), end_local.tz_convert("UTC"), freq="h", inclusive="left")
    local = hours.tz_convert(MARKET_TZ)
    local_day = local.tz_localize(None).normalize()
    share = np.array(model.hour_share)[local.hour]
    p = np.zeros(len(hours))

    known_mask = hours + HOUR <= at
    in_month = s[(s.index >= hours[0]) & (s.index <= hours[-1])]
    known_log = None
    if len(in_month):
        known_log = float(np.log(in_month.max()))
        known_hour = in_month.idxmax()

    today = at.tz_convert(MARKET_TZ).tz_localize(None).normalize()
    month_days = pd.DatetimeIndex(sorted(set(local_day)))
    future_days = month_days[month_days > today]
    means, sds, owners = [], [], []

    # the rest of today (hours of today not yet ended), if today is in this month
    rest = (local_day == today) & ~known_mask
    if rest.any():
        rest_hours = hours[rest]
        est = _rest_of_today(s, at, rest_hours, forecast)
        if est is not None:
            h_at = at.tz_convert(MARKET_TZ).hour
            if forecast is not None and rest_hours.isin(forecast.index).all():
                means.append(est)
                sds.append(FORECAST_SD_LOG[0])
            else:
                means.append(est + model.today_bias_log[h_at])
                sds.append(model.today_sd_log[h_at])
            owners.append(rest)

    if len(future_days):
        anchor_day, anchor_log = _last_completed_day(s, at)
        wd = np.array(model.weekday_log)
        for day in future_days:
            lead = (day - anchor_day).days if anchor_day is not None else MAX_LEAD_DAYS
            k = min(max(lead, 1), MAX_LEAD_DAYS) - 1
            mean = anchor_log - wd[anchor_day.day_of_week] + wd[day.day_of_week] + model.persist_mu_log[k]
            sd = model.persist_sd_log[k]
            owner = local_day == day
            if forecast is not None and hours[owner].isin(forecast.index).all():
                mean = float(np.log(forecast.reindex(hours[owner]).max()))
                sd = FORECAST_SD_LOG[0] + FORECAST_SD_LOG[1] * (day - today).days
            means.append(mean)
            sds.append(sd)
            owners.append(owner)

    wins, p_known = _win_probabilities(np.array(means, dtype=float), np.array(sds, dtype=float), known_log)
    for win, owner in zip(wins, owners):
        w = share * owner
        if w.sum() > 0:
            p += win * w / w.sum()
    if known_log is not None:
        i = hours.get_loc(known_hour)
        if i > 0:
            p[i] += p_known * (1 - model.prev_hour_share)
            p[i - 1] += p_known * model.prev_hour_share
        else:
            p[i] += p_known
    return pd.Series(p, index=hours)


def _rest_of_today(s: pd.Series, at: pd.Timestamp, rest_hours: pd.DatetimeIndex,
                   forecast: pd.Series | None) -> float | None:
    """Log of the predicted maximum over today's hours not yet ended (forecast where given, else the proxy)."""
    if forecast is not None and rest_hours.isin(forecast.index).all():
        return float(np.log(forecast.reindex(rest_hours).max()))
    if s.empty:
        return None
    last = s.index[-1]
    base = s.get(last - pd.Timedelta(days=1))
    if base is None or not base > 0:
        return None
    ratio = s.iloc[-1] / base
    yesterday = s.reindex(rest_hours - pd.Timedelta(days=1)).dropna()
    if yesterday.empty:
        return None
    return float(np.log(yesterday.max() * ratio))


def _last_completed_day(s: pd.Series, at: pd.Timestamp) -> tuple[pd.Timestamp | None, float]:
    """The last Central day before today and the log of its peak (the last 24 ended hours if it has a gap)."""
    today = at.tz_convert(MARKET_TZ).tz_localize(None).normalize()
    if s.empty:
        raise DataError(f"4CP forecast at {at}: no ERCOT system load has ended before the decision time")
    day = today - pd.Timedelta(days=1)
    local_day = s.index.tz_convert(MARKET_TZ).tz_localize(None).normalize()
    values = s[local_day == day]
    if len(values) < 20:
        values = s.iloc[-24:]
    return day, float(np.log(values.max()))
