"""ERCOT 4CP peak probabilities: for each hour step, the chance it holds its month's 4CP interval (pure).

Method (a structured model with a few fitted statistics, not a classifier: 2021-2023 hold only 12 peaks). The month's
peak is the largest of three *candidates*, each a maximum of hourly ERCOT load:
- the month-to-date maximum M of the hours that have ended (known exactly);
- the rest of today, predicted by a stated proxy (the same hour yesterday scaled by the ratio of the last ended hour
  to the same hour the day before, or ERCOT's load forecast where given) with a log-normal error whose bias and
  spread were fitted per Central hour of the decision;
- the block of later days of the month: the maximum of n days' peaks, relative to the last completed day's
  weekday-adjusted peak, has the empirical distribution fitted per n (quantiles of the residual after a fitted
  mean reversion on that day's anomaly to its trailing 14 days) - so heat waves, fronts and the flat top of
  summer load are in the data, not assumed normal and independent.
P(candidate wins) integrates its density against the others' CDFs above M. The block's probability is shared among
its days by an independent log-normal k-day persistence model (fitted drift and spread per lead, weekday offsets);
a day's probability is spread over its hours by the fitted hour-of-day share of the 4CP interval (the hour of the
day's highest hourly load on high-load summer days, moved one hour earlier by the fitted share of official intervals
that fell in the hour before the hourly maximum); today's share is renormalised over the hours still to come.

Only load rows whose hour ended by `at` (index + 1 h <= at) are read. A step already in the past gets its honest
value: P(the month-to-date maximum stays the month's peak) on the hour holding that maximum (and, by the fitted
share, the hour before it); every other past hour 0. So in a month whose last hour has ended, the hourly maximum
(with the hour before it) holds probability 1. A month that has not started is one block of all its days.
Day-ahead prices are accepted but not used by the fitted model: the embedded prices start in 2024, the validation
year, so there is no 2021-2023 history to fit their weight on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from hashpivot.models.calendar import MARKET_TZ
from hashpivot.models.errors import DataError

MAX_LEAD_DAYS = 31  # persistence statistics per lead k = 1..31 days after the last completed day
MAX_BLOCK_DAYS = 30  # block statistics for n = 1..30 later days (leads 2..n+1 after the last completed day)
QUANTILE_LEVELS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0)
ANOMALY_DAYS = 14  # the last completed day's anomaly: its adjusted log peak minus the mean of the trailing 14 days
HIGH_LOAD_SHARE = 0.95  # days whose peak is within 5 % of their month's maximum teach the hour-of-day share
SUMMER = (6, 7, 8, 9)  # the months the statistics are fitted on
FORECAST_SD_LOG = (0.02, 0.01)  # stated, not fitted (no archive of ERCOT forecasts): sd = a + b x days ahead
GRID_POINTS = 400
HOUR_NS = 3_600 * 10**9
DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class PeakModel:
    """Fitted parameters (plain numbers; logs are natural logs of MW ratios).

    hour_share: P(the 4CP interval lies in Central hour h | its day is the peak day), h = 0..23.
    prev_hour_share: share of official intervals in the hour before the day's highest hourly load.
    weekday_log: log offset of a day's peak by weekday (Monday = 0), mean zero.
    persist_mu_log, persist_sd_log: drift and spread of a day's weekday-adjusted log peak k = 1..31 days after a
        completed day (shares the block's probability among its days).
    block_slope: per n = 1..30, the regression slope of the block maximum on the anomaly (mean reversion).
    block_quantiles: per n, quantiles (at QUANTILE_LEVELS) of the block's max log peak minus the last completed
        day's adjusted log peak minus slope x anomaly.
    today_bias_log, today_sd_log: log error of the proxy's maximum for the rest of today, by the Central hour of
        the decision (0..23).
    """

    years: tuple[int, ...]
    hour_share: tuple[float, ...]
    prev_hour_share: float
    weekday_log: tuple[float, ...]
    persist_mu_log: tuple[float, ...]
    persist_sd_log: tuple[float, ...]
    block_slope: tuple[float, ...]
    block_quantiles: tuple[tuple[float, ...], ...]
    today_bias_log: tuple[float, ...]
    today_sd_log: tuple[float, ...]


# = fit_peak_model(market.load, market.four_cp_intervals, (2021, 2022, 2023)) on the embedded data
# (tests/test_peak_forecast.py checks that a fresh fit gives exactly these)
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
        0.000117, 0.000592, 0.00119, 0.001786, 0.002121, 0.002807, 0.004425, 0.006039,
        0.007547, 0.00983, 0.011852, 0.013444, 0.014753, 0.015833, 0.016166, 0.016912,
        0.017321, 0.018308, 0.020043, 0.021345, 0.022392, 0.024073, 0.025596, 0.026916,
        0.028633, 0.03013, 0.031809, 0.033717, 0.035271, 0.037235, 0.040161,
    ),
    persist_sd_log=(
        0.045753, 0.065152, 0.075495, 0.083487, 0.090481, 0.094312, 0.097305, 0.099425,
        0.099932, 0.100422, 0.101221, 0.102765, 0.105862, 0.108983, 0.111574, 0.11531,
        0.119798, 0.124547, 0.128846, 0.132493, 0.133583, 0.134217, 0.134837, 0.135669,
        0.137615, 0.138342, 0.139149, 0.139803, 0.14238, 0.144371, 0.147841,
    ),
    block_slope=(
        -0.29473, -0.385903, -0.454189, -0.505166, -0.541825, -0.566283, -0.577577, -0.585478,
        -0.591161, -0.581251, -0.570124, -0.562831, -0.564975, -0.553033, -0.536921, -0.520852,
        -0.513665, -0.517835, -0.52691, -0.536769, -0.541001, -0.539752, -0.534145, -0.536264,
        -0.537823, -0.534518, -0.538453, -0.537571, -0.535043, -0.530419,
    ),
    block_quantiles=(
        (-0.255063, -0.144377, -0.112398, -0.081054, -0.042011, -0.013327, 0.000235, 0.012387, 0.023356, 0.033807, 0.046259, 0.067694, 0.092089, 0.111801, 0.160983),
        (-0.227956, -0.125728, -0.092147, -0.05472, -0.017636, 0.000252, 0.014635, 0.02538, 0.036185, 0.048358, 0.06322, 0.089501, 0.108269, 0.141605, 0.182483),
        (-0.204078, -0.111354, -0.073055, -0.042613, -0.004965, 0.00998, 0.024948, 0.036239, 0.04407, 0.05704, 0.076301, 0.097696, 0.125227, 0.151761, 0.230084),
        (-0.178186, -0.103628, -0.064904, -0.027267, 0.002145, 0.018068, 0.030224, 0.041879, 0.052155, 0.063689, 0.084147, 0.107347, 0.1383, 0.168537, 0.253348),
        (-0.154037, -0.099781, -0.051103, -0.016362, 0.008305, 0.025429, 0.035447, 0.046395, 0.058394, 0.071221, 0.084992, 0.119935, 0.14995, 0.172035, 0.2764),
        (-0.138778, -0.079577, -0.036701, -0.00422, 0.013403, 0.029236, 0.038716, 0.05024, 0.063927, 0.074438, 0.092388, 0.133142, 0.155728, 0.190496, 0.284737),
        (-0.107149, -0.067053, -0.030497, -0.002767, 0.017548, 0.032791, 0.045174, 0.054017, 0.0651, 0.076691, 0.097992, 0.134441, 0.165637, 0.215793, 0.285425),
        (-0.101286, -0.052376, -0.02032, -0.000985, 0.021643, 0.034948, 0.046134, 0.055604, 0.068007, 0.081881, 0.101966, 0.136951, 0.16889, 0.2233, 0.294055),
        (-0.099969, -0.039756, -0.012051, 0.001581, 0.026153, 0.038124, 0.048329, 0.05719, 0.070155, 0.084255, 0.105133, 0.142542, 0.17157, 0.234121, 0.314076),
        (-0.100427, -0.033798, -0.003749, 0.006334, 0.02882, 0.042139, 0.050067, 0.058148, 0.070997, 0.085416, 0.107754, 0.144418, 0.171908, 0.23628, 0.315798),
        (-0.086722, -0.0292, -0.002795, 0.010828, 0.031531, 0.044026, 0.050696, 0.062032, 0.071763, 0.08862, 0.11031, 0.148698, 0.177161, 0.242622, 0.316503),
        (-0.071869, -0.018286, -0.001581, 0.012563, 0.033534, 0.043917, 0.051139, 0.062582, 0.073184, 0.090068, 0.113513, 0.150857, 0.180121, 0.249801, 0.31716),
        (-0.058291, -0.012496, 0.000903, 0.013332, 0.033892, 0.04481, 0.051923, 0.062538, 0.073436, 0.090031, 0.117171, 0.154454, 0.190702, 0.26468, 0.324802),
        (-0.058822, -0.012943, 0.000878, 0.014753, 0.034438, 0.044682, 0.051487, 0.062466, 0.074103, 0.089265, 0.116876, 0.155661, 0.193136, 0.265367, 0.325302),
        (-0.059537, -0.010023, 0.00283, 0.014281, 0.034462, 0.044883, 0.051734, 0.061698, 0.07494, 0.090958, 0.116206, 0.158184, 0.202865, 0.265476, 0.325977),
        (-0.06025, -0.010393, 0.002598, 0.01495, 0.034384, 0.044825, 0.052691, 0.061464, 0.075504, 0.090752, 0.115913, 0.156973, 0.208212, 0.265764, 0.32665),
        (-0.060569, -0.010555, 0.002285, 0.014864, 0.034291, 0.045082, 0.053088, 0.062099, 0.075709, 0.09252, 0.118024, 0.157964, 0.211737, 0.266073, 0.326951),
        (-0.060384, -0.008982, 0.004145, 0.014913, 0.03423, 0.045286, 0.053184, 0.064576, 0.075952, 0.093636, 0.120533, 0.161321, 0.219593, 0.266177, 0.326776),
        (-0.059981, -0.008979, 0.005904, 0.015186, 0.03436, 0.045745, 0.05344, 0.065022, 0.075992, 0.094392, 0.12457, 0.162343, 0.225055, 0.266072, 0.326396),
        (-0.059544, -0.008945, 0.005865, 0.015598, 0.034932, 0.046561, 0.054253, 0.0656, 0.078443, 0.095444, 0.125111, 0.166559, 0.225965, 0.274405, 0.325983),
        (-0.059356, -0.003237, 0.007784, 0.016928, 0.03659, 0.04679, 0.055344, 0.067839, 0.080299, 0.096425, 0.125271, 0.170399, 0.226396, 0.276308, 0.325806),
        (-0.059411, 0.000438, 0.009544, 0.017739, 0.037533, 0.048493, 0.057914, 0.06859, 0.080539, 0.098917, 0.125899, 0.174087, 0.226348, 0.278087, 0.328373),
        (-0.05966, 0.00044, 0.00952, 0.01924, 0.038308, 0.048909, 0.058166, 0.069137, 0.083608, 0.09976, 0.126482, 0.173611, 0.230925, 0.278511, 0.328608),
        (-0.059566, 0.000451, 0.009586, 0.018619, 0.038005, 0.04956, 0.058363, 0.069418, 0.085471, 0.104966, 0.129018, 0.174164, 0.233262, 0.278877, 0.328519),
        (-0.059497, 0.00046, 0.009618, 0.017961, 0.038322, 0.05026, 0.058955, 0.0704, 0.085598, 0.105678, 0.131376, 0.174593, 0.234622, 0.279265, 0.328453),
        (-0.059644, 0.000413, 0.010309, 0.019558, 0.038422, 0.050469, 0.060063, 0.070938, 0.086337, 0.105853, 0.133436, 0.174446, 0.239502, 0.279866, 0.328592),
        (-0.059469, 0.002185, 0.01058, 0.019581, 0.038798, 0.051512, 0.060454, 0.070399, 0.08876, 0.107453, 0.134024, 0.174858, 0.241588, 0.280145, 0.328427),
        (-0.059508, 0.004607, 0.010884, 0.019995, 0.040132, 0.051596, 0.061511, 0.069705, 0.089501, 0.112866, 0.136284, 0.174858, 0.243275, 0.28064, 0.328464),
        (-0.05962, 0.004332, 0.012343, 0.020708, 0.04068, 0.051847, 0.061875, 0.071119, 0.090125, 0.113784, 0.137214, 0.175048, 0.244824, 0.281213, 0.32857),
        (-0.059826, 0.004788, 0.012463, 0.022139, 0.041311, 0.052233, 0.062291, 0.073635, 0.09015, 0.11469, 0.138633, 0.175414, 0.245058, 0.281889, 0.328764),
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
    summer = mat[mat.index.month.isin(SUMMER)]
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
    full = np.log(mat.max(axis=1)).asfreq("D")
    centred = full - full.rolling(7, center=True).mean()
    centred = centred[centred.index.month.isin([5, 6, 7, 8, 9, 10])].dropna()
    wd = centred.groupby(centred.index.day_of_week).mean().reindex(range(7)).to_numpy()
    wd = wd - wd.mean()

    # k-day persistence of the weekday-adjusted log peak, from any completed day k days before a summer day
    adj = (full - wd[full.index.day_of_week]).to_numpy()
    raw = full.to_numpy()
    month = full.index.month.to_numpy()
    n_days = len(full)
    mu, sd = [], []
    for k in range(1, MAX_LEAD_DAYS + 1):
        target = np.isin(month[k:], SUMMER)
        diff = (adj[k:] - adj[:-k])[target]
        diff = diff[np.isfinite(diff)]
        mu.append(diff.mean())
        sd.append(diff.std())
    sd = np.maximum.accumulate(np.array(sd))

    # block maxima of the n later days (leads 2..n+1), with mean reversion on the anomaly
    trailing = pd.Series(adj).rolling(ANOMALY_DAYS, min_periods=ANOMALY_DAYS).mean().to_numpy()
    anomaly = adj - trailing
    slopes, quantiles = [], []
    for n in range(1, MAX_BLOCK_DAYS + 1):
        d = np.arange(n_days - n - 1)
        first, last = d + 2, d + n + 1
        ok = np.isin(month[first], SUMMER) & np.isin(month[last], SUMMER) & (month[last] >= month[first])
        block = np.lib.stride_tricks.sliding_window_view(raw, n)[2:][: len(d)]
        with np.errstate(invalid="ignore"):
            ymax = np.fmax.reduce(block, axis=1)
        y = ymax - adj[d]
        x = anomaly[d]
        ok &= np.isfinite(y) & np.isfinite(x) & np.isfinite(block).all(axis=1)
        x, y = x[ok], y[ok]
        slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
        slopes.append(slope)
        quantiles.append(tuple(_r(q) for q in np.quantile(y - slope * x, QUANTILE_LEVELS)))

    # proxy error for the rest of today, by the Central hour of the decision
    values = mat.to_numpy()
    yesterday = np.vstack([np.full(24, np.nan), values[:-1]])
    before = np.vstack([np.full((2, 24), np.nan), values[:-2]])
    days_ok = mat.index.month.isin(SUMMER)
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
        block_slope=tuple(_r(x) for x in slopes),
        block_quantiles=tuple(quantiles),
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


def _shares(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(each independent normal candidate is the largest) - only shares the block's probability among its days."""
    if len(mean) == 1:
        return np.ones(1)
    x = np.linspace(float(np.min(mean - 6 * sd)), float(np.max(mean + 6 * sd)), GRID_POINTS)
    z = (x[None, :] - mean[:, None]) / sd[:, None]
    cdf = np.clip(_norm_cdf(z), 1e-300, 1.0)
    pdf = np.exp(-0.5 * z * z) / sd[:, None]
    integrand = pdf * np.exp(np.log(cdf).sum(axis=0)[None, :] - np.log(cdf))
    wins = integrand.sum(axis=1)
    return wins / wins.sum()


def _three_way(known: float | None, rest: tuple[float, float] | None,
               block: tuple[np.ndarray, np.ndarray] | None) -> tuple[float, float, float]:
    """P(known max stays, rest of today wins, later block wins): rest ~ N(mean, sd), block by its quantiles."""
    if rest is None and block is None:
        return 1.0, 0.0, 0.0
    centres = [rest[0]] if rest is not None else []
    lows = [rest[0] - 6 * rest[1]] if rest is not None else []
    highs = [rest[0] + 6 * rest[1]] if rest is not None else []
    if block is not None:
        lows.append(float(block[0][0]))
        highs.append(float(block[0][-1]))
        centres.append(float(np.interp(0.5, block[1], block[0])))
    lo = min(lows) if known is None else known
    hi = max(max(highs), lo + 1e-6)
    x = np.linspace(lo, hi, GRID_POINTS)
    f_block = np.interp(x, block[0], block[1], left=0.0, right=1.0) if block is not None else np.ones_like(x)
    if rest is None:
        p_known = float(f_block[0]) if known is not None else 0.0
        return p_known, 0.0, 1.0 - p_known
    z = (x - rest[0]) / rest[1]
    f_rest = _norm_cdf(z)
    pdf_rest = np.exp(-0.5 * z * z) / (rest[1] * math.sqrt(2 * math.pi))
    integrand = pdf_rest * f_block
    p_rest = float(np.sum((integrand[1:] + integrand[:-1]) / 2) * (x[1] - x[0]))
    p_known = float(f_rest[0] * f_block[0]) if known is not None else 0.0
    p_rest = min(p_rest, 1.0 - p_known)
    return p_known, p_rest, max(1.0 - p_known - p_rest, 0.0)


@lru_cache(maxsize=64)
def _month_hours(year: int, month: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The month's UTC hour starts in ns (Central calendar), their Central hour and Central day (days since 1970)."""
    start = pd.Timestamp(year=year, month=month, day=1, tz=MARKET_TZ)
    end = start + pd.offsets.MonthBegin(1)
    hours = pd.date_range(start.tz_convert("UTC"), end.tz_convert("UTC"), freq="h", inclusive="left").as_unit("ns")
    local = hours.tz_convert(MARKET_TZ)
    day = (local.tz_localize(None).normalize().asi8 // DAY_NS).astype(np.int64)
    return hours.asi8, np.asarray(local.hour), day


@lru_cache(maxsize=4096)
def _day_start_ns(day: int) -> int:
    """UTC ns of 00:00 Central on `day` (days since 1970-01-01)."""
    return pd.Timestamp(day * DAY_NS, unit="ns").tz_localize(MARKET_TZ).value


def _local(ns: int) -> tuple[int, int, int, int]:
    """(Central day since 1970, Central hour, year, month) of a UTC ns instant."""
    ts = pd.Timestamp(ns, unit="ns", tz="UTC").tz_convert(MARKET_TZ)
    return int(ts.tz_localize(None).normalize().value // DAY_NS), ts.hour, ts.year, ts.month


def _as_ns(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ns").asi8 if index.unit != "ns" else index.asi8


def peak_probabilities(load: pd.DataFrame, at: pd.Timestamp, steps: pd.DatetimeIndex, *,
                       model: PeakModel = FITTED,
                       da_price_usd_per_mwh: pd.Series | None = None,
                       load_forecast_mw: pd.Series | None = None,
                       months: Sequence[int] = (6, 7, 8, 9)) -> pd.Series:
    """P(the hour starting at each step holds its month's 4CP interval), 0 in months not in `months`.

    `load`: column `system_load_mw`, hourly, index = UTC hour start (sorted); only rows with index + 1 h <= `at`
        are read.
    `load_forecast_mw`: hourly MW by UTC hour start (ERCOT's forecast, as published), replaces the proxy for the
        hours and days it covers whole, with a stated (not fitted) spread.
    `da_price_usd_per_mwh`: accepted for a stable interface; the fitted model gives it no weight (see the module).
    """
    at = pd.Timestamp(at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    steps = pd.DatetimeIndex(steps)
    out = np.zeros(len(steps))
    if len(steps) == 0:
        return pd.Series(out, index=steps, name="four_cp_probability")
    steps_ns = _as_ns(steps)
    wanted = set(int(m) for m in months)
    first, last = _local(int(steps_ns.min())), _local(int(steps_ns.max()))
    keys = []
    year, month = first[2], first[3]
    while (year, month) <= (last[2], last[3]):
        if month in wanted:
            keys.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if not keys:
        return pd.Series(out, index=steps, name="four_cp_probability")
    at_ns = at.value
    begin = min(int(_month_hours(*keys[0])[0][0]), at_ns) - (ANOMALY_DAYS + 3) * DAY_NS
    index = load.index if load.index.is_monotonic_increasing else load.index.sort_values()
    if index is not load.index:
        load = load.loc[index]
    ns_all = _as_ns(index)
    lo, hi = np.searchsorted(ns_all, begin), np.searchsorted(ns_all, at_ns - HOUR_NS, side="right")
    values = load["system_load_mw"].to_numpy(dtype=float)[lo:hi]
    ns = ns_all[lo:hi]
    ok = np.isfinite(values)
    ns, values = ns[ok], values[ok]
    if len(ns) == 0:
        raise DataError(f"4CP forecast at {at}: no ERCOT system load has ended before the decision time")
    forecast = None
    if load_forecast_mw is not None and len(load_forecast_mw):
        f = load_forecast_mw.dropna().astype(float).sort_index()
        f_ns = _as_ns(pd.DatetimeIndex(f.index))
        keep = f_ns + HOUR_NS > at_ns
        forecast = (f_ns[keep], f.to_numpy()[keep])
    context = _Context(ns, values, at_ns, model, forecast)
    for year, month in keys:
        hours_ns, probs = _month_probabilities(context, year, month)
        pos = np.searchsorted(hours_ns, steps_ns)
        hit = (pos < len(hours_ns)) & (hours_ns[np.minimum(pos, len(hours_ns) - 1)] == steps_ns)
        out[hit] = probs[pos[hit]]
    return pd.Series(np.clip(out, 0.0, 1.0), index=steps, name="four_cp_probability")


class _Context:
    """What is known at `at`, computed once per call: ended hours, today's proxy inputs, the anchor day."""

    def __init__(self, ns: np.ndarray, values: np.ndarray, at_ns: int, model: PeakModel,
                 forecast: tuple[np.ndarray, np.ndarray] | None):
        self.ns, self.values, self.at_ns, self.model, self.forecast = ns, values, at_ns, model, forecast
        self.today, self.at_hour, _, _ = _local(at_ns)
        wd = np.array(model.weekday_log)
        days = np.arange(self.today - ANOMALY_DAYS, self.today)
        bounds = np.searchsorted(ns, [_day_start_ns(int(d)) for d in range(days[0], self.today + 1)])
        peaks = np.array([values[a:b].max() if b - a >= 20 else np.nan for a, b in zip(bounds[:-1], bounds[1:])])
        adj = np.log(peaks) - wd[(days + 3) % 7]  # 1970-01-01 was a Thursday (weekday 3)
        anchor = adj[-1]
        if not np.isfinite(anchor):  # yesterday has a gap: the last 24 ended hours stand for it
            anchor = math.log(values[-24:].max()) - wd[(self.today - 1 + 3) % 7]
        self.anchor_adj = float(anchor)
        finite = adj[np.isfinite(adj)]
        self.anomaly = float(anchor - finite.mean()) if len(finite) >= ANOMALY_DAYS // 2 else 0.0

    def forecast_max(self, hours_ns: np.ndarray) -> float | None:
        """The forecast's maximum over these hours if it covers every one of them, else None."""
        if self.forecast is None:
            return None
        f_ns, f_val = self.forecast
        pos = np.searchsorted(f_ns, hours_ns)
        if (pos >= len(f_ns)).any() or not (f_ns[pos] == hours_ns).all():
            return None
        return float(f_val[pos].max())


def _month_probabilities(c: _Context, year: int, month: int) -> tuple[np.ndarray, np.ndarray]:
    """Per UTC hour start of the month (ns), P(it holds the month's 4CP interval) as of `c.at_ns`."""
    m = c.model
    hours_ns, local_hour, local_day = _month_hours(year, month)
    share = np.array(m.hour_share)[local_hour]
    p = np.zeros(len(hours_ns))

    a, b = np.searchsorted(c.ns, hours_ns[0]), np.searchsorted(c.ns, hours_ns[-1], side="right")
    known = None
    if b > a:
        i_max = a + int(np.argmax(c.values[a:b]))
        known = math.log(c.values[i_max])
        known_ns = c.ns[i_max]

    rest_mask = (local_day == c.today) & (hours_ns + HOUR_NS > c.at_ns)
    rest = _rest_of_today(c, hours_ns[rest_mask]) if rest_mask.any() else None

    future = np.unique(local_day[local_day > c.today])
    block = None
    if len(future):
        n = min(len(future), MAX_BLOCK_DAYS)
        q = np.array(m.block_quantiles[n - 1]) + c.anchor_adj + m.block_slope[n - 1] * c.anomaly
        block = (q, np.array(QUANTILE_LEVELS))
        top = c.forecast_max(hours_ns[local_day > c.today])
        if top is not None:  # the forecast covers every later day of the month: a log-normal block maximum
            spread = FORECAST_SD_LOG[0] + FORECAST_SD_LOG[1] * len(future)
            levels = np.array(QUANTILE_LEVELS[1:-1])
            block = (math.log(top) + spread * _norm_ppf(levels), levels)

    p_known, p_rest, p_block = _three_way(known, rest, block)
    if rest is not None:
        w = share * rest_mask
        if w.sum() > 0:
            p += p_rest * w / w.sum()
    if block is not None:
        wd = np.array(m.weekday_log)
        leads = np.clip(future - (c.today - 1), 1, MAX_LEAD_DAYS) - 1
        mean = c.anchor_adj + wd[(future + 3) % 7] + np.array(m.persist_mu_log)[leads]
        sd = np.array(m.persist_sd_log)[leads]
        w_day = share[None, :] * (local_day[None, :] == future[:, None])
        w_day /= w_day.sum(axis=1, keepdims=True)
        p += p_block * (_shares(mean, sd)[:, None] * w_day).sum(axis=0)
    if known is not None:
        i = int(np.searchsorted(hours_ns, known_ns))
        if i > 0:
            p[i] += p_known * (1 - m.prev_hour_share)
            p[i - 1] += p_known * m.prev_hour_share
        else:
            p[i] += p_known
    return hours_ns, p


def _norm_ppf(levels: np.ndarray) -> np.ndarray:
    """Standard normal quantiles by bisection on _norm_cdf (only for the few levels of a forecast block)."""
    lo, hi = np.full(len(levels), -8.0), np.full(len(levels), 8.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = _norm_cdf(mid) < levels
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def _rest_of_today(c: _Context, rest_ns: np.ndarray) -> tuple[float, float] | None:
    """(mean, sd) of the log maximum over today's hours not yet ended: the forecast where it covers them, else the
    proxy (same hour yesterday x the last ended hour's ratio to the same hour the day before) with its fitted error."""
    top = c.forecast_max(rest_ns)
    if top is not None:
        return math.log(top), FORECAST_SD_LOG[0]
    i_base = int(np.searchsorted(c.ns, c.ns[-1] - DAY_NS))
    if i_base >= len(c.ns) or c.ns[i_base] != c.ns[-1] - DAY_NS or not c.values[i_base] > 0:
        return None
    ratio = c.values[-1] / c.values[i_base]
    wanted = rest_ns - DAY_NS
    pos = np.searchsorted(c.ns, wanted)
    pos = pos[pos < len(c.ns)]
    hit = pos[np.isin(c.ns[pos], wanted)]
    if len(hit) == 0:
        return None
    mean = math.log(c.values[hit].max() * ratio) + c.model.today_bias_log[c.at_hour]
    return mean, c.model.today_sd_log[c.at_hour]
