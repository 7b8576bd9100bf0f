"""Which machines to command so the fleet runs a decision's step 0 (pure: a decision, the latest telemetry,
the operator's holds and the config in, a plan out).

Per ASIC pool: the decision's units per mode become machines. A pool hold wins over the decision (a decision
file from before the hold: off is no units, N units exactly N, a mode that mode only). Machines keep their
state where the counts allow (no churn); the least efficient measured machines (W per TH/s) go to sleep
first; machines that are unreachable, erroring or held by an operator are never commanded, except that a
machine held off and found mining is put to sleep. A mode's power target is its `power_w` in the config.
Commands that reduce power come first, then the raises, in waves (`waves`), at most one ramp limit of raises
per decision (`within_ramp`). Machines that cannot be commanded where the decision needs them are
`unavailable` rows with the reason, never silently left as they are.
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


def _watts(value) -> float:
    return 0.0 if value is None or pd.isna(value) else float(value)


@dataclass(frozen=True)
class Unavailable:
    """A machine the decision needs commanded that cannot be: why, and what it leaves undone."""

    ip: str
    pool: str
    detail: str


def held_units_by_mode(pool_cfg, units_by_mode: dict[str, int], hold: dict | None) -> dict[str, int]:
    """The decision's units per mode for a pool, with the operator's pool hold applied (`hold`: a row of
    `Store.active_holds`): off -> none; N units -> exactly N (in the decision's main mode, or the pool's first);
    a mode -> every unit in it."""
    if hold is None:
        return dict(units_by_mode)
    if hold.get("off"):
        return {}
    if hold.get("units") is not None and not pd.isna(hold["units"]):
        n = int(hold["units"])
        if sum(units_by_mode.values()) == n:
            return dict(units_by_mode)
        mode = max(units_by_mode, key=units_by_mode.get) if units_by_mode else pool_cfg.modes[0].name
        return {mode: n} if n else {}
    if isinstance(hold.get("mode"), str):
        n = sum(units_by_mode.values())
        return {hold["mode"]: n} if n else {}
    return dict(units_by_mode)


def plan(cfg: SiteConfig, decision: Decision, telemetry: pd.DataFrame, held: set[str] = frozenset(),
         idle_w: float = 95.0, commanded: dict[str, tuple[float, float]] | None = None,
         pool_holds: dict[str, dict] | None = None, held_off: set[str] = frozenset()) -> list[Command]:
    """The commands that take the fleet from its telemetry to the decision's step 0, reductions first.
    `commanded` (`commanded_targets` of the audit) says which mode a machine was last set to, so a target the
    firmware rounds down is not sent again every decision. `held`: machines never commanded, but those in
    `held_off` that are found mining are put to sleep; `pool_holds`: per pool, its active hold."""
    commands: list[Command] = []
    for row in telemetry[telemetry["ip"].isin(held_off) & (telemetry["reachable"] == 1) & telemetry["error"].isna()
                         & (telemetry["mining"] == 1)].itertuples():
        commands.append(Command(row.ip, row.pool, "sleep", delta_kw=(idle_w - _watts(row.watts)) / 1000.0))
    for pool_cfg in cfg.asic_pools:
        target = decision.pool(pool_cfg.name)
        machines = telemetry[telemetry["pool"] == pool_cfg.name]
        if target is None or machines.empty:
            continue
        wanted = held_units_by_mode(pool_cfg, target.units_by_mode, (pool_holds or {}).get(pool_cfg.name))
        targets = {m.name: m.power_w for m in pool_cfg.modes}
        usable = machines[(machines["reachable"] == 1) & machines["error"].isna() & ~machines["ip"].isin(held)]
        mining = usable[usable["mining"] == 1].assign(
            w_per_th=lambda d: d["watts"] / d["hashrate_th"].where(d["hashrate_th"] > 0),
            mode=lambda d: [machine_mode(w, targets, (commanded or {}).get(ip)) for ip, w in zip(d["ip"], d["watts"])])
        asleep = usable[usable["mining"] != 1]
        want = sum(wanted.values())
        mining = mining.sort_values(["w_per_th", "ip"])  # most efficient first
        keep, off = mining.iloc[:want], mining.iloc[want:]
        wake = asleep.sort_values("ip").iloc[: max(want - len(keep), 0)]
        for row in off.itertuples():
            commands.append(Command(row.ip, pool_cfg.name, "sleep", delta_kw=(idle_w - row.watts) / 1000.0))
        # modes: machines already in a wanted mode keep it; the rest are set
        left = dict(wanted)
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


def unavailable(cfg: SiteConfig, decision: Decision, telemetry: pd.DataFrame, held: set[str] = frozenset(),
                pool_holds: dict[str, dict] | None = None) -> list[Unavailable]:
    """Per ASIC pool, the machines that cannot be commanded where that leaves the pool off its target:
    machines that answer with an error (a refused password, a firmware fault) and are mining or cannot say,
    when the pool should run fewer units than that leaves running; and every uncommandable machine when the
    commandable ones are too few for the decision's units."""
    out: list[Unavailable] = []
    for pool_cfg in cfg.asic_pools:
        target = decision.pool(pool_cfg.name)
        machines = telemetry[(telemetry["pool"] == pool_cfg.name) & ~telemetry["ip"].isin(held)]
        if target is None or machines.empty:
            continue
        want = sum(held_units_by_mode(pool_cfg, target.units_by_mode, (pool_holds or {}).get(pool_cfg.name)).values())
        ok = int(((machines["reachable"] == 1) & machines["error"].isna()).sum())
        bad = machines[(machines["reachable"] != 1) | machines["error"].notna()]
        running = bad[(bad["reachable"] == 1) & (bad["mining"].fillna(1) != 0)]  # answers, but may hash on regardless
        if len(running) > max(want - ok, 0):
            for r in running.itertuples():
                known = not pd.isna(r.mining) and int(r.mining) == 1
                state = f"mining at {_watts(r.watts):,.0f} W" if known else "may be mining (it cannot say)"
                out.append(Unavailable(r.ip, pool_cfg.name, f"{r.error}; {state}, and cannot be put to sleep (the "
                                                            f"decision runs {want:,} units)"))
        short = want - ok - len(running)  # the erroring machines that hash on count toward the target
        if short > 0:
            for r in bad[~bad["ip"].isin(running["ip"])].itertuples():
                why = r.error if isinstance(r.error, str) else "unreachable"
                out.append(Unavailable(r.ip, pool_cfg.name, f"{why}; cannot be started: the pool runs {short:,} "
                                                            f"unit{'' if short == 1 else 's'} short of the decision's {want:,}"))
    return out


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
