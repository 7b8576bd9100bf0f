"""4CP outlook for operators (pure): today's and tomorrow's peak probability by hour, what running the site
through each hour is expected to cost, and the curtailment the decision plans — what `hashpivot fourcp` prints
— and today's peak risk from a decision document, what `hashpivot status` and the metrics show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hashpivot.models.calendar import MARKET_TZ, to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision
from hashpivot.models.market import MarketData
from hashpivot.optimizer.forecast import four_cp_hourly


def outlook_hours(at: pd.Timestamp, days: int = 2) -> pd.DatetimeIndex:
    """UTC hour starts of the Central day holding `at` and the `days - 1` days after it."""
    local = to_utc(at).tz_convert(MARKET_TZ).normalize()
    end = local + pd.DateOffset(days=days)  # calendar days: 23 or 25 hours across a DST change
    return pd.date_range(local.tz_convert("UTC"), end.tz_convert("UTC"), freq="h", inclusive="left")


def four_cp_outlook(cfg: SiteConfig, market: MarketData, at: pd.Timestamp, decision: Decision | None = None,
                    days: int = 2, without_four_cp: Decision | None = None) -> pd.DataFrame:
    """One row per hour of today and tomorrow (Central): the probability the hour holds its month's 4CP
    interval from data known at `at` (the climatology when ERCOT load is missing or stale), the expected charge
    of running the site's full interconnect load and the decision's planned load through it (USD), the
    planned load below the interconnect cap (kW) and, given `without_four_cp` (the same decision with 4CP not
    priced), the part of it that is for 4CP: how much less the plan draws than that decision (kW, >= 0); planned
    figures are empty for hours outside the decision's horizon or already past; and the basis of p (`forecast`,
    or `climatology` when ERCOT load is missing or stale). An hour whose p is below `min_probability` shows its p
    but costs 0, as the decision prices it."""
    at = to_utc(at)
    four_cp = cfg.power.four_cp
    months = tuple(four_cp.months) if four_cp is not None else (6, 7, 8, 9)
    rate = four_cp.rate_usd_per_kw_year if four_cp is not None else 0.0
    floor = four_cp.min_probability if four_cp is not None else 0.0
    hours = outlook_hours(at, days)
    p, blind = four_cp_hourly(market, at, hours, months)
    planned, unpriced = _hourly_site_kw(decision), _hourly_site_kw(without_four_cp)
    cap = cfg.site.interconnect_cap_kw
    rows = []
    for t in hours:
        prob = float(p.get(t, 0.0))
        priced = prob if prob >= floor else 0.0
        kw = planned.get(t) if t >= at.floor("h") else None
        other = unpriced.get(t) if kw is not None else None
        rows.append({
            "hour_start_central": t.tz_convert(MARKET_TZ).strftime("%Y-%m-%d %H:%M"),
            "interval_start_utc": t.strftime("%Y-%m-%dT%H:%MZ"),
            "four_cp_probability": round(prob, 6),
            "expected_cost_usd_per_mw": round(priced * rate / 4.0 * 1000.0, 2),
            "expected_cost_at_cap_usd": round(priced * rate / 4.0 * cap, 2),
            "planned_site_kw": None if kw is None else round(kw, 1),
            "planned_expected_cost_usd": None if kw is None else round(priced * rate / 4.0 * kw, 2),
            "planned_curtailment_kw": None if kw is None else round(max(cap - kw, 0.0), 1),
            "four_cp_curtailment_kw": None if other is None else round(max(other - kw, 0.0), 1),
            "four_cp_basis": "climatology" if blind else "forecast",
        })
    return pd.DataFrame(rows)


def _hourly_site_kw(decision: Decision | None) -> dict[pd.Timestamp, float]:
    """A decision's planned site-meter kW by UTC hour (the mean of its steps in the hour)."""
    steps: dict[pd.Timestamp, list[float]] = {}
    for step in decision.schedule if decision is not None else ():
        steps.setdefault(to_utc(step.interval_start_utc).floor("h"), []).append(step.site_power_kw)
    return {t: float(np.mean(v)) for t, v in steps.items()}


def four_cp_fallback(doc: Decision | None) -> str | None:
    """Why the decision priced 4CP at the hour-of-day climatology (ERCOT load missing or stale), else None."""
    return doc.inputs.forecast_notes.get("four_cp") if doc is not None and doc.inputs else None


def peak_risk(doc: Decision, rate_usd_per_kw_year: float | None = None) -> dict | None:
    """Today's 4CP risk from a decision's schedule (the steps in the Central day of its step 0): the highest
    step probability and the step's start, the same over the whole horizon (tomorrow's afternoon may be the risk),
    the horizon's expected 4CP cost and, when ERCOT load was missing or stale,
    why the probabilities are the climatology (`fallback`); None when the decision did not price 4CP (schema < 3,
    or 4CP not configured)."""
    steps = [s for s in doc.schedule if s.four_cp_probability is not None]
    if not steps:
        return None
    day = to_utc(doc.interval_start_utc).tz_convert(MARKET_TZ).normalize()
    today = [s for s in steps if to_utc(s.interval_start_utc).tz_convert(MARKET_TZ).normalize() == day] or steps[:1]
    top = max(today, key=lambda s: s.four_cp_probability or 0.0)
    peak = max(steps, key=lambda s: s.four_cp_probability or 0.0)  # first of the highest: today's when tied
    horizon_end = to_utc(doc.schedule[-1].interval_start_utc) + pd.Timedelta(minutes=doc.step_minutes)
    return {
        "step0_probability": steps[0].four_cp_probability,
        "today_max_probability": top.four_cp_probability,
        "today_max_at_utc": top.interval_start_utc,
        # a horizon shorter than the rest of today shows only part of it: its end, else None
        "horizon_ends_today_utc": None if horizon_end >= day + pd.Timedelta(days=1) else horizon_end.isoformat(),
        "horizon_max_probability": peak.four_cp_probability,
        "horizon_max_at_utc": peak.interval_start_utc,
        "expected_cost_usd": doc.four_cp_expected_cost_usd,
        "fallback": four_cp_fallback(doc),
    }
