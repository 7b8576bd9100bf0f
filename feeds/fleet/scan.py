"""Telemetry of every machine, read through pyasic (the maintained library for ASIC firmware APIs) with
bounded concurrency and a timeout per machine: reachable, mining or sleeping, measured W and TH/s, board
temperature, errors."""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyasic
from pyasic import settings as pyasic_settings

from hashpivot.feeds.fleet.inventory import Machine
from hashpivot.feeds.fleet.secrets import read_secret
from hashpivot.feeds.store import Store
from hashpivot.models.config import SiteConfig

log = logging.getLogger(__name__)

# the getters a telemetry pass needs; config/pools/fans are left out (slower, and nothing here reads them)
DATA = [pyasic.DataOptions.HASHRATE, pyasic.DataOptions.WATTAGE, pyasic.DataOptions.HASHBOARDS,
        pyasic.DataOptions.ERRORS, pyasic.DataOptions.IS_MINING, pyasic.DataOptions.WATTAGE_LIMIT]


@dataclass(frozen=True)
class Telemetry:
    ip: str
    pool: str
    at_utc: datetime
    reachable: bool
    mining: bool | None = None  # None when unreachable
    watts: float | None = None
    hashrate_th: float | None = None
    temp_c: float | None = None
    error: str | None = None  # why the machine is unreachable or faulty
    power_target_w: float | None = None  # the firmware's power target / preset, W


AUTH_REFUSED = ("refused the password: check fleet.password_env / fleet.password_file (the miners' web/API "
                "password)")
# pyasic also warns once per refused login (two lines on stderr per machine); the telemetry row says it instead
warnings.filterwarnings("ignore", message="Could not authenticate", category=UserWarning, module="pyasic")


async def _read(machine: Machine, now: datetime, timeout_s: float, attempts: int = 2) -> Telemetry:
    """One machine's telemetry; a machine that answers without any telemetry is asked again (`attempts`)."""
    try:
        miner = await asyncio.wait_for(pyasic.get_miner(machine.ip), timeout_s)
        if miner is None:
            return Telemetry(machine.ip, machine.pool, now, False, error="no miner answered")
        for _ in range(attempts):
            data = await asyncio.wait_for(miner.get_data(include=DATA), timeout_s)
            if data.hashrate is not None or data.wattage is not None:
                break
    except asyncio.TimeoutError:
        return Telemetry(machine.ip, machine.pool, now, False, error=f"no answer within {timeout_s:g} s")
    except Exception as exc:  # noqa: BLE001 - one machine's garbage reply (pyasic raises KeyError, ValidationError,
        # …) makes that machine unreadable; it must not stop the scan of every other one
        if "authenticate" in str(exc):  # it answers but refuses the password: erroring, not unreachable
            return Telemetry(machine.ip, machine.pool, now, True, error=AUTH_REFUSED)
        return Telemetry(machine.ip, machine.pool, now, False, error=f"{type(exc).__name__}: {exc}"[:200])
    hashrate = float(data.hashrate) if data.hashrate is not None else None
    temps = [b.temp for b in data.hashboards if b.temp]
    errors = "; ".join(str(e) for e in (data.errors or [])) or None
    # LuxOS's is_mining is always true in pyasic 0.79 (docs/fleet-protocols.md): hashing is what says so
    mining = bool(hashrate and hashrate > 0.0)
    watts = float(data.wattage) if data.wattage else None
    if hashrate is None and watts is None and errors is None:
        errors = "answers, but with no telemetry (its API reports errors)"
    target = float(data.wattage_limit) if data.wattage_limit else None
    return Telemetry(machine.ip, machine.pool, now, True, mining, watts, hashrate, max(temps) if temps else None, errors,
                     target)


async def scan_async(machines: list[Machine], now: datetime, concurrency: int = 50, timeout_s: float = 5.0) -> list[Telemetry]:
    pyasic_settings.update("factory_get_timeout", max(1, int(timeout_s)))
    pyasic_settings.update("factory_get_retries", 1)
    gate = asyncio.Semaphore(concurrency)

    async def one(machine: Machine) -> Telemetry:
        async with gate:
            return await _read(machine, now, timeout_s)

    return list(await asyncio.gather(*(one(m) for m in machines)))


def telemetry_frame(rows: list[Telemetry]) -> pd.DataFrame:
    """Telemetry rows as the DataFrame the planner and `pool_status` read (the shape of `Store.latest_telemetry`)."""
    return pd.DataFrame([r.__dict__ for r in rows]).assign(reachable=lambda d: d["reachable"].astype(int),
                                                           mining=lambda d: d["mining"].astype("Int64"))


PASSWORD_SETTINGS = ("default_vnish_web_password", "default_antminer_web_password", "default_bosminer_web_password",
                     "default_whatsminer_rpc_password")


def use_password(cfg: SiteConfig) -> None:
    """Give pyasic the miners' password from fleet.password_env / password_file (a file readable by group or
    others is refused); without either, pyasic's firmware defaults stay. The value goes to pyasic's settings
    only: never to a log, the store or a document."""
    password = read_secret(cfg.fleet.password_env, cfg.fleet.password_file, "fleet miners' password")
    if password is not None:
        for key in PASSWORD_SETTINGS:
            pyasic_settings.update(key, password)


def scan_into(store: Store, machines: list[Machine], now: datetime, concurrency: int, timeout_s: float) -> list[Telemetry]:
    """Scan every machine once and store the telemetry (the daemon's scan job, `fleet scan`, `fleet apply`).
    An address of fleet.ranges counts as a machine once it has answered: silent addresses that never did are
    left out; one that answered before and is silent now is stored as unreachable."""
    rows = scan(machines, now, concurrency, timeout_s)
    ranged = {m.ip for m in machines if m.discovered}
    if ranged:
        known = store.telemetry_ips()
        rows = [r for r in rows if r.ip not in ranged or r.reachable or r.ip in known]
    store.add_telemetry(rows)
    return rows


def scan(machines: list[Machine], now: datetime, concurrency: int = 50, timeout_s: float = 5.0) -> list[Telemetry]:
    """Read every machine once (in its own event loop); unreachable or faulty machines are rows too."""
    rows = asyncio.run(scan_async(machines, now, concurrency, timeout_s))
    log.info("fleet scan machines=%d reachable=%d mining=%d", len(rows), sum(r.reachable for r in rows),
             sum(bool(r.mining) for r in rows))
    return rows
