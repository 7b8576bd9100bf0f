"""Operator holds: a pool held off, at N units, or in one mode, or a machine never to be commanded, until
a time or until removed. A pool hold changes the config a decision is taken with (the model honours it as a
bound); a machine hold keeps `fleet apply` away from the machine. Both say so in the decision's reasons."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from hashpivot.models.calendar import iso_utc, to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision
from hashpivot.models.errors import InputError


def hold_text(h: dict) -> str:
    what = "off" if h["off"] else (f"exactly {int(h['units']):,} units" if pd.notna(h["units"]) else f"in {h['mode']} mode")
    until = f" until {h['until_utc']}" if isinstance(h.get("until_utc"), str) else ""
    return f"held by operator{until} ({what}): {h['reason']}"


def check_hold(cfg: SiteConfig, hold: dict, now: datetime) -> None:
    """InputError naming what is wrong with a hold about to be added (the CLI's and the console's one check):
    a pool of the site, a mode of the pool, units it has, a reason, an end still to come."""
    if not str(hold.get("reason") or "").strip():
        raise InputError("--reason: a hold needs a reason (it is shown in every decision the hold changes)")
    if hold.get("until_utc") is not None and to_utc(hold["until_utc"]) <= to_utc(now):
        raise InputError(f"--until {hold['until_utc']}: already past (now {iso_utc(now)}); a hold must end later")
    pools = {p.name: p for p in cfg.asic_pools}
    if hold.get("pool") is not None:
        if hold["pool"] not in pools:
            raise InputError(f"--pool {hold['pool']!r}: not an ASIC pool of the site; pools: {', '.join(pools)}")
        pool = pools[hold["pool"]]
        modes = [m.name for m in pool.modes]
        if hold.get("mode") is not None and hold["mode"] not in modes:
            raise InputError(f"--mode {hold['mode']!r}: pool {hold['pool']} has modes {', '.join(modes)}")
        units = hold.get("units")
        if units is not None and not 0 <= units <= pool.units_available:
            raise InputError(f"--units {units:,}: pool {pool.name} has {pool.units_available:,} units; hold it at 0 to "
                             f"{pool.units_available:,} (exactly that many run)")


def held_config(cfg: SiteConfig, holds: pd.DataFrame) -> tuple[SiteConfig, dict[str, str]]:
    """The config with every active pool hold applied as fixed bounds (off: no units; units: exactly that many,
    a cap and a must-run floor, so a hold the site cannot honour makes the model infeasible and the diagnosis
    names it; mode: that mode only), and the reason text per held pool."""
    reasons: dict[str, str] = {}
    pools = []
    by_pool = {h["pool"]: h for h in holds.to_dict("records") if isinstance(h.get("pool"), str)}
    for pool in cfg.asic_pools:
        h = by_pool.get(pool.name)
        if h is not None:
            if h["off"]:
                pool = pool.model_copy(update={"units_available": 0})
            elif pd.notna(h["units"]):
                units = int(h["units"])
                pool = pool.model_copy(update={"units_available": min(pool.units_available, units), "min_units_on": units})
            elif isinstance(h.get("mode"), str):
                pool = pool.model_copy(update={"modes": [m for m in pool.modes if m.name == h["mode"]]})
            reasons[pool.name] = hold_text(h)
        pools.append(pool)
    return cfg.model_copy(update={"asic_pools": pools}), reasons


def with_hold_reasons(doc: Decision, reasons: dict[str, str]) -> Decision:
    if not reasons:
        return doc
    return doc.model_copy(update={"pools": [p.model_copy(update={"reason": f"{reasons[p.name]}; {p.reason}"})
                                            if p.name in reasons else p for p in doc.pools]})


def held_machines(holds: pd.DataFrame) -> set[str]:
    return {h["ip"] for h in holds.to_dict("records") if isinstance(h.get("ip"), str)}
