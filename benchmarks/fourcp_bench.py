"""Benchmark: calibration of the 4CP peak forecaster, fitted on 2021-2023, validated on 2024 (embedded data).

    python -m benchmarks.fourcp_bench                         # summers 2021-2024, chart docs/fourcp-forecast-2024.png
    python -m benchmarks.fourcp_bench --years 2024 --no-chart

Decisions are hourly: at each hour `at` of June-September the forecaster gives p for the 24 steps at..at+23 h,
from load that has ended by `at` only. Per summer it prints the Brier score of all (decision, step) pairs against
a climatology baseline (the fitted hour-of-day share / days in the month, the same at every decision), a
reliability table, the p each official peak hour got 24 h / 6 h / 1 h before and at its start, and how many hours
of the summer were flagged at p >= 0.01 / 0.02 / 0.05 / 0.1 / 0.2 by the decision made at their start (the low
thresholds matter: at 68.5 USD/kW-year, p = 0.01 already costs ~170 USD/MWh, above any hash margin), and the spread
of the rest-of-today forecast at the 12:00-15:00 CT decisions that start the afternoon ramp against the plain
proxy's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.calendar import MARKET_TZ
from hashpivot.optimizer.peak_forecast import (
    FITTED,
    NEAR_CLIP,
    PeakModel,
    climatology_probabilities,
    fit_peak_model,
    peak_probabilities,
    rest_of_today,
)

HORIZON = 24
REACH = 25  # steps computed per decision: the 24-step horizon, plus one to report p 24 h before each peak
LEADS_H = (24, 6, 1, 0)
THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2)
SPREAD_HOURS = (12, 13, 14, 15)  # Central decision hours whose rest-of-today forecast decides the afternoon ramp
BINS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 1.0000001)


def summer_hours(year: int) -> pd.DatetimeIndex:
    """UTC hour starts of June 1 00:00 .. October 1 00:00 Central."""
    start = pd.Timestamp(year=year, month=6, day=1, tz=MARKET_TZ).tz_convert("UTC")
    end = pd.Timestamp(year=year, month=10, day=1, tz=MARKET_TZ).tz_convert("UTC")
    return pd.date_range(start, end, freq="h", inclusive="left")


def decisions(load: pd.DataFrame, year: int, model: PeakModel) -> np.ndarray:
    """p[i, k]: the probability the decision at hour i of the summer gives to step i + k (k = 0..24)."""
    hours = summer_hours(year)
    p = np.zeros((len(hours), REACH))
    for i, at in enumerate(hours):
        p[i] = peak_probabilities(load, at, pd.date_range(at, periods=REACH, freq="h"), model=model).to_numpy()
    return p


def peak_hours(four_cp: pd.DataFrame, year: int) -> pd.DatetimeIndex:
    """The UTC hour starts holding the official 4CP intervals of `year`."""
    rows = four_cp[four_cp["year"] == year]
    return pd.DatetimeIndex(pd.to_datetime(rows["interval_start_utc"], utc=True)).floor("h")


def score(p: np.ndarray, hours: pd.DatetimeIndex, peaks: pd.DatetimeIndex, model: PeakModel) -> dict:
    """Brier, climatology Brier, reliability rows, peak p by lead, flagged hours for one summer."""
    n = len(hours)
    horizon = p[:, :HORIZON]
    target_idx = np.arange(n)[:, None] + np.arange(HORIZON)[None, :]
    valid = target_idx < n
    is_peak = np.isin(np.arange(n), hours.get_indexer(peaks))
    y = np.where(valid, is_peak[np.minimum(target_idx, n - 1)], False).astype(float)
    clim_hour = climatology_probabilities(hours, model=model).to_numpy()
    clim = np.where(valid, clim_hour[np.minimum(target_idx, n - 1)], 0.0)
    pv, yv, cv = horizon[valid], y[valid], clim[valid]
    brier, brier_clim = float(np.mean((pv - yv) ** 2)), float(np.mean((cv - yv) ** 2))
    rows = []
    bins = np.digitize(pv, BINS) - 1
    for b in range(len(BINS) - 1):
        sel = bins == b
        if sel.any():
            rows.append((BINS[b], min(BINS[b + 1], 1.0), int(sel.sum()), float(pv[sel].mean()), float(yv[sel].mean()),
                         int(yv[sel].sum())))
    at_start = p[:, 0]
    peak_rows = []
    for peak in peaks:
        j = hours.get_loc(peak)
        peak_rows.append((peak, [float(p[j - lead, lead]) if j - lead >= 0 else float("nan")
                                 for lead in LEADS_H]))
    flagged = {t: int((at_start >= t).sum()) for t in THRESHOLDS}
    caught = {t: int(sum(at_start[hours.get_loc(pk)] >= t for pk in peaks)) for t in THRESHOLDS}
    return {"brier": brier, "brier_climatology": brier_clim, "skill": 1 - brier / brier_clim, "pairs": int(valid.sum()),
            "reliability": rows, "peaks": peak_rows, "flagged": flagged, "peaks_flagged": caught,
            "expected_peaks": float(at_start.sum())}


def today_spread(load: pd.DataFrame, year: int, model: PeakModel) -> dict[int, tuple[float, float, int]]:
    """Per Central decision hour: the log error spread of the model's rest-of-today maximum and of the plain proxy
    (yesterday's maximum over the same hours x the last ended hour's ratio to yesterday), over the summer days whose
    proxy is within NEAR_CLIP of the month-to-date maximum (days 2.. of each month: the days that can matter)."""
    mw = load["system_load_mw"].astype(float)
    out = {}
    for h in SPREAD_HOURS:
        model_err, proxy_err = [], []
        for day in pd.date_range(f"{year}-06-01", f"{year}-09-30", freq="D"):
            if day.day == 1:
                continue
            at = pd.Timestamp(year=year, month=day.month, day=day.day, hour=h, tz=MARKET_TZ).tz_convert("UTC")
            end = (pd.Timestamp(year=year, month=day.month, day=day.day, tz=MARKET_TZ) + pd.Timedelta(days=1))
            rest = mw[at:end.tz_convert("UTC") - pd.Timedelta(hours=1)]
            month_start = pd.Timestamp(year=year, month=day.month, day=1, tz=MARKET_TZ).tz_convert("UTC")
            month_max = mw[month_start:at - pd.Timedelta(hours=1)].max()
            last = at - pd.Timedelta(hours=1)
            proxy = (mw.reindex(rest.index - pd.Timedelta(days=1)).max() * mw.get(last, np.nan)
                     / mw.get(last - pd.Timedelta(days=1), np.nan))
            forecast = rest_of_today(load, at, model=model)
            if forecast is None or not np.isfinite(proxy) or np.log(proxy / month_max) <= -NEAR_CLIP:
                continue
            actual = np.log(rest.max())
            model_err.append(actual - forecast[0])
            proxy_err.append(actual - np.log(proxy))
        out[h] = (float(np.std(model_err)), float(np.std(proxy_err)), len(model_err))
    return out


def print_summer(year: int, label: str, s: dict, seconds: float) -> None:
    print(f"\n== summer {year} ({label}), {s['pairs']:,} (decision, step) pairs, {seconds:.1f} s ==")
    print(f"Brier {s['brier']:.6f}  climatology {s['brier_climatology']:.6f}  skill {s['skill']:+.1%}  "
          f"(sum of p at the hour's start over the summer: {s['expected_peaks']:.2f}; 4 peaks happened)")
    print("reliability:   p bin        pairs   mean p   observed   peaks")
    for lo, hi, count, mean_p, freq, hits in s["reliability"]:
        print(f"          [{lo:5.3f}, {hi:5.3f})  {count:7,d}   {mean_p:6.4f}    {freq:6.4f}   {hits:4d}")
    print("peak hour (UTC)            p at " + "  ".join(f"{lead:>2d} h before" if lead else "  at start" for lead in LEADS_H))
    for peak, ps in s["peaks"]:
        local = peak.tz_convert(MARKET_TZ)
        print(f"{peak:%Y-%m-%d %H:%M} ({local:%H:%M} CT)   " + "  ".join(f"{x:11.3f}" for x in ps))
    print("hours flagged by the decision at their start: "
          + ", ".join(f"p >= {t}: {s['flagged'][t]} h ({s['peaks_flagged'][t]}/4 peaks)" for t in THRESHOLDS))
    print("rest-of-today log error spread, model vs plain proxy (days near the month's max): "
          + ", ".join(f"{h}:00 CT {m:.4f} vs {p:.4f} ({n} days)" for h, (m, p, n) in s["spread"].items()))


def chart(load: pd.DataFrame, p: np.ndarray, hours: pd.DatetimeIndex, peaks: pd.DatetimeIndex, year: int,
          path: str) -> None:
    """Per month: ERCOT load (MW), p at each hour's start, the official peaks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    mw = load["system_load_mw"].reindex(hours)
    local = hours.tz_convert(MARKET_TZ).tz_localize(None)
    fig, axes = plt.subplots(4, 1, figsize=(13, 12))
    for ax, month in zip(axes, (6, 7, 8, 9)):
        sel = local.month == month
        ax.plot(local[sel], mw[sel].to_numpy() / 1000, color="tab:gray", lw=0.8, label="ERCOT native load (GW)")
        ax.set_ylabel("load, GW")
        ax2 = ax.twinx()
        ax2.fill_between(local[sel], p[sel, 0], step="post", color="tab:red", alpha=0.6,
                         label="P(hour holds the 4CP interval), decided at its start")
        ax2.set_ylim(0, max(0.5, float(p[sel, 0].max()) * 1.1))
        ax2.set_ylabel("probability")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=2))
        for peak in peaks:
            pl = peak.tz_convert(MARKET_TZ).tz_localize(None)
            if pl.month == month:
                ax.axvline(pl, color="tab:blue", ls="--", lw=1.2, label=f"official 4CP {pl:%d %b %H:%M} CT")
        ax.set_title(f"{pd.Timestamp(year=year, month=month, day=1):%B %Y}")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    axes[-1].set_xlabel("Central time")
    fig.suptitle("4CP forecaster (fitted 2021-2023) on summer 2024: load, hourly peak probability, official peaks")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[2021, 2022, 2023, 2024])
    parser.add_argument("--chart", default="docs/fourcp-forecast-2024.png")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args()
    market = load_market_data()
    t0 = time.perf_counter()
    model = fit_peak_model(market.load, market.four_cp_intervals, (2021, 2022, 2023))
    print(f"fit on 2021-2023 in {time.perf_counter() - t0:.1f} s; equals the module's FITTED: {model == FITTED}")
    for year in args.years:
        t0 = time.perf_counter()
        p = decisions(market.load, year, model)
        seconds = time.perf_counter() - t0
        hours = summer_hours(year)
        peaks = peak_hours(market.four_cp_intervals, year)
        label = "in-sample" if year in model.years else "validation"
        result = score(p, hours, peaks, model)
        result["spread"] = today_spread(market.load, year, model)
        print_summer(year, label, result, seconds)
        if year == 2024 and not args.no_chart:
            chart(market.load, p, hours, peaks, year, args.chart)
            print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
