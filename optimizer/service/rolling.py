"""One rolling-horizon decision: forecast from the store as of now, start from the last applied decision,
solve, and fall back to the configured safe allocation when inputs are too stale to decide with.

Only step 0 of a decision is applied; the next decision starts from it (ramp, start-ups, minimum run times).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import pandas as pd

from hashpivot.feeds.market_store import market_from_store
from hashpivot.feeds.store import Store
from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import DataError, InfeasibleError, SolverError
from hashpivot.optimizer.milp.explain import explain
from hashpivot.optimizer.forecast import build_forecast
from hashpivot.optimizer.milp.problem import initial_state_from_decision, make_problem
from hashpivot.optimizer.pipeline.document import decision_document
from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings, solve

log = logging.getLogger(__name__)


def interval_start(cfg: SiteConfig, now: datetime) -> pd.Timestamp:
    return pd.Timestamp(now).floor(f"{cfg.horizon.step_minutes}min")


def decide(cfg: SiteConfig, store: Store, now: datetime, kept_model: PersistentLP | None = None) -> dict:
    """The decision for the interval holding `now`, as a document (status optimal/feasible/kept/safe).

    `kept_model` (the daemon's) carries the model from one interval to the next (see PersistentLP)."""
    t0 = time.perf_counter()
    last = store.last_decision()
    previous = last[1] if last else None
    start = interval_start(cfg, now)
    try:
        market = market_from_store(store, cfg.site.settlement_point, as_of=now)
        forecast = build_forecast(cfg, market, pd.Timestamp(now))
    except DataError as exc:
        log.warning("decision safe_allocation=true reason=%s", exc)
        doc = safe_document(cfg, start, f"inputs too stale to decide: {exc}", previous)
        doc["timings_s"] = {"total_s": time.perf_counter() - t0}
        return doc
    state = initial_state_from_decision(previous) if previous and previous.get("pools") else None
    problem = make_problem(cfg, forecast, state)
    try:
        solution = solve(problem, SolveSettings.from_config(cfg), kept_model)
    except (SolverError, InfeasibleError) as exc:
        if previous is None:
            raise
        log.warning("decision kept_previous=true reason=%s", exc)
        doc = dict(previous, status="kept", interval_start_utc=_iso(start), reason=f"previous decision kept: {exc}")
        return doc
    doc = decision_document(solution, explain(solution), forecast, cfg.site.name)
    doc["reason"] = "solved" if solution.status == "optimal" else "time limit: best feasible allocation found"
    return doc


def safe_document(cfg: SiteConfig, start: pd.Timestamp, reason: str, previous: dict | None) -> dict:
    """The stated safe allocation: firm and SLA-bound GPU contracts stay served; ASICs and marketplace GPUs are
    switched off (or held at the previous decision, per `daemon.safe_asic` / `daemon.safe_gpu_marketplace`)."""
    prev_pools = {p["name"]: p for p in (previous or {}).get("pools", [])}
    pools = []
    it_kw = 0.0
    for a in cfg.asic_pools:
        held = prev_pools.get(a.name) if cfg.daemon.safe_asic == "hold" else None
        by_mode = dict(held["units_by_mode"]) if held else {}
        kw = sum(n * next(m.power_w for m in a.modes if m.name == mode) / 1000 for mode, n in by_mode.items())
        it_kw += kw
        pools.append({"name": a.name, "kind": "asic", "hall": a.hall, "units_on": sum(by_mode.values()),
                      "units_available": a.units_available, "mode": max(by_mode, key=by_mode.get) if by_mode else None,
                      "units_by_mode": by_mode, "power_kw": round(kw, 1), "reason": f"safe allocation ({cfg.daemon.safe_asic})"})
    for g in cfg.gpu_pools:
        contract = min(g.committed_gpus, g.gpus_available)
        held = prev_pools.get(g.name) if cfg.daemon.safe_gpu_marketplace == "hold" else None
        market = int(held["market_on"]) if held else 0
        kw = contract * g.full_power_kw + market * g.market_power_kw
        it_kw += kw
        pools.append({"name": g.name, "kind": "gpu", "hall": g.hall, "units_on": contract + market,
                      "units_available": g.gpus_available, "contract_on": contract, "market_on": market,
                      "power_kw": round(kw, 1), "reason": "safe allocation: contracts kept"})
    return {
        "status": "safe",
        "reason": reason,
        "site": {"name": cfg.site.name, "cap_kw": cfg.site.interconnect_cap_kw, "it_power_kw": round(it_kw, 1),
                 "site_power_kw": round(it_kw * cfg.site.pue, 1), "pue": cfg.site.pue},
        "interval_start_utc": _iso(start),
        "horizon_steps": 1,
        "step_minutes": cfg.horizon.step_minutes,
        "objective_usd": None,
        "pools": pools,
        "binding_constraints": [],
        "schedule": [],
    }


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
