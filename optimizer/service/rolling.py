"""One rolling-horizon decision of the daemon: the market from the store as of now, the last stored decision
as the starting state, the one pipeline (`optimizer.pipeline.decide`); the configured safe allocation when
inputs are too stale to decide with, the previous decision kept when the solve fails.

Only step 0 of a decision is applied; the next decision starts from it (ramp, start-ups, minimum run times).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import pandas as pd

from hashpivot.feeds.fleet.inventory import in_fleet
from hashpivot.feeds.fleet.status import commanded_targets, healthy_units, learned_modes, measured_by_mode
from hashpivot.feeds.market_store import market_from_store
from hashpivot.feeds.store import Store
from hashpivot.models.calendar import iso_utc, to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import SCHEMA_VERSION, Decision, PoolDecision, SiteState
from hashpivot.models.errors import DataError, InfeasibleError, SolverError
from hashpivot.optimizer.milp.solve import PersistentLP
from hashpivot.optimizer.pipeline.decide import decide
from hashpivot.optimizer.service.holds import held_config, held_off_machines, held_start, with_hold_reasons

log = logging.getLogger(__name__)


def interval_start(cfg: SiteConfig, now: datetime) -> pd.Timestamp:
    return to_utc(now).floor(f"{cfg.horizon.step_minutes}min")


def decide_interval(cfg: SiteConfig, store: Store, now: datetime, kept_model: PersistentLP | None = None) -> Decision:
    """The decision for the interval holding `now` (status optimal/feasible/kept/safe).

    `kept_model` (the daemon's) carries the model from one interval to the next (see PersistentLP)."""
    t0 = time.perf_counter()
    last = store.last_decision()
    previous = last[1] if last else None
    start = interval_start(cfg, now)
    cfg, fleet = fleet_adjusted(cfg, store, now)
    if fleet and previous is not None:
        previous = measured_start(previous, fleet)
    cfg, hold_reasons = held_config(cfg, store.active_holds(now))
    if previous is not None and hold_reasons:
        previous = held_start(previous, cfg, hold_reasons)
    try:
        market = market_from_store(store, cfg.site.settlement_point, as_of=now)
        decided = decide(cfg, market, to_utc(now), previous, kept_model)
    except DataError as exc:
        log.warning("decision safe_allocation=true reason=%s", exc)
        doc = safe_document(cfg, start, f"inputs too stale to decide: {exc}", previous)
        return doc.model_copy(update={"timings_s": {"total_s": time.perf_counter() - t0}})
    except (SolverError, InfeasibleError) as exc:
        if previous is None:
            raise
        log.warning("decision kept_previous=true reason=%s", exc)
        return carried_forward(previous, start, "kept", f"previous decision kept: {exc}", cfg.horizon.step_minutes)
    doc = with_hold_reasons(decided.document, hold_reasons)
    return doc.model_copy(update={"fleet": fleet}) if fleet else doc


def fleet_adjusted(cfg: SiteConfig, store: Store, now: datetime) -> tuple[SiteConfig, dict | None]:
    """With `[fleet]` configured, each ASIC pool's units_available becomes the healthy machines its fresh
    telemetry reports (never more than the config's figure); with `fleet.learn_modes`, each mode's W and TH/s
    become the fleet's measured medians. Stale telemetry leaves the config's figures, with a warning. Returns
    the config to decide with and what the fleet changed (for the decision document), including the units
    mining per mode (`measured_by_mode`, the state the decision starts from)."""
    if not cfg.fleet.configured:
        return cfg, None
    latest, staleness = in_fleet(store.latest_telemetry(), cfg), cfg.fleet.telemetry_staleness_s
    off = held_off_machines(store.active_holds(now))  # held off: not units the model may run
    healthy, warnings = healthy_units(latest[~latest["ip"].isin(off)] if off else latest, now, staleness)
    for warning in warnings:
        log.warning("decision %s", warning)
    measured = measured_by_mode(cfg, latest, now, staleness, commanded_targets(store.last_ok_commands()))
    learned = {}
    if cfg.fleet.learn_modes:
        since = pd.Timestamp(now) - pd.Timedelta(seconds=min(cfg.fleet.learn_window_s, staleness))
        learned = {pool: modes for pool, modes in learned_modes(cfg, store.telemetry_since(since)).items() if pool in healthy}
    pools, used = [], {}
    for pool in cfg.asic_pools:
        if pool.name in healthy:
            units = min(pool.units_available, healthy[pool.name])
            used[pool.name] = {"units_available": units, "healthy_machines": healthy[pool.name],
                               "config_units_available": pool.units_available,
                               "measured_by_mode": measured.get(pool.name, {})}
            update: dict = {"units_available": units}
            if pool.name in learned:
                used[pool.name]["learned_modes"] = learned[pool.name]
                update["modes"] = [m.model_copy(update={k: learned[pool.name][m.name][k] for k in ("power_w", "hashrate_th")})
                                   if m.name in learned[pool.name] else m for m in pool.modes]
            pool = pool.model_copy(update=update)
        pools.append(pool)
    return cfg.model_copy(update={"asic_pools": pools}), {"pools": used, "warnings": warnings,
                                                          "last_apply": last_apply_summary(store.last_apply())}


def last_apply_summary(rows: pd.DataFrame) -> dict | None:
    """What the previous apply planned, applied and failed (from the audit), for the decision document."""
    if rows.empty:
        return None
    failed = rows[rows["result"] == "failed"]
    return {"at_utc": str(rows["at_utc"].iloc[0]), "decision_seq": None if pd.isna(rows["decision_seq"].iloc[0])
            else int(rows["decision_seq"].iloc[0]),
            "commands": {str(k): int(v) for k, v in rows["result"].value_counts().sort_index().items()},
            "failed": [f"{r.ip} {r.command}: {r.detail}" for r in failed.head(20).itertuples()]}


def measured_start(previous: Decision, fleet: dict) -> Decision:
    """`previous` with each fleet pool's step 0 replaced by the units the machines report mining per mode,
    where the two differ (a failed command, a machine that rebooted, a person at the rack): the next decision
    starts from what runs, not from what was planned. `fleet` records each difference."""
    pools, started_from = [], {}
    for p in previous.pools:
        measured = fleet["pools"].get(p.name, {}).get("measured_by_mode")
        if p.kind == "asic" and measured is not None and measured != {m: n for m, n in p.units_by_mode.items() if n}:
            started_from[p.name] = {"planned": dict(p.units_by_mode), "measured": dict(measured)}
            log.warning("decision pool %s starts from the fleet's measured state %s, not the plan %s", p.name,
                        measured, dict(p.units_by_mode))
            p = p.model_copy(update={"units_by_mode": dict(measured), "units_on": sum(measured.values())})
        pools.append(p)
    if started_from:
        fleet["initial_state"] = started_from
    return previous.model_copy(update={"pools": pools})


def carried_forward(previous: Decision, start: pd.Timestamp, status: str, reason: str, step_minutes: int) -> Decision:
    """`previous` held for the interval at `start`: same units, start-up history moved on by the steps that
    passed (nothing was started meanwhile)."""
    steps = max(int((to_utc(start) - to_utc(previous.interval_start_utc)) / pd.Timedelta(minutes=step_minutes)), 0)
    pools = [p.model_copy(update={"recent_starts": None if p.recent_starts is None
                                  else ([0] * steps + p.recent_starts)[: len(p.recent_starts)]})
             for p in previous.pools]
    return previous.model_copy(update={"status": status, "reason": reason, "interval_start_utc": iso_utc(start),
                                       "pools": pools, "schema_version": SCHEMA_VERSION})


def safe_document(cfg: SiteConfig, start: pd.Timestamp, reason: str, previous: Decision | None) -> Decision:
    """The stated safe allocation: firm and SLA-bound GPU contracts stay served; ASICs and marketplace GPUs are
    switched off (or held at the previous decision, per `daemon.safe_asic` / `daemon.safe_gpu_marketplace`).
    Nothing is started, so minimum run and rental times carry over from the previous decision."""
    held_forward = carried_forward(previous, start, "safe", reason, cfg.horizon.step_minutes) if previous else None
    pools: list[PoolDecision] = []
    it_kw = 0.0
    for a in cfg.asic_pools:
        held = held_forward.pool(a.name) if held_forward and cfg.daemon.safe_asic == "hold" else None
        by_mode = dict(held.units_by_mode) if held else {}
        kw = sum(n * next(m.power_w for m in a.modes if m.name == mode) / 1000 for mode, n in by_mode.items())
        it_kw += kw
        pools.append(PoolDecision(
            name=a.name, kind="asic", hall=a.hall, units_on=sum(by_mode.values()), units_available=a.units_available,
            mode=max(by_mode, key=by_mode.get) if by_mode else None, units_by_mode=by_mode, power_kw=round(kw, 1),
            reason=f"safe allocation ({cfg.daemon.safe_asic})", recent_starts=_history(held)))
    for g in cfg.gpu_pools:
        contract = min(g.committed_gpus, g.gpus_available)
        held = held_forward.pool(g.name) if held_forward and cfg.daemon.safe_gpu_marketplace == "hold" else None
        market = int(held.market_on or 0) if held else 0
        kw = contract * g.full_power_kw + market * g.market_power_kw
        it_kw += kw
        pools.append(PoolDecision(
            name=g.name, kind="gpu", hall=g.hall, units_on=contract + market, units_available=g.gpus_available,
            contract_on=contract, market_on=market, power_kw=round(kw, 1), reason="safe allocation: contracts kept",
            recent_starts=_history(held)))
    return Decision(
        schema_version=SCHEMA_VERSION,
        status="safe",
        reason=reason,
        site=SiteState(name=cfg.site.name, cap_kw=cfg.site.interconnect_cap_kw, it_power_kw=round(it_kw, 1),
                       site_power_kw=round(it_kw * cfg.site.pue, 1), pue=cfg.site.pue),
        interval_start_utc=iso_utc(start),
        horizon_steps=1,
        step_minutes=cfg.horizon.step_minutes,
        objective_usd=None,
        pools=pools,
    )


def _history(held: PoolDecision | None) -> list[int]:
    """Start-up history of a pool in the safe allocation: the held pool's, else nothing started."""
    return list(held.recent_starts or []) if held is not None else []
