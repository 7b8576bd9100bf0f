"""PNG charts for backtests (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def stacked_power_chart(steps: pd.DataFrame, times: pd.DatetimeIndex, title: str, path: Path) -> Path:
    """Stacked MW by pool over time, with the real-time power price on a second axis."""
    pools = [c for c in steps.columns if c.endswith("_kw") and c not in ("site_power_kw", "reserve_kw")]
    times = pd.DatetimeIndex(times)
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.stackplot(times, [steps[c] / 1000.0 for c in pools], labels=[c.removesuffix("_kw") for c in pools], step="post", alpha=0.85)
    ax.set_ylabel("IT power by pool (MW)")
    ax.set_xlabel("time (UTC)")
    ax2 = ax.twinx()
    ax2.plot(times, steps["power_price_usd_per_mwh"], color="black", linewidth=0.8, label="real-time price")
    ax2.set_ylabel("real-time power price (USD/MWh)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax2.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cumulative_profit_chart(profits: dict[str, pd.Series], title: str, path: Path) -> Path:
    """Cumulative realised profit per strategy (top) and each strategy's lead over the baseline (bottom):
    the totals differ by a few percent, so the difference is what makes them readable."""
    baseline = "always-on" if "always-on" in profits else next(iter(profits))
    base = profits[baseline].cumsum()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1.3]})
    for name, series in profits.items():
        ax.plot(series.index, series.cumsum() / 1e6, label=name, linewidth=1.4)
        ax2.plot(series.index, (series.cumsum() - base) / 1e3, label=name, linewidth=1.4)
    ax.set_ylabel("cumulative profit (million USD)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax2.set_ylabel(f"lead over {baseline} (thousand USD)")
    ax2.set_xlabel("time (UTC)")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_chart(df: pd.DataFrame, param: str, pools: list[str], flips: list[float], title: str, path: Path) -> Path:
    """Step-0 MW per pool (stacked) and horizon profit against one swept parameter; flips marked."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    ax.stackplot(df[param], [df[f"{p}_mw"] for p in pools], labels=pools, alpha=0.85)
    ax.set_ylabel("IT power at step 0 (MW)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax2.plot(df[param], df["profit_usd"] / 1000.0, color="black")
    ax2.set_ylabel("horizon profit (thousand USD)")
    ax2.set_xlabel(param)
    for x in flips:
        for a in (ax, ax2):
            a.axvline(x, color="red", linestyle="--", linewidth=0.8)
    ax.set_title(title + ("  (red: allocation flips)" if flips else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_heatmap(df: pd.DataFrame, x: str, y: str, value: str, label: str, title: str, path: Path) -> Path:
    table = df.pivot_table(index=y, columns=x, values=value)
    fig, ax = plt.subplots(figsize=(10, 7))
    mesh = ax.pcolormesh(table.columns, table.index, table.to_numpy(), shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
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
        values = [r.get(f"{p}_mw", 0.0) for r in rows]
        ax.bar(names, values, bottom=bottom, label=p)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("IT power at step 0 (MW)")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=20)
    ax2.bar(names, [r["profit_usd"] / 1000.0 for r in rows], color="tab:gray")
    ax2.set_ylabel("horizon profit (thousand USD)")
    ax2.tick_params(axis="x", rotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
