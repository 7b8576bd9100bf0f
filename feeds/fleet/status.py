"""Per ASIC pool, what the fleet reports against what the config says (pure): machines total, healthy,
sleeping, unreachable, erroring; measured kW and TH/s, and the catalogue's figures for the units mining; the
units mining per mode (the measured state a decision starts from) and the W and TH/s each mode really draws
and makes (`learned_modes`, a median over the healthy machines' recent readings)."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from hashpivot.models.config import SiteConfig


def nearest_mode(watts: float | None, targets: dict[str, float]) -> str | None:
    """The mode whose power target (W) is nearest a machine's measured watts (telemetry carries no preset)."""
    if watts is None or pd.isna(watts) or not targets:
        return None
    return min(targets, key=lambda m: abs(targets[m] - watts))


def commanded_targets(commands: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per machine, from its newest successful command in the audit (`Store.last_ok_commands`): the power
    target it was sent (wake / set_power) and the watts the read-back verified, or nothing after a sleep."""
    out = {}
    for row in commands.to_dict("records"):
        target = re.fullmatch(r"(?:wake|set_power) ([0-9.]+) W", str(row["command"]))
        verified = re.fullmatch(r"verified at ([0-9,.]+) W", str(row["detail"]))
        if target and verified:
            out[row["ip"]] = (float(target.group(1)), float(verified.group(1).replace(",", "")))
    return out


def machine_mode(watts: float | None, targets: dict[str, float], commanded: tuple[float, float] | None = None,
                 tolerance: float = 0.05) -> str | None:
    """The mode a machine runs: the mode it was last commanded to while it still draws what it was verified
    at then (a firmware without a profile for that target runs the nearest one below, e.g. LuxOS gives 3,010 W
    for a 3,552 W turbo target — that machine is in turbo as far as the plan is concerned); otherwise the mode
    whose power target is nearest its watts."""
    if commanded is not None and watts is not None and not pd.isna(watts):
        target, verified = commanded
        mode = next((m for m, w in targets.items() if abs(w - target) < 0.5), None)
        if mode is not None and abs(watts - verified) <= tolerance * verified:
            return mode
    return nearest_mode(watts, targets)


def _fresh(telemetry: pd.DataFrame, now: datetime, staleness_s: float) -> pd.Series:
    return (pd.Timestamp(now) - pd.to_datetime(telemetry["at_utc"], utc=True)).dt.total_seconds() <= staleness_s


def _healthy_mining(telemetry: pd.DataFrame) -> pd.Series:
    return (telemetry["reachable"] == 1) & telemetry["error"].isna() & (telemetry["mining"] == 1)


def measured_by_mode(cfg: SiteConfig, telemetry: pd.DataFrame, now: datetime, staleness_s: float,
                     commanded: dict[str, tuple[float, float]] | None = None) -> dict[str, dict[str, int]]:
    """Per pool with fresh telemetry (newest row per machine), the healthy machines mining in each mode
    (`machine_mode`, with `commanded_targets`)."""
    out: dict[str, dict[str, int]] = {}
    if telemetry.empty:
        return out
    fresh = telemetry[_fresh(telemetry, now, staleness_s)]
    for pool in cfg.asic_pools:
        t = fresh[fresh["pool"] == pool.name]
        if t.empty:
            continue
        targets = {m.name: m.power_w for m in pool.modes}
        mining = t[_healthy_mining(t)]
        modes = [machine_mode(w, targets, (commanded or {}).get(ip)) for ip, w in zip(mining["ip"], mining["watts"])]
        out[pool.name] = {m: modes.count(m) for m in targets if modes.count(m)}
    return out


def learned_modes(cfg: SiteConfig, history: pd.DataFrame, min_readings: int = 3) -> dict[str, dict[str, dict]]:
    """Per pool and mode, the median W and TH/s of healthy mining machines' readings in `history` (each
    reading counted in the mode whose power target is nearest it); modes with fewer than `min_readings`
    readings keep the config's figures (left out)."""
    out: dict[str, dict[str, dict]] = {}
    if history.empty:
        return out
    readings = history[_healthy_mining(history) & history["watts"].notna() & (history["hashrate_th"] > 0)]
    for pool in cfg.asic_pools:
        t = readings[readings["pool"] == pool.name]
        targets = {m.name: m.power_w for m in pool.modes}
        config = {m.name: m for m in pool.modes}
        by_mode = t.assign(mode=[nearest_mode(w, targets) for w in t["watts"]]).groupby("mode")
        learned = {}
        for mode, rows in by_mode:
            if len(rows) >= min_readings:
                learned[mode] = {"power_w": round(float(rows["watts"].median()), 1),
                                 "hashrate_th": round(float(rows["hashrate_th"].median()), 2),
                                 "config_power_w": config[mode].power_w, "config_hashrate_th": config[mode].hashrate_th,
                                 "machines": int(rows["ip"].nunique()), "readings": len(rows)}
        if learned:
            out[pool.name] = learned
    return out


def healthy_units(telemetry: pd.DataFrame, now: datetime, staleness_s: float) -> tuple[dict[str, int], list[str]]:
    """Per pool, the machines whose latest telemetry is fresh (within `staleness_s` of `now`) and healthy
    (reachable, no error): the units the model may use. Pools whose telemetry is all stale are left out, with
    a warning each (the config's figure then holds)."""
    if telemetry.empty:
        return {}, ["no fleet telemetry stored yet (no scan has run): the config's units_available is used for every pool"]
    at = pd.to_datetime(telemetry["at_utc"], utc=True)
    fresh = (pd.Timestamp(now) - at).dt.total_seconds() <= staleness_s
    out, warnings = {}, []
    for pool, t in telemetry.assign(fresh=fresh).groupby("pool", sort=True):
        if not t["fresh"].any():
            warnings.append(f"fleet telemetry of pool {pool} is older than {staleness_s:g} s (last {t['at_utc'].max()}): "
                            "the config's units_available is used")
            continue
        current = t[t["fresh"]]
        out[pool] = int(((current["reachable"] == 1) & current["error"].isna()).sum())
    return out, warnings


def pool_status(cfg: SiteConfig, telemetry: pd.DataFrame, learned: dict[str, dict[str, dict]] | None = None) -> pd.DataFrame:
    """One row per ASIC pool that has machines in `telemetry` (the newest row per machine); with `learned`
    (`learned_modes`), each measured mode against the config's figures."""
    rows = []
    modes = {p.name: {m.name: m for m in p.modes} for p in cfg.asic_pools}
    for pool, t in telemetry.groupby("pool", sort=True):
        reachable = t["reachable"] == 1
        erroring = reachable & t["error"].notna()
        mining = reachable & ~erroring & (t["mining"] == 1)
        sleeping = reachable & ~erroring & (t["mining"] == 0)
        stock = modes.get(pool, {}).get("stock")
        rows.append({
            "pool": pool,
            "machines": len(t),
            "healthy": int((reachable & ~erroring).sum()),
            "mining": int(mining.sum()),
            "sleeping": int(sleeping.sum()),
            "unreachable": int((~reachable).sum()),
            "erroring": int(erroring.sum()),
            "measured_kw": round(float(t.loc[reachable, "watts"].fillna(0).sum()) / 1000.0, 1),
            "measured_th": round(float(t.loc[reachable, "hashrate_th"].fillna(0).sum()), 1),
            "config_stock_kw": round(int(mining.sum()) * stock.power_w / 1000.0, 1) if stock else None,
            "config_stock_th": round(int(mining.sum()) * stock.hashrate_th, 1) if stock else None,
            "measured_modes": "; ".join(
                f"{mode} {x['power_w']:,.0f} W {x['hashrate_th']:,.1f} TH/s (config {x['config_power_w']:,.0f} W "
                f"{x['config_hashrate_th']:,.1f} TH/s, {x['machines']} machines)"
                for mode, x in (learned or {}).get(pool, {}).items()) or None,
            "last_scan_utc": str(t["at_utc"].max()),
        })
    return pd.DataFrame(rows)
