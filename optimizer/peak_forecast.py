"""ERCOT 4CP peak probabilities: for each hour step, the chance it holds its month's 4CP interval (pure).

Method: a structured model with a few fitted statistics, not a classifier (2021-2023 hold only 12 peaks). The
month's peak is the largest of three *candidates*, each a maximum of hourly ERCOT load:
- the month-to-date maximum M of the hours that have ended (known exactly);
- the rest of today (the hours not ended), its log maximum normal around a linear model fitted per Central hour of
  the decision on the last three ended hours, the same hours yesterday, yesterday's maximum over the hours still to
  come and how far the plain proxy (that maximum x the last hour's ratio to yesterday) calls above M (clipped: a
  called new high overshoots, hot afternoons flatten), with the fit's residual spread - or ERCOT's load forecast
  where given. On 2024 (not fitted) this model's spread at 12:00-15:00 CT decisions is 0.020 / 0.015 / 0.014 /
  0.011 against the plain proxy's 0.030 / 0.024 / 0.022 / 0.018 (log error, days within 8 % of M);
- the later days of the month as one block: the maximum of its n days' peaks relative to today's weekday-adjusted
  peak has the empirical distribution fitted per n (quantiles after a regression on today's anomaly to its 14-day
  mean, the mean reversion scaled to the days that set a new month-to-date high), so heat waves, fronts and the flat
  top of summer load come from the data. The block moves with today: when the rest of today is integrated up to a
  load x, the block is read relative to a today that peaked at x.
P(candidate wins) is integrated on a log-MW grid above M. The block's probability is shared among its days as
the block maximum fell in 2021-2023 (tomorrow boosted - heat persists - and a weight per weekday); a day's
probability is spread over its hours by the fitted hour-of-day share of the 4CP interval (the hour of the day's
highest hourly load on high-load summer days, moved one hour earlier by the fitted share of official intervals that
fell in the hour before the hourly maximum); today's share is renormalised over the hours still to come. At every
decision the month's hours sum to 1.

Only load rows whose hour ended by `at` (index + 1 h <= at) are read. A step already in the past gets its honest
value: P(the month-to-date maximum stays the month's peak) on the hour holding that maximum (and, by the fitted
share, the hour before it); every other past hour 0. So in a month whose last hour has ended, the hourly maximum
(with the hour before it) holds probability 1. A month that has not started is one block of all its days.
Day-ahead prices are accepted but not used: the embedded prices start in 2024, the validation year, so there is no
2021-2023 history to fit their weight on. ERCOT's forecast, where given, replaces the proxy with a stated (not
fitted: no archive of its past forecasts) spread. Measured calibration: `python -m benchmarks.fourcp_bench`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from hashpivot.models.calendar import MARKET_TZ, to_utc
from hashpivot.models.errors import DataError

MAX_LEAD_DAYS = 31  # persistence drift per lead k = 1..31 days after today
MAX_BLOCK_DAYS = 31  # block statistics for the n = 1..31 days after today
QUANTILE_LEVELS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0)
ANOMALY_DAYS = 14  # a day's anomaly: its adjusted log peak minus the mean of the 14 days ending with it
HIGH_LOAD_SHARE = 0.95  # days whose peak is within 5 % of their month's maximum teach the hour-of-day share
MIN_NEAR_DAYS = 30  # fewer near days at a decision hour than this: the proxy error is fitted on all days
NEAR_CLIP = 0.08  # the proxy's log distance to the month-to-date maximum, clipped (and the fit's day window)
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
    persist_mu_log: drift of a day's weekday-adjusted log peak k = 1..31 days after today (peak_reasons' words).
    next_day_boost, argmax_weekday_weight: which later day holds the block's maximum: P(day k) proportional to
        (1 + next_day_boost if k is tomorrow else 1) x the weight of its weekday (mean 1).
    block_slope: per n = 1..31 later days, the slope of the block maximum on today's anomaly (mean reversion).
    block_quantiles: per n, quantiles (at QUANTILE_LEVELS) of the block's max log peak minus today's adjusted log
        peak minus slope x anomaly.
    today_coef, today_sd_log: the rest of today's log maximum, by the Central hour of the decision (0..23):
        coefficients on `_today_features` (intercept; log load of the last three ended hours; yesterday's log
        maximum over the hours still to come; yesterday's log load 1 and 3 hours before the first of them; the plain
        proxy's log distance to the month-to-date maximum, clipped to +-NEAR_CLIP), and the residual spread.
    """

    years: tuple[int, ...]
    hour_share: tuple[float, ...]
    prev_hour_share: float
    weekday_log: tuple[float, ...]
    persist_mu_log: tuple[float, ...]
    next_day_boost: float
    argmax_weekday_weight: tuple[float, ...]
    block_slope: tuple[float, ...]
    block_quantiles: tuple[tuple[float, ...], ...]
    today_coef: tuple[tuple[float, ...], ...]
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
    next_day_boost=0.398264,
    argmax_weekday_weight=(
        1.234282, 1.82961, 1.266201, 1.056292, 0.750445, 0.251316, 0.611854,
    ),
    block_slope=(
        -0.083823, -0.151066, -0.206267, -0.249695, -0.285844, -0.30798, -0.325609, -0.333827,
        -0.338983, -0.343874, -0.340467, -0.337724, -0.333724, -0.335225, -0.327824, -0.318987,
        -0.308652, -0.304117, -0.306489, -0.313271, -0.320036, -0.322548, -0.321656, -0.320102,
        -0.321351, -0.322233, -0.320409, -0.322925, -0.322455, -0.320913, -0.318152,
    ),
    block_quantiles=(
        (-0.200076, -0.106828, -0.077651, -0.057569, -0.027233, -0.011824, -0.002245, 0.005381,
         0.011845, 0.020546, 0.031214, 0.051651, 0.063359, 0.088898, 0.157519),
        (-0.179491, -0.09599, -0.059961, -0.037455, -0.011551, 0.002334, 0.011739, 0.019387,
         0.029121, 0.037427, 0.049196, 0.070452, 0.094535, 0.114898, 0.163135),
        (-0.160255, -0.082444, -0.053567, -0.029588, -0.000472, 0.012334, 0.019276, 0.029314,
         0.038919, 0.049668, 0.063184, 0.091795, 0.106583, 0.142804, 0.180308),
        (-0.137717, -0.067597, -0.046215, -0.016067, 0.005161, 0.018005, 0.026685, 0.036427,
         0.046275, 0.05756, 0.077186, 0.098268, 0.1225, 0.151835, 0.231961),
        (-0.120078, -0.068029, -0.032857, -0.011013, 0.013059, 0.024083, 0.032597, 0.043125,
         0.053312, 0.064126, 0.084836, 0.107659, 0.138575, 0.168921, 0.254744),
        (-0.118436, -0.055192, -0.02349, -0.001108, 0.017949, 0.028006, 0.038166, 0.047432,
         0.059193, 0.070984, 0.084761, 0.118187, 0.150927, 0.172824, 0.277779),
        (-0.117128, -0.044367, -0.021508, 0.00181, 0.021145, 0.03175, 0.040588, 0.049997,
         0.063155, 0.074363, 0.092563, 0.130382, 0.155443, 0.190898, 0.285861),
        (-0.106116, -0.033967, -0.018161, 0.005989, 0.022607, 0.034409, 0.045251, 0.054611,
         0.065193, 0.075868, 0.097485, 0.134254, 0.165298, 0.214329, 0.286669),
        (-0.097416, -0.024333, -0.009812, 0.007966, 0.025243, 0.036683, 0.047148, 0.055858,
         0.067529, 0.079657, 0.101351, 0.135978, 0.166532, 0.217116, 0.295019),
        (-0.086422, -0.019261, -0.000298, 0.010976, 0.030059, 0.04113, 0.049627, 0.056658,
         0.070406, 0.084124, 0.102451, 0.13804, 0.169023, 0.227768, 0.314912),
        (-0.0632, -0.018539, 0.001288, 0.016221, 0.031583, 0.043561, 0.05022, 0.058725,
         0.071065, 0.085716, 0.103934, 0.143717, 0.170259, 0.228282, 0.316571),
        (-0.058314, -0.01181, 0.005126, 0.016693, 0.033511, 0.044279, 0.050767, 0.062095,
         0.071053, 0.087123, 0.10736, 0.146296, 0.17367, 0.228704, 0.316862),
        (-0.058611, -0.008482, 0.008728, 0.01782, 0.034039, 0.044187, 0.051179, 0.062606,
         0.073103, 0.088683, 0.10995, 0.14925, 0.178294, 0.235478, 0.317333),
        (-0.058499, -0.005671, 0.009691, 0.018347, 0.034767, 0.044978, 0.051763, 0.062622,
         0.073285, 0.088646, 0.113958, 0.151114, 0.189595, 0.252226, 0.324998),
        (-0.059048, -0.006109, 0.009628, 0.018742, 0.034992, 0.044914, 0.051437, 0.062101,
         0.073885, 0.088669, 0.114384, 0.152701, 0.189345, 0.261559, 0.325516),
        (-0.059704, 0.000317, 0.009521, 0.018034, 0.035044, 0.044873, 0.051859, 0.061284,
         0.074152, 0.090074, 0.115248, 0.1521, 0.199282, 0.262237, 0.326135),
        (-0.060471, -0.000134, 0.009094, 0.018678, 0.036015, 0.045017, 0.052687, 0.060768,
         0.074424, 0.088922, 0.114488, 0.151414, 0.202535, 0.262301, 0.326858),
        (-0.060808, -0.000391, 0.008732, 0.019572, 0.035512, 0.044954, 0.053231, 0.061587,
         0.074766, 0.091415, 0.116638, 0.154908, 0.210004, 0.262401, 0.327176),
        (-0.060632, -0.000295, 0.009356, 0.019416, 0.035091, 0.045151, 0.053246, 0.062808,
         0.075419, 0.091809, 0.119255, 0.159639, 0.216485, 0.262745, 0.32701),
        (-0.060128, 0.000363, 0.009678, 0.018255, 0.035209, 0.045753, 0.053587, 0.064856,
         0.075879, 0.092917, 0.12057, 0.161488, 0.220997, 0.263381, 0.326535),
        (-0.059626, 0.00048, 0.009972, 0.02001, 0.037463, 0.046685, 0.054156, 0.065309,
         0.077389, 0.09365, 0.121876, 0.163064, 0.221947, 0.266679, 0.326061),
        (-0.05944, 0.00294, 0.010495, 0.020667, 0.037651, 0.047342, 0.055206, 0.066383,
         0.079601, 0.094223, 0.123901, 0.164789, 0.222775, 0.268037, 0.325885),
        (-0.059506, 0.005379, 0.012293, 0.020774, 0.038487, 0.048537, 0.056999, 0.068165,
         0.080227, 0.096124, 0.125054, 0.166439, 0.223898, 0.277182, 0.328462),
        (-0.059621, 0.005144, 0.012055, 0.02067, 0.038979, 0.04898, 0.058128, 0.06903,
         0.081834, 0.099005, 0.125433, 0.166768, 0.226036, 0.277203, 0.328571),
        (-0.059529, 0.005047, 0.01186, 0.020665, 0.038801, 0.049607, 0.058261, 0.069321,
         0.085162, 0.101733, 0.126234, 0.167215, 0.226258, 0.277302, 0.328484),
        (-0.059463, 0.004932, 0.011653, 0.020622, 0.038912, 0.050151, 0.058949, 0.069652,
         0.085553, 0.104675, 0.127263, 0.167695, 0.229902, 0.27738, 0.328422),
        (-0.059599, 0.005542, 0.012824, 0.021258, 0.039024, 0.050283, 0.059956, 0.070368,
         0.085663, 0.105449, 0.131445, 0.169377, 0.230733, 0.277425, 0.32855),
        (-0.059412, 0.008199, 0.013494, 0.021014, 0.039186, 0.051433, 0.060436, 0.069653,
         0.087559, 0.105611, 0.132047, 0.174048, 0.231978, 0.2775, 0.328373),
        (-0.059447, 0.008025, 0.013452, 0.021606, 0.040565, 0.051505, 0.061435, 0.069616,
         0.089034, 0.107828, 0.133739, 0.174204, 0.232939, 0.277557, 0.328406),
        (-0.059561, 0.007805, 0.013713, 0.022002, 0.040942, 0.051658, 0.061635, 0.070871,
         0.089173, 0.109096, 0.134664, 0.174693, 0.233203, 0.277632, 0.328514),
        (-0.059766, 0.00803, 0.014191, 0.023919, 0.041591, 0.052027, 0.061982, 0.07121,
         0.090054, 0.11384, 0.136194, 0.174736, 0.233024, 0.277748, 0.328707),
    ),
    today_coef=(
        (0.95888, -0.424319, 1.176037, -0.198859, 0.559277, 0.205797, -0.396082, -0.034066),
        (0.799951, -0.33844, 0.040115, 1.078262, 0.506887, 0.403168, -0.753968, -0.171704),
        (0.705979, 0.765515, -2.526788, 2.512688, 0.504612, 0.558294, -0.868717, -0.170527),
        (0.591054, 1.876949, -3.198682, 1.956581, 0.609245, -0.120752, -0.167266, -0.126749),
        (0.663807, 2.289053, -3.356907, 1.699604, 0.619316, -0.495073, 0.193895, -0.13409),
        (0.797495, 0.594568, -0.127125, 0.082722, 0.684537, -0.480485, 0.1834, -0.123609),
        (0.971655, 1.059866, -2.060625, 1.538628, 0.625495, -0.372225, 0.131391, -0.161478),
        (0.924658, -0.020508, 0.428567, 0.093602, 0.67211, -0.249992, 0.003855, -0.170165),
        (0.835939, 0.806005, -1.01129, 0.678485, 0.675607, -0.313247, 0.099933, -0.204322),
        (0.625291, 2.790712, -2.441328, 0.304923, 0.634705, -1.310382, 0.971924, -0.157684),
        (0.026496, 2.497515, -1.371084, -0.263084, 0.60167, -0.927687, 0.46387, -0.180845),
        (0.101881, 2.046672, -0.690781, -0.450639, 0.563457, -0.783937, 0.307865, -0.191598),
        (0.270339, 3.412418, -3.708424, 1.155467, 0.504633, -0.710705, 0.325143, -0.150739),
        (0.385247, 3.347316, -3.486578, 0.933795, 0.508443, -0.682281, 0.345348, -0.075576),
        (0.222862, 2.416546, -1.752056, 0.138947, 0.498722, -0.617685, 0.294677, -0.096413),
        (0.109697, 2.703895, -2.524771, 0.740559, 0.250412, -0.249183, 0.069513, -0.038019),
        (0.013526, 1.936796, -1.103925, 0.151095, 0.245519, -0.33765, 0.107055, 0.036175),
        (-0.089919, 1.909478, -1.199545, 0.297853, 0.100322, -0.094741, -0.00579, 0.028549),
        (-0.103307, 2.108585, -1.565914, 0.450983, 0.115648, -0.048547, -0.052151, 0.070971),
        (0.088115, 1.925165, -1.2721, 0.32576, 0.323559, -0.300675, -0.010207, 0.015885),
        (-0.143964, 1.692395, -1.069865, 0.398632, 0.793051, -1.128896, 0.326659, -0.019648),
        (-0.021503, 1.195369, 0.042806, -0.270103, 0.740676, -0.865321, 0.158207, 0.0),
        (-0.010421, 1.484863, -0.53966, 0.029991, 0.388757, -0.440193, 0.075059, 0.0),
        (-0.115441, 1.985152, -1.234341, 0.249787, 0.114445, -0.130631, 0.024932, 0.0),
    ),
    today_sd_log=(
        0.03567, 0.035645, 0.035665, 0.036847, 0.036482, 0.035984, 0.035054, 0.036654,
        0.033571, 0.027597, 0.026031, 0.02426, 0.02005, 0.016843, 0.014345, 0.009469,
        0.005029, 0.004137, 0.003918, 0.003759, 0.003588, 0.005845, 0.005307, 0.003131,
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
    mu = []
    for k in range(1, MAX_LEAD_DAYS + 1):
        target = np.isin(month[k:], SUMMER)
        diff = (adj[k:] - adj[:-k])[target]
        mu.append(diff[np.isfinite(diff)].mean())

    # block maxima of the n days after a day, with mean reversion on that day's anomaly
    trailing = pd.Series(adj).rolling(ANOMALY_DAYS, min_periods=ANOMALY_DAYS).mean().to_numpy()
    anomaly = adj - trailing
    slopes, quantiles = [], []
    for n in range(1, MAX_BLOCK_DAYS + 1):
        d = np.arange(n_days - n)
        ok = np.isin(month[d + 1], SUMMER) & np.isin(month[d + n], SUMMER)
        block = np.lib.stride_tricks.sliding_window_view(raw, n)[1:][: len(d)]
        with np.errstate(invalid="ignore"):
            ymax = np.fmax.reduce(block, axis=1)
        y = ymax - adj[d]
        x = anomaly[d]
        ok &= np.isfinite(y) & np.isfinite(x) & np.isfinite(block).all(axis=1)
        x, y = x[ok], y[ok]
        slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
        slopes.append(slope)
        quantiles.append(tuple(_r(q) for q in np.quantile(y - slope * x, QUANTILE_LEVELS)))
    slopes = np.array(slopes) * _reversion_scale(raw, adj, anomaly, month, slopes, quantiles)
    boost, weekday_weight = _argmax_shares(raw, month, full.index.day_of_week.to_numpy())

    # the rest of today's log maximum, by the Central hour h of the decision: a linear model on the last three
    # ended hours, the same hours yesterday (h-1, h-3), yesterday's maximum over the hours still to come, and how far
    # the plain proxy (that maximum x the last hour's ratio to yesterday) calls above the month-to-date maximum
    # (clipped: a called new high overshoots, hot afternoons flatten); fitted over the days within NEAR_CLIP of that
    # maximum (the days that can matter), its residual spread the forecast's. Hourly 3-day rows make h-3 < 0 read
    # the day before.
    values = np.log(mat.to_numpy())
    yesterday = np.vstack([np.full(24, np.nan), values[:-1]])
    before = np.vstack([np.full((2, 24), np.nan), values[:-2]])
    wide = np.hstack([before, yesterday, values])  # column 48 + h: today's hour h
    days_ok = mat.index.month.isin(SUMMER)
    with np.errstate(invalid="ignore"):
        day_max = pd.Series(np.fmax.reduce(values, axis=1), index=mat.index)
    prior = day_max.groupby([mat.index.year, mat.index.month]).transform(lambda x: x.shift(1).cummax()).to_numpy()
    coefs, spread = [], []
    for h in range(24):
        with np.errstate(invalid="ignore"):
            actual = np.fmax.reduce(values[:, h:], axis=1)
            y_rest = np.fmax.reduce(wide[:, 24 + h:48], axis=1)
            so_far = np.fmax.reduce(values[:, :h], axis=1) if h else np.full(len(values), np.nan)
            near = y_rest + wide[:, 47 + h] - wide[:, 23 + h] - np.fmax(prior, so_far)
        x = _today_features(wide[:, 47 + h], wide[:, 46 + h], wide[:, 45 + h], y_rest, wide[:, 23 + h],
                            wide[:, 21 + h], near)
        ok = days_ok & np.isfinite(actual) & np.isfinite(x).all(axis=1) & (near > -NEAR_CLIP)
        if ok.sum() < MIN_NEAR_DAYS:  # late evening: the rest of the day is never near the maximum; all days
            x[:, -1] = 0.0
            ok = days_ok & np.isfinite(actual) & np.isfinite(x).all(axis=1)
        beta = np.linalg.lstsq(x[ok], actual[ok], rcond=None)[0]
        coefs.append(tuple(_r(b) for b in beta))
        spread.append((actual[ok] - x[ok] @ beta).std())
    return PeakModel(
        years=years,
        hour_share=tuple(_r(x) for x in share),
        prev_hour_share=_r(prev_share),
        weekday_log=tuple(_r(x) for x in wd),
        persist_mu_log=tuple(_r(x) for x in mu),
        next_day_boost=_r(boost),
        argmax_weekday_weight=tuple(_r(x) for x in weekday_weight),
        block_slope=tuple(_r(x) for x in slopes),
        block_quantiles=tuple(quantiles),
        today_coef=tuple(coefs),
        today_sd_log=tuple(_r(x) for x in spread),
    )


def _reversion_scale(raw: np.ndarray, adj: np.ndarray, anomaly: np.ndarray, month: np.ndarray,
                     slopes: list[float], quantiles: list[tuple[float, ...]]) -> float:
    """Scale on the block slopes so that, over the days that set a new month-to-date high, the block's predicted
    P(the high stands to the month's end) sums to how many did stand - the case the forecaster meets (its block
    is only compared with loads above the month-to-date maximum); the all-days slope overstates reversion there."""
    days, ns, stands = [], [], []
    i = 0
    while i < len(raw):
        j = i
        while j + 1 < len(raw) and month[j + 1] == month[i]:
            j += 1
        if month[i] in SUMMER:
            run = -np.inf
            for d in range(i, j):  # n >= 1 days left
                if np.isfinite(raw[d]) and raw[d] >= run and np.isfinite(anomaly[d]):
                    days.append(d)
                    ns.append(min(j - d, MAX_BLOCK_DAYS))
                    stands.append(bool(np.nanmax(raw[d + 1:j + 1]) < raw[d]))
                run = max(run, raw[d]) if np.isfinite(raw[d]) else run
        i = j + 1
    if not days:
        return 1.0
    levels = np.array(QUANTILE_LEVELS)

    def predicted(scale: float) -> float:
        return sum(float(np.interp(raw[d], np.array(quantiles[n - 1]) + adj[d] + scale * slopes[n - 1] * anomaly[d],
                                   levels, left=0.0, right=1.0)) for d, n in zip(days, ns))

    lo, hi, target = 0.0, 2.0, float(sum(stands))
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if predicted(mid) < target else (lo, mid)
    return (lo + hi) / 2


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26 erf, |error| < 1.5e-7), without scipy."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def _argmax_shares(raw: np.ndarray, month: np.ndarray, dow: np.ndarray) -> tuple[float, np.ndarray]:
    """Which of the n days after a summer day holds their maximum: tomorrow's boost over the others (so that
    tomorrow's share matches how often it held the maximum; heat persists) and a weight per weekday (how often
    a weekday held it against its expected count, normalised to mean 1)."""
    tomorrow_won, ns = [], []
    observed, expected = np.zeros(7), np.zeros(7)
    for n in range(1, MAX_BLOCK_DAYS + 1):
        for d in range(len(raw) - n):
            block = raw[d + 1:d + n + 1]
            if not (month[d + 1] in SUMMER and month[d + n] in SUMMER) or not np.isfinite(block).all():
                continue
            k = int(np.argmax(block))
            tomorrow_won.append(k == 0)
            ns.append(n)
            observed[dow[d + 1 + k]] += 1
            expected += np.bincount(dow[d + 1:d + n + 1], minlength=7) / n
    weight = observed / np.maximum(expected, 1e-9)
    weight = weight / weight.mean()
    ns_arr, target = np.array(ns, dtype=float), float(np.sum(tomorrow_won))
    lo, hi = 0.0, 20.0  # P(tomorrow) = (1 + b) / (n + b) under equal weekdays; solve sum = observed count
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum((1 + mid) / (ns_arr + mid)) < target else (lo, mid)
    return (lo + hi) / 2, weight


def _three_way(known: float | None, rest: tuple[float, float] | None, block_cdf, block_range: tuple[float, float] | None,
               block_given_rest=None) -> tuple[float, float, float]:
    """P(known max stays, rest of today wins, later block wins) on a log-MW grid above `known`.

    rest ~ N(mean, sd); block_cdf(x): P(block max < x) when today's peak stays below `known`; block_given_rest(x):
    P(block max < x) given that today's peak is x (the later days move with today: a hotter today, hotter days
    after it), defaulting to block_cdf.
    """
    if rest is None and block_cdf is None:
        return 1.0, 0.0, 0.0
    if block_cdf is None:  # the month's last day: the rest of today takes all the known maximum does not keep
        p_known = float(_norm_cdf(np.array([(known - rest[0]) / rest[1]]))[0]) if known is not None else 0.0
        return p_known, 1.0 - p_known, 0.0
    lows, highs = [], []
    if rest is not None:
        lows.append(rest[0] - 6 * rest[1])
        highs.append(rest[0] + 6 * rest[1])
    if block_range is not None:
        lows.append(block_range[0])
        highs.append(block_range[1])
    lo = min(lows) if known is None else known
    hi = max(max(highs), lo + 1e-6)
    x = np.linspace(lo, hi, GRID_POINTS)
    f_block_known = float(block_cdf(np.array([lo]))[0]) if block_cdf is not None else 1.0
    if rest is None:
        p_known = f_block_known if known is not None else 0.0
        return p_known, 0.0, 1.0 - p_known
    given = block_given_rest or block_cdf
    f_block = given(x) if given is not None else np.ones_like(x)
    z = (x - rest[0]) / rest[1]
    pdf_rest = np.exp(-0.5 * z * z) / (rest[1] * math.sqrt(2 * math.pi))
    integrand = pdf_rest * f_block
    p_rest = float(np.sum((integrand[1:] + integrand[:-1]) / 2) * (x[1] - x[0]))
    p_known = float(_norm_cdf(np.array([z[0]]))[0]) * f_block_known if known is not None else 0.0
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
    at = to_utc(at)
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
    """What is known at `at`, computed once per call: ended hours, the rest of today, the anchor (today's peak)."""

    def __init__(self, ns: np.ndarray, values: np.ndarray, at_ns: int, model: PeakModel,
                 forecast: tuple[np.ndarray, np.ndarray] | None):
        self.ns, self.values, self.at_ns, self.model, self.forecast = ns, values, at_ns, model, forecast
        self.today, self.at_hour, _, _ = _local(at_ns)
        day_start, day_end = _day_start_ns(self.today), _day_start_ns(self.today + 1)
        self.rest_ns = np.arange(day_start, day_end, HOUR_NS)
        self.rest_ns = self.rest_ns[self.rest_ns + HOUR_NS > at_ns]
        _, _, year, month = _local(at_ns)
        a = np.searchsorted(ns, _month_hours(year, month)[0][0])
        known = math.log(values[a:].max()) if len(values) > a else None
        self.rest = _rest_of_today(self, self.rest_ns, known) if len(self.rest_ns) else None
        # the anchor: today's expected peak (the hours so far or the rest of today's expected maximum)
        wd = np.array(model.weekday_log)
        days = np.arange(self.today - ANOMALY_DAYS + 1, self.today + 1)
        bounds = np.searchsorted(ns, [_day_start_ns(int(d)) for d in range(days[0], self.today + 2)])
        peaks = np.array([values[a:b].max() if b - a >= 20 else np.nan for a, b in zip(bounds[:-1], bounds[1:])])
        so_far = values[bounds[-2]:].max() if len(values) > bounds[-2] else -np.inf
        expected = math.exp(self.rest[0]) if self.rest is not None else -np.inf
        today_peak = max(so_far, expected)
        if not np.isfinite(today_peak):  # no proxy (a gap): the last 24 ended hours stand for today
            today_peak = values[-24:].max()
        peaks[-1] = today_peak
        adj = np.log(peaks) - wd[(days + 3) % 7]  # 1970-01-01 was a Thursday (weekday 3)
        self.anchor_adj = float(adj[-1])
        self.wd_today = float(wd[(self.today + 3) % 7])
        self.prev_adj = adj[:-1][np.isfinite(adj[:-1])]
        self.anomaly = self.anomaly_of(self.anchor_adj)

    def anomaly_of(self, today_adj):
        """Today's anomaly (adjusted log peak minus the 14-day mean ending today) if its adjusted peak is today_adj."""
        if len(self.prev_adj) < ANOMALY_DAYS // 2:
            return 0.0 * today_adj
        return today_adj - (self.prev_adj.sum() + today_adj) / (len(self.prev_adj) + 1)

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
    rest = c.rest if rest_mask.any() else None

    future = np.unique(local_day[local_day > c.today])
    block_cdf = block_given_rest = block_range = None
    levels = np.array(QUANTILE_LEVELS)
    if len(future):
        n = min(len(future), MAX_BLOCK_DAYS)
        base, slope = np.array(m.block_quantiles[n - 1]), m.block_slope[n - 1]
        top = c.forecast_max(hours_ns[local_day > c.today])
        if top is not None:  # the forecast covers every later day of the month: a log-normal block maximum
            spread = FORECAST_SD_LOG[0] + FORECAST_SD_LOG[1] * len(future)
            inner = levels[1:-1]
            q = math.log(top) + spread * _norm_ppf(inner)
            block_cdf = lambda x: np.interp(x, q, inner, left=0.0, right=1.0)  # noqa: E731
            block_range = (float(q[0]), float(q[-1]))
        else:
            anchor = c.anchor_adj if known is None else min(c.anchor_adj, known - c.wd_today)
            q = base + anchor + slope * c.anomaly_of(anchor)
            block_cdf = lambda x: np.interp(x, q, levels, left=0.0, right=1.0)  # noqa: E731

            def block_given_rest(x: np.ndarray) -> np.ndarray:
                u = x - c.wd_today  # today's weekday-adjusted peak, if the rest of today reaches x
                return np.interp(c.wd_today - slope * c.anomaly_of(u), base, levels, left=0.0, right=1.0)

            block_range = (float(q[0]), float(base[-1] + c.anchor_adj + slope * c.anomaly + 0.1))

    p_known, p_rest, p_block = _three_way(known, rest, block_cdf, block_range, block_given_rest)
    if rest is not None:
        w = share * rest_mask
        if w.sum() > 0:
            p += p_rest * w / w.sum()
    if block_cdf is not None:
        day_share = np.array(m.argmax_weekday_weight)[(future + 3) % 7] * np.where(
            future == c.today + 1, 1.0 + m.next_day_boost, 1.0)
        w_day = share[None, :] * (local_day[None, :] == future[:, None])
        w_day /= w_day.sum(axis=1, keepdims=True)
        p += p_block * ((day_share / day_share.sum())[:, None] * w_day).sum(axis=0)
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


def _today_features(last1, last2, last3, y_rest, y_last1, y_last3, near) -> np.ndarray:
    """Rows of the rest-of-today model's inputs (logs, arrays of one length), as `PeakModel.today_coef` reads them."""
    last1 = np.asarray(last1, dtype=float)
    cols = [np.ones_like(last1), last1, last2, last3, y_rest, y_last1, y_last3, np.clip(near, -NEAR_CLIP, NEAR_CLIP)]
    return np.column_stack([np.broadcast_to(np.asarray(x, dtype=float), last1.shape) for x in cols])


def _rest_of_today(c: _Context, rest_ns: np.ndarray, known: float | None) -> tuple[float, float] | None:
    """(mean, sd) of the log maximum over today's hours not yet ended: the forecast where it covers them, else the
    fitted linear model on the last ended hours and the same hours yesterday (`PeakModel.today_coef`), its spread.

    A lagging feed (the hour before the first still to come has not arrived): the model of the hour after the last
    ended one forecasts the maximum from that hour on, the missing hours included - never the lower maximum a
    later hour's model would give from a morning load it takes for the last hour's. Lagging past midnight (no hour
    of today has ended): persistence, the maximum of the last 24 ended hours at the midnight model's spread (its
    RMS log error is 0.033 on summer days near the month's maximum, 2021-2024; the midnight spread is 0.036)."""
    top = c.forecast_max(rest_ns)
    if top is not None:
        return math.log(top), FORECAST_SD_LOG[0]

    def log_load(t: int) -> float:
        i = int(np.searchsorted(c.ns, t))
        return math.log(c.values[i]) if i < len(c.ns) and c.ns[i] == t and c.values[i] > 0 else math.nan

    anchor = int(rest_ns[0]) - HOUR_NS
    if not math.isfinite(log_load(anchor)):
        anchor = int(c.ns[-1])
        if anchor + HOUR_NS < _day_start_ns(c.today):
            return math.log(c.values[-24:].max()), c.model.today_sd_log[0]
        rest_ns = np.arange(anchor + HOUR_NS, int(rest_ns[-1]) + HOUR_NS, HOUR_NS)
    last = [log_load(anchor - k * HOUR_NS) for k in (0, 1, 2)]
    if not math.isfinite(last[0]):
        return None
    last = [v if math.isfinite(v) else last[0] for v in last]
    wanted = rest_ns - DAY_NS
    pos = np.searchsorted(c.ns, wanted)
    pos = pos[pos < len(c.ns)]
    hit = pos[np.isin(c.ns[pos], wanted)]
    if len(hit) == 0:
        return None
    y_rest = math.log(c.values[hit].max())
    y_last1, y_last3 = log_load(anchor - DAY_NS), log_load(anchor - DAY_NS - 2 * HOUR_NS)
    if not math.isfinite(y_last1):
        return None
    y_last3 = y_last3 if math.isfinite(y_last3) else y_last1
    proxy = y_rest + last[0] - y_last1
    near = proxy - known if known is not None else 0.0
    h = _local(int(rest_ns[0]))[1]
    x = _today_features([last[0]], [last[1]], [last[2]], [y_rest], [y_last1], [y_last3], [near])
    return float((x @ np.array(c.model.today_coef[h]))[0]), c.model.today_sd_log[h]


def rest_of_today(load: pd.DataFrame, at: pd.Timestamp, *, model: PeakModel = FITTED) -> tuple[float, float] | None:
    """(mean, sd) of the log maximum of ERCOT load over today's hours not ended at `at` (Central day), from the
    load of hours that have ended only; None where the inputs are missing (the benchmark scores it)."""
    at = to_utc(at)
    s = _hourly(load)
    ns = _as_ns(pd.DatetimeIndex(s.index))
    lo, hi = np.searchsorted(ns, at.value - (ANOMALY_DAYS + 3) * DAY_NS), np.searchsorted(ns, at.value - HOUR_NS,
                                                                                          side="right")
    if hi <= lo:
        return None
    return _Context(ns[lo:hi], s.to_numpy()[lo:hi], at.value, model, None).rest


def climatology_probabilities(steps: pd.DatetimeIndex, *, model: PeakModel = FITTED,
                               months: Sequence[int] = (6, 7, 8, 9)) -> pd.Series:
    """P(the hour starting at each step holds its month's 4CP interval) knowing nothing of the load: the fitted
    hour-of-day share over the days in the month (0.02 at 16:00 CT: 62 % over 31 days), 0 outside `months`.
    The stated fallback when ERCOT load is missing or past its staleness limit, and the benchmark's baseline."""
    local = pd.DatetimeIndex(steps).tz_convert(MARKET_TZ)
    p = np.array(model.hour_share)[np.asarray(local.hour)] / np.asarray(local.days_in_month)
    p = np.where(np.isin(np.asarray(local.month), [int(m) for m in months]), p, 0.0)
    return pd.Series(p, index=steps, name="four_cp_probability")


def peak_reasons(load: pd.DataFrame, at: pd.Timestamp, step: pd.Timestamp, *, model: PeakModel = FITTED,
                 load_forecast_mw: pd.Series | None = None, months: Sequence[int] = (6, 7, 8, 9)) -> str:
    """Short operator words for one step: its p, the step's day's expected peak against the month's maximum so far,
    the hour (Central) and the days left, e.g. "p = 0.12: today's expected peak 98.6 % of the month's max so far
    (81,010 MW), 16:00 CT, 11 days left in July"."""
    at = to_utc(at)
    step = to_utc(step)
    p = float(peak_probabilities(load, at, pd.DatetimeIndex([step]), model=model, load_forecast_mw=load_forecast_mw,
                                 months=months).iloc[0])
    local = step.tz_convert(MARKET_TZ)
    if local.month not in set(months):
        return f"p = 0: {local:%B} is not a 4CP month"
    hours_ns, _, local_day = _month_hours(local.year, local.month)
    known = load["system_load_mw"][(load.index >= pd.Timestamp(hours_ns[0], tz="UTC"))
                                   & (load.index + pd.Timedelta(hours=1) <= at)].dropna()
    step_day = int(local.tz_localize(None).normalize().value // DAY_NS)
    today = _local(at.value)[0]
    days_left = int(len(np.unique(local_day[local_day > max(today, step_day)])))
    where = f"{local:%H:%M} CT, {days_left} days left in {local:%B}"
    if known.empty:
        return f"p = {p:.3f}: no hour of {local:%B} has ended yet, {where}"
    month_max = float(known.max())
    if step + pd.Timedelta(hours=1) <= at:
        return f"p = {p:.3f}: an ended hour ({local:%Y-%m-%d %H:%M} CT); month's max so far {month_max:,.0f} MW"
    index = load.index
    lo = index.searchsorted(at - pd.Timedelta(days=ANOMALY_DAYS + 3))
    hi = index.searchsorted(at - pd.Timedelta(hours=1), side="right")
    s = load["system_load_mw"].iloc[lo:hi].dropna()
    forecast = None
    if load_forecast_mw is not None and len(load_forecast_mw):
        f = load_forecast_mw.dropna().astype(float).sort_index()
        forecast = (_as_ns(pd.DatetimeIndex(f.index)), f.to_numpy())
    c = _Context(_as_ns(pd.DatetimeIndex(s.index)), s.to_numpy(dtype=float), at.value, model, forecast)
    if step_day == c.today:
        label, expected = "today's", math.exp(c.anchor_adj + c.wd_today)
    else:
        lead = min(max(step_day - c.today, 1), MAX_LEAD_DAYS) - 1
        wd = model.weekday_log[(step_day + 3) % 7]
        expected = math.exp(c.anchor_adj + wd + model.persist_mu_log[lead])
        label = f"{local:%a %d %b}'s"
    return (f"p = {p:.3f}: {label} expected peak {expected / month_max:.1%} of the month's max so far "
            f"({month_max:,.0f} MW), {where}")
