"""The console's chart, drawn on the server as SVG (matplotlib, no pyplot, no third-party JavaScript): the
last 48 h and the planned horizon — power price, site kW by pool stacked (IT kW × PUE, so the stack's top is
the site meter), the interconnect cap, and 4CP probability when the decision carries it."""

from __future__ import annotations

import io
import threading
from datetime import datetime

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from hashpivot.models.calendar import to_utc
from hashpivot.models.decision import Decision, load_decision

COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac", "#e15759"]
_DRAWING = threading.Lock()  # matplotlib's text and font caches are shared between threads


def past_power(history: pd.DataFrame, pue: float) -> pd.DataFrame:
    """Site kW by pool at step 0 of each stored decision (index: when it was decided, UTC)."""
    rows = {}
    for r in history.itertuples(index=False):
        doc = load_decision(r.document, f"decision {r.seq}")
        at = to_utc(doc.decided_at_utc or r.decided_at_utc)
        rows[at] = {p.name: p.power_kw * (doc.site.pue or pue) for p in doc.pools}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index().fillna(0.0)


def planned(doc: Decision | None, four_cp_field: str | None) -> tuple[pd.DataFrame, pd.Series, pd.Series | None]:
    """The last decision's horizon: site kW by pool, forecast price and (if present) 4CP probability per step."""
    if doc is None or not doc.schedule:
        return pd.DataFrame(), pd.Series(dtype=float), None
    idx = pd.DatetimeIndex([to_utc(s.interval_start_utc) for s in doc.schedule])
    kw = pd.DataFrame([{k: v * doc.site.pue for k, v in s.pools_power_kw.items()} for s in doc.schedule], index=idx).fillna(0.0)
    price = pd.Series([s.power_price_usd_per_mwh for s in doc.schedule], index=idx)
    cp = None
    if four_cp_field:
        cp = pd.Series([getattr(s, four_cp_field) for s in doc.schedule], index=idx, dtype=float)
    return kw, price, cp


def _thousands(axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def chart_svg(past_kw: pd.DataFrame, plan_kw: pd.DataFrame, past_price: pd.Series, plan_price: pd.Series,
              cap_kw: float | None, now: datetime, four_cp: pd.Series | None = None, step_minutes: int = 60) -> str:
    """The SVG text. Past decisions are solid, the planned horizon lighter; a vertical line marks now."""
    pools = list(dict.fromkeys(list(past_kw.columns) + list(plan_kw.columns)))
    color = {p: COLORS[i % len(COLORS)] for i, p in enumerate(pools)}
    panels = 3 if four_cp is not None else 2
    with _DRAWING, rc_context({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(11, 2.2 * panels + 0.8))
        axes = fig.subplots(panels, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.6] + ([0.7] if panels == 3 else [])})
        ax_price, ax_kw = axes[0], axes[1]
        if not past_price.empty:
            ax_price.step(past_price.index, past_price.values, where="post", color="#333333", lw=1.3, label="real-time price")
        if not plan_price.empty:
            ax_price.step(plan_price.index, plan_price.values, where="post", color="#333333", lw=1.1, ls="--",
                          label="forecast used by the plan")
        ax_price.set_ylabel("power price\n(USD/MWh)")
        if past_price.empty and plan_price.empty:
            ax_price.text(0.5, 0.5, "no real-time price stored", transform=ax_price.transAxes, ha="center", va="center",
                          color="#c0392b")
            ax_price.set_yticks([])
        _thousands(ax_price.yaxis)
        if ax_price.get_legend_handles_labels()[0]:
            ax_price.legend(loc="upper left", fontsize=8, frameon=False, ncol=2)
        if not past_kw.empty:  # the last decision holds until now, and at least through its interval
            until = max(pd.Timestamp(now), past_kw.index[-1] + pd.Timedelta(minutes=step_minutes))
            past_kw = pd.concat([past_kw, past_kw.iloc[[-1]].set_axis([until])])
            ax_kw.stackplot(past_kw.index, [past_kw.get(p, 0.0 * past_kw.iloc[:, 0]).values for p in pools],
                            colors=[color[p] for p in pools], step="post", labels=pools, alpha=0.95)
        if not plan_kw.empty:
            end = plan_kw.index[-1] + pd.Timedelta(minutes=step_minutes)
            ext = pd.concat([plan_kw, plan_kw.iloc[[-1]].set_axis([end])])
            ax_kw.stackplot(ext.index, [ext.get(p, 0.0 * ext.iloc[:, 0]).values for p in pools],
                            colors=[color[p] for p in pools], step="post", alpha=0.45,
                            labels=pools if past_kw.empty else [f"_{p}" for p in pools])
        if cap_kw:
            ax_kw.axhline(cap_kw, color="#c0392b", ls="--", lw=1.2, label=f"interconnect cap\n{cap_kw:,.0f} kW")
        ax_kw.set_ylabel("site kW by pool\n(IT kW × PUE)")
        _thousands(ax_kw.yaxis)
        ax_kw.set_ylim(bottom=0)
        ax_kw.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        if four_cp is not None:
            ax_cp = axes[2]
            ax_cp.step(four_cp.index, four_cp.values, where="post", color="#8e44ad", lw=1.3)
            ax_cp.set_ylabel("4CP\nprobability")
            ax_cp.set_ylim(0, max(1e-3, float(four_cp.max()) * 1.15))
        end = max([pd.Timestamp(now) + pd.Timedelta(hours=1)] +
                  ([plan_kw.index[-1] + pd.Timedelta(minutes=step_minutes)] if not plan_kw.empty else []))
        axes[0].set_xlim(pd.Timestamp(now) - pd.Timedelta(hours=48), end)  # the last 48 h and the horizon, always
        for ax in axes:
            ax.axvline(now, color="#7f8c8d", lw=1, ls=":")
            ax.grid(axis="y", color="#eeeeee")
        ax_price.annotate("now", (now, 1.0), xycoords=("data", "axes fraction"), fontsize=8, color="#7f8c8d",
                          ha="left", va="bottom")
        axes[-1].set_xlabel("time (UTC)   solid: decided, light: planned horizon")
        fig.autofmt_xdate()
        fig.subplots_adjust(left=0.09, right=0.80, top=0.95, bottom=0.14)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]
