"""Which machines to command so the fleet runs a decision's step 0 (pure: a decision, the latest telemetry
and the config in, a plan out).

Per ASIC pool: the decision's units per mode become machines. Machines keep their state where the counts
allow (no churn); the least efficient measured machines (W per TH/s) go to sleep first; machines that are
unreachable, erroring or held by an operator are never commanded. A mode's power target is its `power_w` in
the config. Commands that reduce power come first, then the raises, in waves (`waves`), at most one ramp
limit of raises per decision (`within_ramp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from hashpivot.feeds.fleet.status import machine_mode
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision


@dataclass(frozen=True)
class Command:
    ip: str
    pool: str
    action: str  # "sleep" | "wake" | "set_power"
    watts: float | None = None  # the power target (set_power, and wake: the mode to run in)
    delta_kw: float = 0.0  # planned change of the machine's power, kW (negative: a reduction)


def plan(cfg: SiteConfig, decision: Decision, telemetry: pd.DataFrame, held: set[str] = frozenset(),
         idle_w: float = 95.0, commanded: dict[str, tuple[float, float]] | None = None) -> list[Command]:
    """The commands that take the fleet from its telemetry to the decision's step 0, reductions first.
    `commanded` (`commanded_targets` of the audit) says which mode a machine was last set to, so a target the
    firmware rounds down is not sent again every decision."""
    commands: list[Command] = []
    for pool_cfg in cfg.asic_pools:
        target = decision.pool(pool_cfg.name)
        machines = telemetry[telemetry["pool"] == pool_cfg.name]
        if target is None or machines.empty:
            continue
        targets = {m.name: m.power_w for m in pool_cfg.modes}
        usable = machines[(machines["reachable"] == 1) & machines["error"].isna() & ~machines["ip"].isin(held)]
        mining = usable[usable["mining"] == 1].assign(
            w_per_th=lambda d: d["watts"] / d["hashrate_th"].where(d["hashrate_th"] > 0),
            mode=lambda d: [machine_mode(w, targets, (commanded or {}).get(ip)) for ip, w in zip(d["ip"], d["watts"])])
        asleep = usable[usable["mining"] != 1]
        want = sum(target.units_by_mode.values())
        mining = mining.sort_values(["w_per_th", "ip"])  # most efficient first
        keep, off = mining.iloc[:want], mining.iloc[want:]
        wake = asleep.sort_values("ip").iloc[: max(want - len(keep), 0)]
        for row in off.itertuples():
            commands.append(Command(row.ip, pool_cfg.name, "sleep", delta_kw=(idle_w - row.watts) / 1000.0))
        # modes: machines already in a wanted mode keep it; the rest are set
        left = dict(target.units_by_mode)
        unassigned = []
        for row in keep.itertuples():
            if left.get(row.mode, 0) > 0:
                left[row.mode] -= 1
            else:
                unassigned.append(row)
        pending = [mode for mode, n in left.items() for _ in range(n)]
        for row, mode in zip(unassigned, pending):
            commands.append(Command(row.ip, pool_cfg.name, "set_power", targets[mode], (targets[mode] - row.watts) / 1000.0))
        for row, mode in zip(wake.itertuples(), pending[len(unassigned):]):
            commands.append(Command(row.ip, pool_cfg.name, "wake", targets[mode], (targets[mode] - idle_w) / 1000.0))
    return sorted(commands, key=lambda c: (c.delta_kw >= 0, c.delta_kw))  # reductions first, biggest first


def limit_changes(commands: list[Command], machines: int, fraction: float) -> tuple[list[Command], list[Command]]:
    """At most ceil(`fraction` × `machines`) commands, taken in the plan's order (reductions first, biggest
    first), and the rest, deferred to the next decision: a wrong decision can disturb only that share."""
    allowed = math.ceil(fraction * machines - 1e-9)
    return commands[:allowed], commands[allowed:]


def within_ramp(commands: list[Command], ramp_kw: float | None) -> tuple[list[Command], list[Command]]:
    """Every reduction, and the raises (in the plan's order) whose sum stays within one ramp limit above what the
    reductions free (the net rise, as the model's ramp limit counts it, so a mode swap still goes in one apply);
    the rest wait for the next decision, one step later, so the fleet never rises faster than the limit per step
    however far its measured state is from the decision (a first decision, machines back after a failure). One
    raise always goes, so a limit below one machine's power still lets the fleet follow."""
    if ramp_kw is None:
        return commands, []
    ramp_kw += -sum(c.delta_kw for c in commands if c.delta_kw < 0)
    now: list[Command] = []
    later: list[Command] = []
    added = 0.0
    for c in commands:
        if c.delta_kw < 0:
            now.append(c)
        elif later or (added > 0 and added + c.delta_kw > ramp_kw + 1e-9):
            later.append(c)
        else:
            now.append(c)
            added += c.delta_kw
    return now, later


def waves(commands: list[Command], site_kw: float, cap_kw: float, ramp_kw: float | None,
          max_wave: int = 10_000) -> list[list[Command]]:
    """Reductions in one wave; raises in waves whose added power keeps the site under the cap and each wave
    under the ramp limit (the site power after the reductions is what the raises start from)."""
    reductions = [c for c in commands if c.delta_kw < 0]
    raises = [c for c in commands if c.delta_kw >= 0]
    out = [reductions] if reductions else []
    level = site_kw + sum(c.delta_kw for c in reductions)
    wave: list[Command] = []
    wave_kw = 0.0
    for c in raises:
        if wave and (wave_kw + c.delta_kw > (ramp_kw or float("inf")) or len(wave) >= max_wave):
            out.append(wave)
            wave, wave_kw = [], 0.0
        if level + c.delta_kw > cap_kw:
            break  # the cap leaves no room for this raise: it waits for the next decision
        wave.append(c)
        wave_kw += c.delta_kw
        level += c.delta_kw
    if wave:
        out.append(wave)
    return out
