"""PNG charts for backtests, sweeps and what-ifs (matplotlib, Agg backend: no display needed): axes labelled
with what they show and its unit, thousands separators, the interconnect cap on power charts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

UNITS = {"_usd_per_mwh": "USD/MWh", "_usd_per_th_day": "USD/TH/day", "_usd_per_mw_hour": "USD/MW-h",
         "_usd_per_gpu_hour": "USD/GPU-h", "_kw_per_step": "kW per step", "_kw": "kW", "_mw": "MW", "_usd": "USD",
         "_c": "°C", "_minutes": "min", "_hours": "h", "_fraction": "share"}
NAMES = {"btc_usd": "BTC price (USD)", "power_price_usd_per_mwh": "power price (USD/MWh)",
         "hashprice_usd_per_th_day": "hashprice (USD/TH/day)", "reserve_price_usd_per_mw_hour": "reserve price (USD/MW-h)"}


def axis_label(name: str) -> str:
    """An axis label a person reads without the README: `btc_usd` -> `BTC price (USD)`,
    `gpu_rate.h100` -> `h100 GPU rate (USD/GPU-h)`, `set:site.interconnect_cap_kw` -> `site.interconnect_cap_kw (kW)`."""
    if name in NAMES:
        return NAMES[name]
    if name.startswith("gpu_rate."):
        return f"{name.split('.', 1)[1]} GPU rate (USD/GPU-h)"
    key = name.removeprefix("set:")
    unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), None)
    return f"{key} ({unit})" if unit else key


def wrapped(title: str, fig) -> str:
    """A title broken into lines that fit the figure's width (about 9 characters an inch at the default size), so
    a long site name or parameter list is never clipped at the figure's edge."""
    return "\n".join(textwrap.wrap(title, max(int(fig.get_figwidth() * 9), 30)))


def thousands(axis) -> None:
    """Tick labels with thousands separators, no scientific notation, and the fewest decimals that print every
    tick exactly: ticks 0.2 apart near 242 read 242.0, 242.2, … (whole numbers printed them as 242, 242)."""

    def label(value: float, _pos) -> str:
        ticks = np.asarray(axis.get_majorticklocs(), dtype=float)
        if ticks.size == 0:
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.4g}"
        tol = 1e-9 * max(1.0, float(np.abs(ticks).max()))
        digits = next((d for d in range(7) if np.allclose(np.round(ticks, d), ticks, rtol=0, atol=tol)), 6)
        return f"{value:,.{digits}f}"

    axis.set_major_formatter(FuncFormatter(label))


def stacked_power_chart(steps: pd.DataFrame, times: pd.DatetimeIndex, title: str, path: Path,
                        cap_kw: float | None = None, pue: float = 1.0) -> Path:
    """Stacked IT MW by pool over time against the interconnect cap (in IT MW: cap / PUE), with the real-time
    power price drawn as steps like the power, on a second axis."""
    pools = [c for c in steps.columns if c.endswith("_kw") and c not in ("site_power_kw", "reserve_kw")]
    times = pd.DatetimeIndex(times)
    # drawn as steps: each value holds until the next step starts, so the last one needs its end as well
    step = times[1] - times[0] if len(times) > 1 else pd.Timedelta(hours=1)
    times = times.append(pd.DatetimeIndex([times[-1] + step]))
    steps = pd.concat([steps, steps.iloc[[-1]]], ignore_index=True)
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.stackplot(times, [steps[c] / 1000.0 for c in pools], labels=[c.removesuffix("_kw") for c in pools], step="post", alpha=0.85)
    ax.set_xlim(times[0], times[-1])
    if cap_kw is not None:
        ax.axhline(cap_kw / pue / 1000.0, color="tab:red", linestyle="--", linewidth=1.2,
                   label=f"interconnect {cap_kw / 1000:,.0f} MW / PUE {pue:g}")
    ax.set_ylabel("IT power by pool (MW)")
    ax.set_xlabel("time (UTC)")
    ax.set_ylim(bottom=0)
    thousands(ax.yaxis)
    ax2 = ax.twinx()
    ax2.step(times, steps["power_price_usd_per_mwh"], where="post", color="black", linewidth=0.8, label="real-time price")
    ax2.set_ylabel("real-time power price (USD/MWh)")
    thousands(ax2.yaxis)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = ax2.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=8)
    ax.set_title(wrapped(title, fig))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def usd_scale(values) -> tuple[float, str]:
    """One unit for money a chart shows: million USD from 1 M, thousand USD from 10 k, else USD."""
    top = float(np.nanmax(np.abs(np.asarray(values, dtype=float)))) if np.size(values) else 0.0
    if top >= 1e6:
        return 1e6, "million USD"
    return (1e3, "thousand USD") if top >= 1e4 else (1.0, "USD")


def cumulative_profit_figure(profits: dict[str, pd.Series], title: str):
    """Each strategy's lead over always-on (top: the totals differ by a few percent, so the difference is
    what tells them apart) and cumulative realised profit (bottom), both panels in one money unit."""
    baseline = "always-on" if "always-on" in profits else next(iter(profits))
    base = profits[baseline].cumsum()
    totals = {name: series.cumsum() for name, series in profits.items()}
    leads = {name: total - base for name, total in totals.items()}
    scale, unit = usd_scale(np.concatenate([v.to_numpy() for v in [*totals.values(), *leads.values()]]))
    if len(profits) == 1:  # nothing to lead: the cumulative profit alone
        fig, ax2 = plt.subplots(figsize=(12, 5))
        axes = (ax2,)
        ax2.set_title(wrapped(title, fig))
    else:
        fig, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
        ax, ax2 = axes
        for name in profits:
            ax.plot(leads[name].index, leads[name] / scale, label=name, linewidth=1.4)
        ax.set_ylabel(f"lead over {baseline} ({unit})")
        ax.set_title(wrapped(title, fig))
        ax.grid(alpha=0.3)
        ax.legend()
    for name in profits:
        ax2.plot(totals[name].index, totals[name] / scale, label=name, linewidth=1.4)
    ax2.set_ylabel(f"cumulative profit ({unit})")
    ax2.set_xlabel("time (UTC)")
    ax2.grid(alpha=0.3)
    if len(profits) == 1:
        ax2.legend()
    for a in axes:
        thousands(a.yaxis)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def cumulative_profit_chart(profits: dict[str, pd.Series], title: str, path: Path) -> Path:
    """`cumulative_profit_figure` written to `path` (PNG)."""
    fig = cumulative_profit_figure(profits, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_chart(df: pd.DataFrame, param: str, pools: list[str], flips: list[float], title: str, path: Path) -> Path:
    """Step-0 MW per pool (stacked) and horizon profit against one swept parameter; flips marked, and points with
    no feasible allocation marked "infeasible" (no power, no profit line there)."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    ax.stackplot(df[param], [df[f"{p}_mw"].fillna(0.0) for p in pools], labels=pools, alpha=0.85)
    bad = df.loc[df["status"] == "infeasible", param] if "status" in df else pd.Series(dtype=float)
    for x in bad:
        for a in (ax, ax2):
            a.axvline(x, color="tab:gray", linestyle=":", linewidth=1.0)
        ax.text(x, 0.5, "infeasible", rotation=90, ha="right", va="center", color="tab:red", fontsize=9,
                transform=ax.get_xaxis_transform())
    if len(df[param]):
        lo, hi = float(df[param].min()), float(df[param].max())
        pad = (hi - lo) * 0.03 or max(abs(lo) * 0.05, 1.0)
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylabel("IT power at step 0 (MW)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax2.plot(df[param], df["profit_usd"] / 1000.0, color="black")
    ax2.set_ylabel("horizon profit (thousand USD)")
    ax2.set_xlabel(axis_label(param))
    thousands(ax2.xaxis)
    thousands(ax2.yaxis)
    for x in flips:
        for a in (ax, ax2):
            a.axvline(x, color="red", linestyle="--", linewidth=0.8)
    ax.set_title(wrapped(title + ("  (red: allocation flips)" if flips else ""), fig))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_heatmap(df: pd.DataFrame, x: str, y: str, value: str, label: str, title: str, path: Path) -> Path:
    table = df.pivot_table(index=y, columns=x, values=value, dropna=False)
    fig, ax = plt.subplots(figsize=(10, 7))
    mesh = ax.pcolormesh(table.columns, table.index, table.to_numpy(), shading="nearest", cmap="viridis")
    if "status" in df:  # cells with no feasible allocation: blank, and said so
        for xv, yv in df.loc[df["status"] == "infeasible", [x, y]].itertuples(index=False, name=None):
            ax.text(xv, yv, "infeasible", ha="center", va="center", color="tab:red", fontsize=8)
    if len(table.columns) <= 12:  # a short grid: ticks at its values (the cells reach half a step past them)
        ax.set_xticks(table.columns)
    if len(table.index) <= 12:
        ax.set_yticks(table.index)
    bar = fig.colorbar(mesh, ax=ax, label=label)
    thousands(bar.ax.yaxis)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    thousands(ax.xaxis)
    thousands(ax.yaxis)
    ax.set_title(wrapped(title, fig))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def whatif_chart(rows: list[dict], pools: list[str], title: str, path: Path) -> Path:
    """Side-by-side scenarios: step-0 MW per pool (stacked bars) and horizon profit."""
    names = [r["case"] for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    bottom = [0.0] * len(rows)
    for p in pools:
        values = list(np.nan_to_num([r.get(f"{p}_mw", 0.0) for r in rows]))
        ax.bar(names, values, bottom=bottom, label=p)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("IT power at step 0 (MW)")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=20)
    ax2.bar(names, list(np.nan_to_num([r["profit_usd"] / 1000.0 for r in rows])), color="tab:gray")
    for i, r in enumerate(rows):
        if r.get("status") == "infeasible":
            for a in (ax, ax2):
                a.text(i, 0, "infeasible", rotation=90, ha="center", va="bottom", color="tab:red", fontsize=9)
    ax2.set_ylabel("horizon profit (thousand USD)")
    thousands(ax2.yaxis)
    ax2.tick_params(axis="x", rotation=20)
    fig.suptitle(wrapped(title, fig))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def four_cp_chart(steps: dict[str, pd.DataFrame], load_mw: pd.Series, title: str, path: Path,
                  flag_probability: float = 0.01) -> Path:
    """Per summer in the period, two panels: ERCOT load (GW) with the official 4CP peak hours, the hours the
    rolling strategy's forecast flagged (step-0 probability >= `flag_probability`) and strike-4cp's call-window
    hours; below, each strategy's site-meter MW, so a peak hour with the site still on shows at a glance. Legends
    sit to the right of the panels, off the curves."""
    first = next(iter(steps.values()))
    times = pd.DatetimeIndex(first["interval_start_utc"])
    summers = sorted(set(times[first["four_cp_peak"].to_numpy() > 0].year) | set(times[times.month.isin([6, 7, 8, 9])].year))
    summers = summers or sorted(set(times.year))
    fig, axes = plt.subplots(2 * len(summers), 1, figsize=(13, 6.5 * len(summers)), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 1] * len(summers)})
    for i, year in enumerate(summers):
        ax, ax2 = axes[2 * i, 0], axes[2 * i + 1, 0]
        in_year = times.year == year
        t = times[in_year]
        load = load_mw.reindex(t)
        ax.plot(t, load / 1000.0, color="tab:blue", linewidth=0.7, label="ERCOT load")
        peaks = t[first["four_cp_peak"].to_numpy()[in_year] > 0]
        ax.scatter(peaks, load.reindex(peaks) / 1000.0, color="tab:red", zorder=5, s=40, label="official 4CP peak hour")
        top = float(load.max() / 1000.0) if load.notna().any() else 1.0
        if not load.notna().any():
            ax.text(0.5, 0.5, "no ERCOT load in this window: 4CP was priced at the hour-of-day climatology",
                    transform=ax.transAxes, ha="center", va="center", color="tab:red")
            ax.set_yticks([])  # the markers' height means nothing without load
        if "rolling" in steps:
            p = steps["rolling"]["four_cp_flag"].to_numpy()[in_year]
            flagged = t[np.nan_to_num(p) >= flag_probability]
            ax.scatter(flagged, np.full(len(flagged), top * 1.02), marker="|", color="tab:orange", s=60,
                       label=f"rolling: forecast p >= {flag_probability:g} ({len(flagged)} h)")
        if "strike-4cp" in steps:
            called = t[np.nan_to_num(steps["strike-4cp"]["four_cp_flag"].to_numpy()[in_year]) > 0]
            ax.scatter(called, np.full(len(called), top * 1.05), marker="|", color="tab:gray", s=60,
                       label=f"strike-4cp: call-window hours ({len(called)} h)")
        ax.set_ylabel("ERCOT load (GW)")
        ax.set_title(wrapped(title + (f" (summer {year})" if len(summers) > 1 else ""), fig))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.grid(alpha=0.3)
        for name, df in steps.items():
            ax2.plot(t, df["site_power_kw"].to_numpy()[in_year] / 1000.0, linewidth=0.6, label=name, alpha=0.8)
        for x in peaks:
            ax2.axvline(x, color="tab:red", linestyle="--", linewidth=0.8)
        ax2.set_ylabel("site-meter power (MW)")
        ax2.set_xlabel("time (UTC); dashed red lines: the official 4CP peak hours (red dots above)")
        ax2.set_ylim(bottom=0)
        if len(t):
            for a in (ax, ax2):  # the two panels share their time axis, to the end of the last hour
                a.set_xlim(t[0], t[-1] + pd.Timedelta(hours=1))
        ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
