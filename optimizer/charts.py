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
    """Cumulative realised profit (USD) per strategy."""
    fig, ax = plt.subplots(figsize=(12, 5))
    for name, series in profits.items():
        ax.plot(series.index, series.cumsum() / 1e6, label=name, linewidth=1.4)
    ax.set_ylabel("cumulative profit (million USD)")
    ax.set_xlabel("time (UTC)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
