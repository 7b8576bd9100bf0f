"""GPU pools' actuators: a decision's step 0 for each GPU pool (contract GPUs on, marketplace GPUs on) turned
into calls, every call audited like an ASIC command (`Store.log_commands`, shown by `hashpivot fleet log`).

- `vastai`: enough whole machines listed on the Vast.ai marketplace for the marketplace GPUs (ceil by
  gpus_per_machine), the rest unlisted, the asking price = the pool's marketplace rate, never below the
  configured floor; every call read back with `show machines`.
- `command`: the operator's executable, run without a shell, with the pool's target as JSON on stdin.

Contract GPUs are never taken below a firm contract (no SLA penalty): a decision that asks for fewer is
clamped, and an audit row says so. A dry run plans and audits, and sends nothing (it reads the marketplace's
state, as an ASIC dry run scans). Credentials are read when an actuator runs (feeds/fleet/secrets.py) and
never reach an audit row, a log line or an error."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from hashpivot.feeds.fleet.secrets import Secret, read_secret, redact
from hashpivot.feeds.fleet.vast import VastClient, VastMachine
from hashpivot.feeds.store import Store
from hashpivot.models.config import CommandActuator, GpuPool, SiteConfig, VastActuator
from hashpivot.models.decision import Decision, PoolDecision
from hashpivot.models.errors import ActuatorError, ConfigError

log = logging.getLogger(__name__)

OUTPUT_LOGGED_CHARS = 2000  # of a command's stdout/stderr, in the log
DETAIL_CHARS = 300  # of any detail, in the audit table
PRICE_TOLERANCE = 0.0005  # USD/GPU-h: read back within this is the price asked


@dataclass(frozen=True)
class GpuTarget:
    """One GPU pool's step 0 as the actuators get it (after the firm-contract clamp)."""

    pool: str
    decision_seq: int | None
    interval_start_utc: str
    time_utc: str
    gpus_on: int
    contract_gpus: int
    marketplace_gpus: int
    power_kw: float
    marketplace_rate_usd_per_gpu_hour: float | None
    clamped_from_contract_gpus: int | None = None  # what the decision asked, when the floor overrode it


def firm_floor(pool: GpuPool) -> int:
    """Contract GPUs no actuator may take away: all committed ones of a contract without an SLA penalty
    (the model's contract_floors family); a penalised contract's curtailment is the model's priced choice."""
    c = pool.contract
    return c.committed_gpus if c is not None and c.sla_penalty_usd_per_gpu_hour is None else 0


def gpu_target(pool: GpuPool, pd: PoolDecision, doc: Decision, seq: int | None, now: datetime) -> GpuTarget:
    """Pure: the pool's target from the decision, contract GPUs clamped up to the firm floor."""
    asked = int(pd.contract_on or 0)
    floor = firm_floor(pool)
    contract = max(asked, floor)
    market = int(pd.market_on or 0)
    market = max(0, min(market, pool.gpus_installed - contract))  # the clamp never lifts the pool past its GPUs
    power_kw = pd.power_kw + (contract - asked) * pool.full_power_kw + (market - int(pd.market_on or 0)) * pool.market_power_kw
    rate = (doc.inputs.gpu_rates_usd_per_gpu_hour.get(pool.name) if doc.inputs else None) or pool.marketplace_rate_usd_per_gpu_hour
    return GpuTarget(pool.name, seq, doc.interval_start_utc, now.isoformat().replace("+00:00", "Z"), contract + market,
                     contract, market, round(power_kw, 3), rate, asked if contract != asked else None)


# --------------------------------------------------------------------------- vastai


@dataclass(frozen=True)
class VastCall:
    machine_id: int
    action: str  # list | reprice | unlist
    price_usd_per_gpu_hour: float | None = None

    @property
    def label(self) -> str:
        return self.action + (f" {self.price_usd_per_gpu_hour:.3f} USD/GPU-h" if self.price_usd_per_gpu_hour else "")


def asking_price(act: VastActuator, target: GpuTarget) -> float:
    """The pool's marketplace rate, never below the actuator's floor, to the tenth of a cent."""
    return round(max(target.marketplace_rate_usd_per_gpu_hour or 0.0, act.min_price_usd_per_gpu_hour), 3)


def vast_plan(act: VastActuator, marketplace_gpus: int, state: dict[int, VastMachine], price: float) -> list[VastCall]:
    """Pure: whole machines to list for `marketplace_gpus` (ceil by gpus_per_machine, at most the pool's),
    least churn first (a rented machine stays listed before an idle listed one, both before an unlisted one),
    the rest unlisted; a listed machine at another price is re-priced."""
    known = [i for i in act.machine_ids if i in state]
    wanted = min(len(known), math.ceil(marketplace_gpus / act.gpus_per_machine))
    order = sorted(known, key=lambda i: (not state[i].listed, -state[i].rentals_running, act.machine_ids.index(i)))
    keep = set(order[:wanted])
    calls = []
    for i in known:
        m = state[i]
        if i in keep and not m.listed:
            calls.append(VastCall(i, "list", price))
        elif i in keep and (m.price_usd_per_gpu_hour is None or abs(m.price_usd_per_gpu_hour - price) > PRICE_TOLERANCE):
            calls.append(VastCall(i, "reprice", price))
        elif i not in keep and m.listed:
            calls.append(VastCall(i, "unlist"))
    return calls


def _vast_key(cfg: SiteConfig, act: VastActuator) -> Secret:
    index = cfg.fleet.gpu_actuators.index(act)
    key = read_secret(act.api_key_env, act.api_key_file, f"fleet.gpu_actuators[{index}] ({act.pool}) Vast.ai API key")
    return Secret(key)


def run_vast(cfg: SiteConfig, act: VastActuator, target: GpuTarget, dry_run: bool, now: datetime) -> list[tuple]:
    """Read the account's machines, list/unlist/re-price toward the target, read back. Audit rows."""
    where = f"vast:{act.api_url}"
    try:
        key = _vast_key(cfg, act)
    except ConfigError as exc:
        return [(where, act.pool, "show machines", "failed", str(exc)[:DETAIL_CHARS], 0)]
    price = asking_price(act, target)
    with VastClient(act.api_url, key, act.timeout_s, act.retries, act.backoff_s) as client:
        try:
            state, _ = client.machines()
        except ActuatorError as exc:
            return [(where, act.pool, "show machines", "failed", f"nothing sent: {exc}"[:DETAIL_CHARS], exc.attempts)]
        rows = [(f"vast:{i}", act.pool, "list", "failed", "machine is not on this Vast.ai account (check machine_ids)", 0)
                for i in act.machine_ids if i not in state]
        calls = vast_plan(act, target.marketplace_gpus, state, price)
        listed_after = sum(1 for i in act.machine_ids if i in state and state[i].listed) + sum(
            c.action == "list" for c in calls) - sum(c.action == "unlist" for c in calls)
        log.info("vastai pool=%s marketplace_gpus=%d machines_listed=%d calls=%d price=%.3f dry_run=%s", act.pool,
                 target.marketplace_gpus, listed_after, len(calls), price, dry_run)
        if listed_after * act.gpus_per_machine < target.marketplace_gpus:
            log.warning("vastai pool=%s: %d machines x %d GPUs cannot offer the decision's %d marketplace GPUs "
                        "(add machine_ids, or lower gpu_pools.gpus_available)", act.pool, listed_after,
                        act.gpus_per_machine, target.marketplace_gpus)
        if dry_run:
            return rows + [(f"vast:{c.machine_id}", act.pool, c.label, "planned",
                            f"for {target.marketplace_gpus} marketplace GPUs: {listed_after} machines listed", 0) for c in calls]
        sent: list[tuple[VastCall, int]] = []
        end_date = now.timestamp() + act.listing_days * 86400
        for c in calls:
            try:
                attempts = (client.unlist_machine(c.machine_id) if c.action == "unlist"
                            else client.list_machine(c.machine_id, price, act.min_chunk, end_date))
            except ActuatorError as exc:
                rows.append((f"vast:{c.machine_id}", act.pool, c.label, "failed", str(exc)[:DETAIL_CHARS], exc.attempts))
                continue
            sent.append((c, attempts))
        if sent:
            try:
                after, _ = client.machines()
            except ActuatorError as exc:
                rows += [(f"vast:{c.machine_id}", act.pool, c.label, "failed", f"sent, not verified: {exc}"[:DETAIL_CHARS], n)
                         for c, n in sent]
                return rows
            rows += [(f"vast:{c.machine_id}", act.pool, c.label, *_verified(c, after.get(c.machine_id)), n) for c, n in sent]
    return rows


def _verified(c: VastCall, m: VastMachine | None) -> tuple[str, str]:
    if m is None:
        return "failed", "read back: the machine is gone from the account"
    if c.action == "unlist":
        return ("ok", "verified unlisted") if not m.listed else ("failed", "read back: still listed after unlist")
    if not m.listed:
        return "failed", f"read back: not listed after {c.action}"
    if m.price_usd_per_gpu_hour is None or abs(m.price_usd_per_gpu_hour - c.price_usd_per_gpu_hour) > PRICE_TOLERANCE:
        return "failed", f"read back: listed at {m.price_usd_per_gpu_hour} USD/GPU-h, not {c.price_usd_per_gpu_hour:.3f}"
    return "ok", f"verified listed at {m.price_usd_per_gpu_hour:.3f} USD/GPU-h ({m.num_gpus} GPUs)"


# --------------------------------------------------------------------------- command


def _child_env(cfg: SiteConfig) -> dict[str, str]:
    """The daemon's environment without the variables that hold hashpivot's own credentials."""
    secret_vars = {a.api_key_env for a in cfg.fleet.gpu_actuators if getattr(a, "api_key_env", None)}
    return {k: v for k, v in os.environ.items() if k not in secret_vars}


def run_command(cfg: SiteConfig, act: CommandActuator, target: GpuTarget, dry_run: bool, now: datetime) -> list[tuple]:
    """Run argv (no shell) with the target as JSON on stdin, in its own process group so a timeout kills
    whatever it started too; exit 0 is success. stdout/stderr are logged, truncated."""
    where = f"command:{Path(act.argv[0]).name}"
    payload = json.dumps({k: v for k, v in asdict(target).items() if k != "marketplace_rate_usd_per_gpu_hour"}
                         | {"dry_run": dry_run}, sort_keys=True)
    label = f"target {target.gpus_on} GPUs ({target.contract_gpus} contract, {target.marketplace_gpus} marketplace)"
    if dry_run:
        return [(where, act.pool, label, "planned", f"stdin {payload}"[:DETAIL_CHARS], 0)]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(act.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_child_env(cfg), start_new_session=True)
    except OSError as exc:
        return [(where, act.pool, label, "failed", f"cannot run {act.argv[0]}: {exc.strerror}", 1)]
    try:
        out, err = proc.communicate(payload.encode(), timeout=act.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        result, detail = "failed", f"killed after {act.timeout_s:g} s (timeout_s)"
    else:
        ok = proc.returncode == 0
        result, detail = ("ok" if ok else "failed"), f"exit {proc.returncode}"
    stdout, stderr = (x.decode("utf-8", "replace").strip() for x in (out, err))
    log.info("gpu command pool=%s argv0=%s result=%s detail=%r seconds=%.1f stdout=%r stderr=%r", act.pool, act.argv[0],
             result, detail, time.monotonic() - started, stdout[:OUTPUT_LOGGED_CHARS], stderr[:OUTPUT_LOGGED_CHARS])
    tail = stderr if result == "failed" and stderr else stdout
    if tail:
        detail += f"; {'stderr' if tail is stderr else 'stdout'}: {tail[-200:]}"
    return [(where, act.pool, label, result, detail[:DETAIL_CHARS], 1)]


# --------------------------------------------------------------------------- registry and entry point

ACTUATORS: dict[str, Callable[[SiteConfig, object, GpuTarget, bool, datetime], list[tuple]]] = {
    "vastai": run_vast,
    "command": run_command,
}


def apply_gpu_pools(cfg: SiteConfig, store: Store, doc: Decision, seq: int | None, dry_run: bool,
                    now: datetime) -> list[tuple]:
    """Drive every configured GPU actuator to `doc`'s step 0 and audit each call (ip, pool, command, result,
    detail, attempts) as soon as its actuator returns. Nothing runs while fleet.stop_file exists."""
    if not cfg.fleet.gpu_actuators:
        return []
    if cfg.fleet.stop_file and Path(cfg.fleet.stop_file).exists():
        log.warning("gpu actuators skipped: %s exists (kill switch)", cfg.fleet.stop_file)
        return []
    pools = {g.name: g for g in cfg.gpu_pools}
    secrets = [a.api_key_env for a in cfg.fleet.gpu_actuators if getattr(a, "api_key_env", None)]
    entries: list[tuple] = []
    targets: dict[str, GpuTarget] = {}
    missing: set[str] = set()
    for act in cfg.fleet.gpu_actuators:
        if act.pool in missing:
            continue
        if act.pool not in targets:
            pd = doc.pool(act.pool)
            if pd is None or pd.kind != "gpu":
                missing.add(act.pool)
                rows = [(f"gpu:{act.pool}", act.pool, act.kind, "failed", "the decision has no GPU pool of this name", 0)]
                store.log_commands(now, seq, rows)
                entries += rows
                continue
            targets[act.pool] = t = gpu_target(pools[act.pool], pd, doc, seq, now)
            if t.clamped_from_contract_gpus is not None:
                rows = [(f"gpu:{act.pool}", act.pool, "clamp contract GPUs", "clamped",
                         f"decision had {t.clamped_from_contract_gpus} contract GPUs on; the firm contract keeps "
                         f"{t.contract_gpus} on (no actuator goes below it)", 0)]
                log.warning("gpu pool=%s contract GPUs clamped from %d to the firm %d", act.pool,
                            t.clamped_from_contract_gpus, t.contract_gpus)
                store.log_commands(now, seq, rows)
                entries += rows
        rows = ACTUATORS[act.kind](cfg, act, targets[act.pool], dry_run, now)
        rows = [(r[0], r[1], r[2], r[3], redact(str(r[4]), *(os.environ.get(v) for v in secrets)), r[5]) for r in rows]
        store.log_commands(now, seq, rows)
        entries += rows
    log.info("gpu apply seq=%s dry_run=%s calls=%d failed=%d", seq, dry_run, len(entries),
             sum(e[3] == "failed" for e in entries))
    return entries
