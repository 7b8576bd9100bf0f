"""Operator holds: a pool held off, at N units, or in one mode, or a machine held off (kept asleep) or held
as it is (never commanded), until a time or until removed. A pool hold changes the config a decision is taken
with (the model honours it as a bound, from the first step) and `fleet apply` enforces it on a decision file
from before it; a machine hold keeps `fleet apply` from waking or setting the machine. Pool holds say so in
the decision's reasons."""

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


def held_start(previous: Decision, cfg: SiteConfig, held_pools) -> Decision:
    """`previous` with each held pool's step 0 brought within its hold (`cfg` from `held_config`): units beyond
    the hold's cap are taken off the hungriest modes first, units in a mode the hold excludes move to the held
    mode, and start-ups no longer bind beyond the units left. A hold is the operator's order: it applies at once,
    never spread over steps by the ramp limit or held back by minimum run times (fleet apply's reductions are
    not ramp-limited either); without this a hold cutting more than one ramp step made the model infeasible and
    the daemon kept the previous decision, the held pool still running."""
    pools = {p.name: p for p in cfg.asic_pools}
    out = []
    for p in previous.pools:
        pool = pools.get(p.name)
        if p.kind != "asic" or pool is None or p.name not in held_pools:
            out.append(p)
            continue
        watts = {m.name: m.power_w for m in pool.modes}
        units = {m: n for m, n in p.units_by_mode.items() if n}
        if any(m not in watts for m in units) and watts:
            units = {next(iter(watts)): sum(units.values())}
        excess = sum(units.values()) - pool.units_available
        for mode in sorted(units, key=lambda m: -watts.get(m, 0.0)):
            cut = min(max(excess, 0), units[mode])
            units[mode] -= cut
            excess -= cut
        units = {m: n for m, n in units.items() if n}
        total = sum(units.values())
        starts = None if p.recent_starts is None else [min(int(x), total) for x in p.recent_starts]
        out.append(p.model_copy(update={"units_by_mode": units, "units_on": total, "recent_starts": starts}))
    return previous.model_copy(update={"pools": out})


def with_hold_reasons(doc: Decision, reasons: dict[str, str]) -> Decision:
    if not reasons:
        return doc
    return doc.model_copy(update={"pools": [p.model_copy(update={"reason": f"{reasons[p.name]}; {p.reason}"})
                                            if p.name in reasons else p for p in doc.pools]})


def held_machines(holds: pd.DataFrame) -> set[str]:
    """Machines fleet apply never wakes or sets (held off or held as they are)."""
    return {h["ip"] for h in holds.to_dict("records") if isinstance(h.get("ip"), str)}


def held_off_machines(holds: pd.DataFrame) -> set[str]:
    """Machines held off: fleet apply puts them to sleep if found mining, and the model counts them out."""
    return {h["ip"] for h in holds.to_dict("records") if isinstance(h.get("ip"), str) and bool(h["off"])}
