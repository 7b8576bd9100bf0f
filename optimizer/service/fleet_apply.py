"""Commanding the fleet through pyasic: a plan's waves, in order, each command with a timeout, bounded
retries and a read-back that proves it took; a machine that fails is reported with the reason (and is
excluded by the next scan's telemetry). A stop file ends the apply before the next wave (kill switch)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pyasic
from pyasic.config.mining.presets import MiningPreset
from pyasic.miners.backends.vnish import VNish

from hashpivot.feeds.fleet.inventory import Machine
from hashpivot.feeds.fleet.scan import scan, scan_into, use_password
from hashpivot.feeds.fleet.status import commanded_targets
from hashpivot.feeds.store import Store
from hashpivot.models.clock import now_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision
from hashpivot.models.errors import InputError
from hashpivot.optimizer.service.fleet_plan import (
    Command,
    held_units_by_mode,
    limit_changes,
    plan,
    unavailable,
    waves,
    within_ramp,
)
from hashpivot.optimizer.service.gpu_actuators import apply_gpu_pools
from hashpivot.optimizer.service.holds import held_machines, held_off_machines, hold_text

log = logging.getLogger(__name__)

READ_BACK = [pyasic.DataOptions.HASHRATE, pyasic.DataOptions.HASHBOARDS, pyasic.DataOptions.WATTAGE]  # LuxOS hashrate = the boards' sum


@dataclass(frozen=True)
class Applied:
    command: Command
    ok: bool
    detail: str
    attempts: int


async def _set_power(miner, watts: int) -> bool:
    """Set the firmware's power target at or below `watts` (LuxOS: the highest profile; pyasic picks it). pyasic
    0.79's `VNish.set_power_limit` always answers False (docs/fleet-protocols.md, 4.3), so on VNish this is its
    intended logic: the highest tuned autotune preset at or below `watts`, set through the web API and proven
    by reading the settings back (VNish acknowledges a preset it did not apply)."""
    if not isinstance(miner, VNish):
        return await miner.set_power_limit(watts)
    listed = await miner.web.autotune_presets()
    presets = [MiningPreset.from_vnish(p) for p in (listed.get("presets", []) if isinstance(listed, dict) else listed)]
    fits = [int(p.power) for p in presets if p.tuned and p.power is not None and int(p.power) <= watts]
    if not fits:
        return False
    await miner.web.set_power_limit(max(fits))
    settings = await miner.web.settings()
    return str(settings["miner"]["overclock"]["preset"]) == str(max(fits))


async def _once(c: Command, timeout_s: float) -> tuple[bool, str]:
    miner = await asyncio.wait_for(pyasic.get_miner(c.ip), timeout_s)
    if miner is None:
        return False, "no miner answered"
    if c.action == "sleep":
        sent = await asyncio.wait_for(miner.stop_mining(), timeout_s)
    elif c.action == "wake":
        sent = await asyncio.wait_for(miner.resume_mining(), timeout_s)
        if sent and c.watts is not None:
            sent = await asyncio.wait_for(_set_power(miner, int(c.watts)), timeout_s)
    else:
        sent = await asyncio.wait_for(_set_power(miner, int(c.watts)), timeout_s)
    if not sent:
        return False, f"{c.action} refused by the firmware"
    data = await asyncio.wait_for(miner.get_data(include=READ_BACK), timeout_s)
    hashing = bool(data.hashrate and float(data.hashrate) > 0)
    if c.action == "sleep":
        return (not hashing, "verified asleep") if not hashing else (False, "still hashing after sleep")
    if not hashing:
        return False, f"not hashing after {c.action}"
    if data.wattage is None or float(data.wattage) > c.watts * 1.05:
        return False, f"draws {data.wattage} W after a {c.watts:g} W target"
    return True, f"verified at {float(data.wattage):,.0f} W"


async def _command(c: Command, timeout_s: float, retries: int) -> Applied:
    detail = ""
    for attempt in range(1, retries + 2):
        try:
            ok, detail = await _once(c, timeout_s)
        except asyncio.TimeoutError:
            ok, detail = False, f"no answer within {timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - a machine's garbage reply (pyasic raises KeyError, ValidationError,
            # …) is that machine's failure, reported with it; it must not stop the commands to every other one
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:200]
        if ok:
            return Applied(c, True, detail, attempt)
    return Applied(c, False, detail, retries + 1)


def apply_decision(cfg: SiteConfig, store: Store, machines: list[Machine], doc: Decision, seq: int | None,
                   dry_run: bool, now: datetime) -> tuple[list[tuple], int]:
    """Scan, plan, and (unless `dry_run`) command the fleet to `doc`'s step 0; every command (or planned one)
    is audited in the store. Returns the audit entries (ip, pool, command, result, detail, attempts) and the
    number of waves."""
    check_pools(cfg, doc)
    use_password(cfg)
    scan_into(store, machines, now, cfg.fleet.concurrency, cfg.fleet.timeout_s)
    telemetry = store.latest_telemetry()
    if machines:  # the inventory's machines only: an address scanned once and since removed is not commanded
        telemetry = telemetry[telemetry["ip"].isin({m.ip for m in machines})]
    holds = store.active_holds(now)
    pool_holds = {h["pool"]: h for h in holds.to_dict("records") if isinstance(h.get("pool"), str)}
    held, held_off = held_machines(holds), held_off_machines(holds)
    for pool_cfg in cfg.asic_pools:
        target = doc.pool(pool_cfg.name)
        if pool_cfg.name in pool_holds and target is not None and \
                held_units_by_mode(pool_cfg, target.units_by_mode, pool_holds[pool_cfg.name]) != dict(target.units_by_mode):
            log.warning("fleet apply seq=%s: pool %s is %s: its hold wins over the decision's %s", seq, pool_cfg.name,
                        hold_text(pool_holds[pool_cfg.name]), ", ".join(f"{n:,} {m}" for m, n in target.units_by_mode.items()) or "0 units")
    fleet_pools = set(telemetry["pool"])
    other_it_kw = sum(p.power_kw for p in doc.pools if p.name not in fleet_pools)  # load hashpivot does not command
    fleet_kw = float(telemetry.loc[telemetry["reachable"] == 1, "watts"].fillna(0).sum()) / 1000.0
    cap_kw = cfg.site.interconnect_cap_kw / cfg.site.pue - other_it_kw
    ramp = cfg.site.ramp_limit_kw_per_step / cfg.site.pue if cfg.site.ramp_limit_kw_per_step else None
    planned = plan(cfg, doc, telemetry, held, commanded=commanded_targets(store.last_ok_commands()),
                   pool_holds=pool_holds, held_off=held_off)
    commands, deferred = limit_changes(planned, len(telemetry), cfg.fleet.max_change_fraction)
    commands, beyond_ramp = within_ramp(commands, ramp)
    steps = waves(commands, fleet_kw, max(cap_kw, fleet_kw), ramp)
    in_waves = {id(c) for wave in steps for c in wave}
    beyond_cap = [c for c in commands if id(c) not in in_waves]
    missing = unavailable(cfg, doc, telemetry, held, pool_holds)

    def label(c: Command) -> str:
        return c.action + (f" {c.watts:g} W" if c.watts else "")

    run = "dry run: " if dry_run else ""
    if deferred:
        log.warning("fleet apply seq=%s: %d commands deferred to the next decision (fleet.max_change_fraction = %g of "
                    "%d machines)", seq, len(deferred), cfg.fleet.max_change_fraction, len(telemetry))
    if beyond_ramp:
        log.warning("fleet apply seq=%s: %d raises (%.0f kW) deferred to the next decision: one apply raises the meter, net of "
                    "its reductions, by at most site.ramp_limit_kw_per_step = %g kW", seq, len(beyond_ramp),
                    sum(c.delta_kw for c in beyond_ramp) * cfg.site.pue, cfg.site.ramp_limit_kw_per_step)
    if beyond_cap:
        log.warning("fleet apply seq=%s: %d raises (%.0f kW) deferred to the next decision: the interconnect cap "
                    "(site.interconnect_cap_kw = %g kW) leaves no room for them at the meter now", seq, len(beyond_cap),
                    sum(c.delta_kw for c in beyond_cap) * cfg.site.pue, cfg.site.interconnect_cap_kw)
    held_back = [(c.ip, c.pool, label(c), "deferred", f"{run}fleet.max_change_fraction = {cfg.fleet.max_change_fraction:g}", 0)
                 for c in deferred]
    held_back += [(c.ip, c.pool, label(c), "deferred", f"{run}site.ramp_limit_kw_per_step = "
                   f"{cfg.site.ramp_limit_kw_per_step:g} kW", 0) for c in beyond_ramp]
    held_back += [(c.ip, c.pool, label(c), "deferred", f"{run}site.interconnect_cap_kw = {cfg.site.interconnect_cap_kw:g} kW",
                   0) for c in beyond_cap]
    if missing:
        log.warning("fleet apply seq=%s: %d machines cannot be commanded where the decision needs them (first: %s %s: "
                    "%s); see `hashpivot fleet log`", seq, len(missing), missing[0].ip, missing[0].pool, missing[0].detail)
    held_back += [(m.ip, m.pool, "none", "unavailable", m.detail[:200], 0) for m in missing]
    store.log_commands(now, seq, held_back)

    if dry_run:
        entries = [(c.ip, c.pool, label(c), "planned", f"wave {n}", 0) for n, wave in enumerate(steps, start=1) for c in wave]
        store.log_commands(now, seq, entries)
    else:
        stop = Path(cfg.fleet.stop_file) if cfg.fleet.stop_file else None
        entries = []

        def audit(a: Applied) -> None:  # as each command ends: a kill mid-wave loses no record of what was done
            row = (a.command.ip, a.command.pool, label(a.command), "ok" if a.ok else "failed", a.detail, a.attempts)
            store.log_commands(now, seq, [row])
            entries.append(row)

        done = asyncio.run(apply_waves(steps, cfg.fleet.timeout_s, cfg.fleet.retries, cfg.fleet.concurrency, stop,
                                       on_command=audit))
        if len(done) < len(in_waves):  # the kill switch: what was planned and not sent, audited as such
            sent = {id(a.command) for a in done}
            stopped = [(c.ip, c.pool, label(c), "stopped", f"not sent: {stop} exists (fleet.stop_file, the kill switch)", 0)
                       for wave in steps for c in wave if id(c) not in sent]
            store.log_commands(now, seq, stopped)
            entries.extend(stopped)
        _read_back_into(store, cfg, [m for m in machines if m.ip in {e[0] for e in entries}],
                        {e[0]: e[4] for e in entries if e[3] == "failed"})
    entries += held_back  # what was not sent, and why, in the apply's own table too
    entries += apply_gpu_pools(cfg, store, doc, seq, dry_run, now)  # GPU pools after the ASIC waves, audited alike
    log.info("fleet apply seq=%s dry_run=%s commands=%d failed=%d waves=%d", seq, dry_run, len(entries),
             sum(e[3] == "failed" for e in entries), len(steps))
    return entries, len(steps)


def check_pools(cfg: SiteConfig, doc: Decision) -> None:
    """InputError if the decision has a pool this site's config does not: a decision from another site (or an
    older config) would command machines to another site's targets. A pool it leaves out is not commanded."""
    have = {(p.name, p.kind) for p in doc.pools}
    want = {(p.name, "asic") for p in cfg.asic_pools} | {(p.name, "gpu") for p in cfg.gpu_pools}
    if have - want:
        raise InputError(f"the decision has pools {_pool_names(have - want)} that this site's config does not "
                         f"({_pool_names(want)}): a decision from another site or an older config is never applied")


def _pool_names(pools: set[tuple[str, str]]) -> str:
    return ", ".join(sorted(f"{name} ({kind})" for name, kind in pools)) or "none"


def _read_back_into(store: Store, cfg: SiteConfig, commanded: list[Machine], failed: dict[str, str]) -> None:
    """Scan the machines just commanded, so the store's telemetry is what they run now (the next decision
    starts from it), and mark each machine whose command failed as erroring with the reason: it is left out
    of the next decision until a later scan finds it healthy."""
    if not commanded:
        return
    rows = scan(commanded, now_utc(), cfg.fleet.concurrency, cfg.fleet.timeout_s)
    store.add_telemetry([replace(r, error=f"command failed: {failed[r.ip]}"[:200]) if r.ip in failed else r for r in rows])


async def apply_waves(waves: list[list[Command]], timeout_s: float = 5.0, retries: int = 1, concurrency: int = 50,
                      stop_file: Path | None = None, between_waves_s: float = 0.0, on_command=None) -> list[Applied]:
    """Send each wave's commands (bounded concurrency) and read them back; the next wave starts once the
    previous one is done, so the site's power follows the plan's steps. `stop_file` present: stop.
    `on_command` is called with each command's result as soon as it has one (the audit)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(c: Command) -> Applied:
        async with gate:
            applied = await _command(c, timeout_s, retries)
        if on_command is not None:
            on_command(applied)
        return applied

    results: list[Applied] = []
    for number, wave in enumerate(waves, start=1):
        if stop_file is not None and stop_file.exists():
            log.warning("fleet apply stopped before wave %d: %s exists (kill switch)", number, stop_file)
            break
        done = await asyncio.gather(*(one(c) for c in wave))
        results += done
        log.info("fleet wave=%d commands=%d ok=%d failed=%d", number, len(done), sum(a.ok for a in done),
                 sum(not a.ok for a in done))
        if between_waves_s:
            await asyncio.sleep(between_waves_s)
    return results
