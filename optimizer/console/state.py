"""What the console (and `hashpivot status`) shows, read from the store at one instant.

`read_state` is the only function here that touches the store; `status_summary`, `banners` and `overview`
are pure: they take the values read and the time, and return plain dicts (the JSON endpoints serve them as
they are, the page renders them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from apscheduler.triggers.cron import CronTrigger

from hashpivot.feeds.collect import SeriesStatus, status
from hashpivot.feeds.fleet.inventory import in_fleet
from hashpivot.feeds.fleet.status import pool_status
from hashpivot.feeds.registry import SOURCES
from hashpivot.feeds.store import Store
from hashpivot.models.calendar import to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision
from hashpivot.optimizer.pipeline.four_cp import four_cp_fallback
from hashpivot.optimizer.service.overrides import effective_apply

HISTORY_HOURS = 48


@dataclass
class StoreState:
    """Everything the page needs, as read from the store at `now`."""

    now: datetime
    last: tuple[int, Decision] | None
    feeds: list[SeriesStatus]
    fetch_failures: dict[str, int]
    quarantined: pd.DataFrame
    last_apply: pd.DataFrame
    telemetry: pd.DataFrame
    holds: pd.DataFrame
    history: pd.DataFrame  # decisions of the last HISTORY_HOURS (seq, decided_at_utc, document…)
    prices: pd.DataFrame  # real-time prices of the settlement point over the same window
    apply_mode: str = "off"
    apply_override: dict | None = None
    extra: dict = field(default_factory=dict)


def read_state(cfg: SiteConfig, store: Store, db, now: datetime) -> StoreState:
    """One consistent look at the store (reads only)."""
    since = now - timedelta(hours=HISTORY_HOURS)
    mode, override = effective_apply(cfg, db)
    return StoreState(
        now=now, last=store.last_decision(), feeds=status(cfg, store, now), fetch_failures=store.fetch_failures(),
        quarantined=store.quarantined(limit=8), last_apply=store.last_apply(), telemetry=in_fleet(store.latest_telemetry(), cfg),
        holds=store.active_holds(now), history=store.decisions(since=since, limit=2000),
        prices=store.history(f"power_rt_usd_per_mwh.{cfg.site.settlement_point}", since=since),
        apply_mode=mode, apply_override=override)


def decision_age_s(doc: Decision | None, now: datetime) -> float | None:
    if doc is None or doc.decided_at_utc is None:
        return None
    return round((to_utc(now) - to_utc(doc.decided_at_utc)).total_seconds(), 1)


def apply_counts(last_apply: pd.DataFrame) -> dict | None:
    """The newest fleet apply: when, for which decision, commands planned / applied / failed."""
    if last_apply.empty:
        return None
    return {"at_utc": str(last_apply["at_utc"].iloc[0]), "decision_seq": _int(last_apply["decision_seq"].iloc[0]),
            **{r: int((last_apply["result"] == r).sum()) for r in ("planned", "ok", "failed")}}


def status_summary(last: tuple[int, Decision] | None, feeds: list[SeriesStatus], fails: dict[str, int],
                   last_apply: pd.DataFrame, now: datetime) -> dict:
    """`hashpivot status --format json`: the last decision, feed ages, failures and the last fleet apply."""
    doc = last[1] if last else None
    return {
        "last_decision_seq": last[0] if last else None,
        "last_decision": None if doc is None else {
            "decided_at_utc": doc.decided_at_utc, "interval_start_utc": doc.interval_start_utc, "status": doc.status,
            "objective_usd": doc.objective_usd, "reason": doc.reason},
        "last_decision_age_s": decision_age_s(doc, now),
        "site_power_kw": doc.site.site_power_kw if doc else None,
        "pools_power_kw": {p.name: p.power_kw for p in doc.pools} if doc else {},
        "safe_allocation": bool(doc and doc.status == "safe"),
        "feed_failures": fails,
        "last_fleet_apply": apply_counts(last_apply),
        "feeds": [{"series": s.series, "age_h": None if s.age_s is None else round(s.age_s / 3600, 2), "fresh": s.fresh,
                   "source": s.source} for s in feeds],
    }


def decision_interval_s(cfg: SiteConfig, now: datetime) -> float:
    """Seconds between two decisions on `daemon.decision_cron` (the next two fire times after `now`)."""
    trigger = CronTrigger(**{k: str(v) for k, v in cfg.daemon.decision_cron.items()}, timezone="UTC")
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    return (second - first).total_seconds()


def banners(doc: Decision | None, age_s: float | None, interval_s: float, feeds: list[SeriesStatus]) -> list[dict]:
    """What must catch the operator's eye, most serious first: the safe allocation, a kept decision, a last
    decision older than two intervals, 4CP priced blind (no fresh ERCOT load), required feeds past their
    staleness limit."""
    out = []
    if doc is None:
        out.append({"kind": "stale", "text": "No decision stored yet: is the daemon running (`hashpivot run`)?"})
    elif doc.status == "safe":
        out.append({"kind": "safe", "text": f"SAFE ALLOCATION for {doc.interval_start_utc}: {doc.reason}"})
    elif doc.status == "kept":
        out.append({"kind": "kept", "text": f"Previous decision kept for {doc.interval_start_utc}: {doc.reason}"})
    if age_s is not None and age_s > 2 * interval_s:
        out.append({"kind": "old", "text": f"Last decision is {age_text(age_s)} old (decisions are due every "
                    f"{age_text(interval_s)}): the daemon may be stopped or stuck."})
    blind = four_cp_fallback(doc)
    if blind:
        out.append({"kind": "stale", "text": f"4CP risk is the climatology, not a forecast: {blind}"})
    stale = [s for s in feeds if s.required and not s.fresh]
    if stale:
        names = ", ".join(f"{s.series} ({'never received' if s.age_s is None else age_text(s.age_s) + ' old'}, limit "
                          f"{age_text(s.staleness_s)})" for s in stale)
        out.append({"kind": "stale", "text": f"Required feed{'s' if len(stale) > 1 else ''} stale: {names}"})
    return out


def primary_sources(cfg: SiteConfig) -> dict[str, list[str]]:
    """Per live source name, the enabled sources of its groups in fallback order (the first is the primary)."""
    by_group: dict[str, list[str]] = {}
    for s in SOURCES:
        if cfg.feeds.source(s.name).enabled and s.options(cfg) is not None:
            by_group.setdefault(s.group, []).append(s.name)
    return by_group


def feed_rows(cfg: SiteConfig, feeds: list[SeriesStatus]) -> list[dict]:
    """One row per series: value, age against its limit, the source in use and whether it is a fallback."""
    groups = primary_sources(cfg)
    rows = []
    for s in feeds:
        orders = [g for g in groups.values() if s.source in g]
        rows.append({"series": s.series, "value": s.value, "unit": s.unit, "required": s.required, "fresh": s.fresh,
                     "age_s": None if s.age_s is None else round(s.age_s, 1), "staleness_s": s.staleness_s,
                     "interval_start_utc": None if s.interval_start_utc is None else to_utc(s.interval_start_utc).isoformat(),
                     "source": s.source,
                     "fallback": bool(orders) and all(g[0] != s.source for g in orders),
                     "source_kind": "live" if orders else ("none" if s.source is None else
                                                             "derived" if s.source == "computed" else "imported")})
    return rows


def four_cp_key(doc: Decision | None) -> str | None:
    """The schedule's per-step 4CP probability field, when the decision document carries one."""
    if doc is None or not doc.schedule:
        return None
    key = next((k for k in doc.schedule[0].model_dump() if ("4cp" in k or "four_cp" in k) and "prob" in k), None)
    return key if key and any(getattr(s, key) is not None for s in doc.schedule) else None


def pool_rows(doc: Decision) -> list[dict]:
    price = doc.inputs.marginal_power_price_usd_per_mwh if doc.inputs else None
    rows = []
    for p in doc.pools:
        rows.append({"name": p.name, "kind": p.kind, "hall": p.hall, "units_on": p.units_on,
                     "units_available": p.units_available,
                     "units_by_mode": dict(p.units_by_mode) if p.kind == "asic" else
                     {"contract": p.contract_on or 0, "marketplace": p.market_on or 0},
                     "power_kw": p.power_kw, "revenue_usd_per_hour": p.revenue_usd_per_hour,
                     "cost_usd_per_hour": p.cost_usd_per_hour, "breakeven_usd_per_mwh": p.breakeven_usd_per_mwh,
                     "price_usd_per_mwh": price, "margin_usd_per_mwh": p.margin_usd_per_mwh, "reason": p.reason})
    return rows


def overview(cfg: SiteConfig, state: StoreState) -> dict:
    """The page's content as one JSON-able dict (`GET /api/overview`)."""
    doc = state.last[1] if state.last else None
    age = decision_age_s(doc, state.now)
    interval = decision_interval_s(cfg, state.now)
    decision = None
    if doc is not None:
        decision = {
            "seq": state.last[0], "status": doc.status, "reason": doc.reason, "decided_at_utc": doc.decided_at_utc,
            "interval_start_utc": doc.interval_start_utc, "age_s": age, "objective_usd": doc.objective_usd,
            "method": doc.method, "site_power_kw": doc.site.site_power_kw, "it_power_kw": doc.site.it_power_kw,
            "cap_kw": doc.site.cap_kw, "reserve_kw": doc.reserve_kw,
            "reserve_price_usd_per_mw_hour": doc.inputs.reserve_price_usd_per_mw_hour if doc.inputs else None,
            "reserve_product": doc.inputs.reserve_product if doc.inputs else None,
            "power_price_usd_per_mwh": doc.inputs.power_price_usd_per_mwh if doc.inputs else None,
            "marginal_power_price_usd_per_mwh": doc.inputs.marginal_power_price_usd_per_mwh if doc.inputs else None,
            "hashprice_usd_per_ph_day": doc.inputs.hashprice_usd_per_ph_day if doc.inputs else None,
            "btc_usd": doc.inputs.btc_usd if doc.inputs else None,
            "binding_constraints": list(doc.binding_constraints), "binding_explained": list(doc.binding_explained),
            "shadow_price_usd_per_mw_hour": doc.shadow_price_usd_per_mw_hour,
            "four_cp_field": four_cp_key(doc),
            "four_cp_expected_cost_usd": getattr(doc, "four_cp_expected_cost_usd", None),
            "pools": pool_rows(doc)}
    fleet = None
    if cfg.fleet.configured or not state.telemetry.empty or not state.last_apply.empty:
        pools = pool_status(cfg, state.telemetry) if not state.telemetry.empty else pd.DataFrame()
        fleet = {"apply": state.apply_mode, "apply_config": cfg.fleet.apply, "apply_override": state.apply_override,
                 "apply_pinned": cfg.fleet.apply_pinned,
                 "pools": _records(pools), "last_apply": apply_counts(state.last_apply)}
    return {
        "now_utc": to_utc(state.now).isoformat(),
        "site": {"name": cfg.site.name, "cap_kw": cfg.site.interconnect_cap_kw},
        "decision_interval_s": interval,
        "banners": banners(doc, age, interval, state.feeds),
        "decision": decision,
        "feeds": feed_rows(cfg, state.feeds),
        "feed_failures": state.fetch_failures,
        "errors": _records(state.quarantined.drop(columns=["payload_bytes"], errors="ignore")),
        "fleet": fleet,
        "holds": _records(state.holds.drop(columns=["removed_at_utc"], errors="ignore")),
    }


def _records(df: pd.DataFrame) -> list[dict]:
    """JSON-safe rows: NaN and NumPy scalars become None and Python numbers."""
    out = []
    for row in df.to_dict("records"):
        out.append({k: _plain(v) for k, v in row.items()})
    return out


def _plain(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    return v


def _int(v) -> int | None:
    v = _plain(v)
    return None if v is None else int(v)


def age_text(seconds: float | None) -> str:
    """An age or a limit for operators: 45 s, 12 min, 3.5 h, 2.1 days; "never" when there is none."""
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
