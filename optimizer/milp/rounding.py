"""Integral schedules from the LP relaxation's, without branch-and-bound (pure numpy on Problem and Schedule).

Flooring every unit count never breaks a cap; it can break ramp rows the LP left binding (site power moves by up
to a unit of every pool per step), which `ramp_repair` mends step by step. `fill_up` then gives back the
profitable units flooring removed. The solver certifies the result against the LP bound.
"""

from __future__ import annotations

import math

import numpy as np

from hashpivot.optimizer.milp.families import violations
from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.schedule import (
    Schedule,
    asic_it_kw,
    evaluate,
    hall_it_kw,
    site_kw,
)


def round_schedule(problem: Problem, relaxed: Schedule) -> Schedule:
    """Floor every unit count (never exceeds a cap) and cap the reserve at the remaining curtailable load."""
    def fl(x):
        return np.floor(np.asarray(x) + 1e-6)

    rounded = Schedule(
        asic_units=[fl(u) for u in relaxed.asic_units],
        gpu_contract_on=[fl(c) for c in relaxed.gpu_contract_on],
        gpu_market_on=[fl(x) for x in relaxed.gpu_market_on],
        reserve_kw=relaxed.reserve_kw.copy(),
    )
    rounded.reserve_kw = _reserve_within(problem, rounded)
    return rounded


def _reserve_within(problem: Problem, sched: Schedule) -> np.ndarray:
    """The schedule's reserve, capped at its curtailable ASIC load (site meter) and the offer limit."""
    asic_site = sum(asic_it_kw(problem, sched), np.zeros(problem.steps)) * problem.pue
    return np.clip(np.minimum(sched.reserve_kw, asic_site), 0.0, problem.reserve_max_kw)


def _energy_usd_per_kw(p: Problem, t: int) -> float:
    """What one IT kW costs over step t at the site meter (real-time price plus a positive adder, plus the
    expected 4CP charge)."""
    return ((p.price_usd_per_mwh[t] + max(p.adder_usd_per_mwh, 0.0)) * p.step_hours / 1000.0
            + float(p.four_cp_usd_per_kw()[t])) * p.pue


def round_and_fill(problem: Problem, relaxed: Schedule) -> tuple[Schedule | None, float]:
    """Floor, repair ramps if flooring broke them, give back profitable units; (None, -inf) if it fails."""
    rounded = round_schedule(problem, relaxed)
    if violations(problem, rounded):
        rounded = ramp_repair(problem, relaxed, rounded)
        if rounded is None or violations(problem, rounded):
            return None, -math.inf
    filled = fill_up(problem, relaxed, rounded)
    if filled is not rounded and not violations(problem, filled):
        rounded = filled
    return rounded, evaluate(problem, rounded)["objective_usd"]


def fill_up(problem: Problem, relaxed: Schedule, rounded: Schedule) -> Schedule:
    """Give back the units flooring removed where the LP wanted them, while caps and ramps still hold.

    Step by step, each (pool, mode) whose LP value was fractional gets one more unit if that unit earns more
    than its energy and the start-ups it adds (exact change of max(0, on[t] - on[t-1]) on both sides) cost,
    and the site cap, its hall cap and the ramp rows to both neighbouring steps keep holding. Pools with a
    minimum run time are left alone. Returns `rounded` itself when nothing was added.
    """
    p = problem
    T = p.steps
    asic = [u.copy() for u in rounded.asic_units]
    on = [u.sum(axis=0) for u in asic]
    site = site_kw(p, rounded).copy()
    hall = hall_it_kw(p, rounded)
    revenue = p.asic_revenue_usd()

    def starts_around(a: int, t: int, extra: float) -> float:
        """Start-ups at t and t+1 of pool a if `extra` units are added at t."""
        prev = (p.asic[a].initial_on if t == 0 else on[a][t - 1])
        now = on[a][t] + extra
        total = max(now - prev, 0.0) if prev is not None else 0.0
        if t + 1 < T:
            total += max(on[a][t + 1] - now, 0.0)
        return total

    added = False
    for t in range(T):
        energy_usd_per_kw = _energy_usd_per_kw(p, t)
        candidates = []
        for a, pool in enumerate(p.asic):
            if pool.min_up_steps > 1:
                continue  # adding a unit there changes min-up rows: leave those to the neighbourhood MIP
            for k in range(len(pool.mode_names)):
                if relaxed.asic_units[a][k, t] - asic[a][k, t] > 1e-6:
                    candidates.append((relaxed.asic_units[a][k, t] - asic[a][k, t], a, k))
        for _, a, k in sorted(candidates, reverse=True):
            pool = p.asic[a]
            kw = float(pool.mode_power_kw[k])
            startup_usd = (starts_around(a, t, 1.0) - starts_around(a, t, 0.0)) * pool.startup_cost_usd
            if revenue[a][k, t] - kw * energy_usd_per_kw - startup_usd <= 0:
                continue
            if on[a][t] + 1 > pool.units_available:
                continue
            if hall[pool.hall][t] + kw > p.hall_cap_kw[pool.hall][t] + 1e-9 or site[t] + kw * p.pue > p.site_cap_kw + 1e-9:
                continue
            if p.ramp_limit_kw is not None:
                new = site[t] + kw * p.pue
                prev = site[t - 1] if t > 0 else p.initial_site_kw
                if prev is not None and abs(new - prev) > p.ramp_limit_kw + 1e-9:
                    continue
                if t + 1 < T and abs(site[t + 1] - new) > p.ramp_limit_kw + 1e-9:
                    continue
            asic[a][k, t] += 1
            on[a][t] += 1
            hall[pool.hall][t] += kw
            site[t] += kw * p.pue
            added = True
    if not added:
        return rounded
    return Schedule(asic_units=asic, gpu_contract_on=rounded.gpu_contract_on, gpu_market_on=rounded.gpu_market_on, reserve_kw=rounded.reserve_kw)


def ramp_repair(problem: Problem, relaxed: Schedule, rounded: Schedule) -> Schedule | None:
    """Walk the steps forward and bring each step's site power within the ramp limit of the previous step's (as
    already repaired) with the change of units that costs least (`_smallest_move`: a mix of two unit sizes, so
    it barely overshoots), then give back the profitable units flooring took from that step, up to the LP's site
    power and the ramp ceiling. Along a stretch where the LP ramps at the limit, each step's rounded power can
    only drift further from the LP's, never back; small overshoots and the give-back keep that drift to a few
    kW, where tightening every ramp row by the largest rounding error (what this replaced) cost 2.1e-4 of the
    objective on a 5-minute, 288-step horizon. Pools with a minimum run time are left alone. None when a step
    cannot be mended."""
    p = problem
    R = p.ramp_limit_kw
    if R is None:
        return rounded
    asic = [u.copy() for u in rounded.asic_units]
    site = site_kw(p, rounded).copy()
    hall = hall_it_kw(p, rounded)
    revenue = p.asic_revenue_usd()
    movable = [(a, k) for a, pool in enumerate(p.asic) if pool.min_up_steps <= 1 for k in range(len(pool.mode_names))]
    lp_site = site_kw(p, relaxed)
    prev = p.initial_site_kw
    for t in range(p.steps):
        if prev is not None:
            for _ in range(10_000):
                if site[t] > prev + R + 1e-9:
                    need_kw = -(site[t] - (prev + R))
                elif site[t] < prev - R - 1e-9:
                    need_kw = (prev - R) - site[t]
                else:
                    break
                ahead = _binding_run(lp_site, R, t, 1 if need_kw < 0 else -1)
                move = _smallest_move(p, relaxed, asic, hall, site, revenue, movable, t, need_kw, ahead)
                if move is None:
                    return None
                for (a, k), n in move:
                    kw = float(p.asic[a].mode_power_kw[k])
                    asic[a][k, t] += n
                    hall[p.asic[a].hall][t] += n * kw
                    site[t] += n * kw * p.pue
            else:
                return None
        ceiling = lp_site[t] if prev is None else min(lp_site[t], prev + R)
        _give_back(p, relaxed, asic, hall, site, revenue, movable, t, ceiling)
        prev = site[t]
    repaired = Schedule(asic_units=asic, gpu_contract_on=rounded.gpu_contract_on,
                        gpu_market_on=rounded.gpu_market_on, reserve_kw=rounded.reserve_kw)
    repaired.reserve_kw = _reserve_within(p, repaired)
    return repaired


def _give_back(p: Problem, relaxed: Schedule, asic, hall, site, revenue, movable, t: int, ceiling_kw: float) -> None:
    """Add back, largest first, units the LP ran at step t that flooring removed, while each earns more than its
    energy and start-up and site power stays under `ceiling_kw` and the caps."""
    energy_usd_per_kw = _energy_usd_per_kw(p, t)
    for a, k in sorted(movable, key=lambda ak: -p.asic[ak[0]].mode_power_kw[ak[1]]):
        pool = p.asic[a]
        kw = float(pool.mode_power_kw[k])
        if relaxed.asic_units[a][k, t] - asic[a][k, t] <= 1e-6:
            continue
        if revenue[a][k, t] - kw * energy_usd_per_kw <= pool.startup_cost_usd:
            continue
        if (site[t] + kw * p.pue > ceiling_kw + 1e-9 or asic[a][:, t].sum() + 1 > pool.units_available
                or hall[pool.hall][t] + kw > p.hall_cap_kw[pool.hall][t] + 1e-9 or site[t] + kw * p.pue > p.site_cap_kw + 1e-9):
            continue
        asic[a][k, t] += 1
        hall[pool.hall][t] += kw
        site[t] += kw * p.pue


def _binding_run(lp_site: np.ndarray, ramp_kw: float, t: int, direction: int) -> int:
    """How many steps after t the LP keeps ramping at the limit in `direction` (1 up, -1 down)."""
    run = 0
    for u in range(t + 1, len(lp_site)):
        if direction * (lp_site[u] - lp_site[u - 1]) < ramp_kw - 1e-6:
            break
        run += 1
    return run


def _smallest_move(p: Problem, relaxed: Schedule, asic, hall, site, revenue, movable, t: int, need_kw: float,
                   binding_ahead: int, most: int = 20):
    """The change of ASIC units at step t that moves site power by at least `need_kw` (negative: down) and
    earns most, counting each kW of overshoot at the marginal unit's profit per kW for this step and every step
    the LP keeps ramping at the limit after it (the overshoot carries over to them): up to `most` units of one
    kind moved the needed way and up to `most` of another moved back (mixing sizes reaches almost any amount),
    each unit switched paying its start-up once.
    When even that is too little, the biggest one-kind move, for the caller to repeat. None when nothing can
    move site power that way."""
    if not movable:
        return None
    sign = 1 if need_kw > 0 else -1
    need = abs(need_kw)
    energy_usd_per_kw = _energy_usd_per_kw(p, t)
    kw = np.array([float(p.asic[a].mode_power_kw[k]) for a, k in movable])
    unit_site_kw = kw * p.pue
    margin = np.array([revenue[a][k, t] for a, k in movable]) - kw * energy_usd_per_kw
    startup = np.array([p.asic[a].startup_cost_usd for a, _ in movable])
    can_add = np.array([
        min(p.asic[a].units_available - asic[a][:, t].sum(),
            (p.hall_cap_kw[p.asic[a].hall][t] - hall[p.asic[a].hall][t] + 1e-9) // kw[i],
            (p.site_cap_kw - site[t] + 1e-9) // unit_site_kw[i])
        for i, (a, k) in enumerate(movable)
    ])
    can_remove = np.array([asic[a][k, t] for a, k in movable])
    fractional = np.array([relaxed.asic_units[a][k, t] - np.floor(relaxed.asic_units[a][k, t] + 1e-6) > 1e-6
                           for a, k in movable])
    per_kw = margin / unit_site_kw
    marginal = per_kw[fractional] if fractional.any() else per_kw
    overshoot_usd_per_kw = abs(float(np.median(marginal))) * (1 + binding_ahead)
    forward, back = (can_add, can_remove) if sign > 0 else (can_remove, can_add)
    forward = np.clip(forward, 0, most)
    back = np.clip(back, 0, most)
    if not forward.any():
        return None
    n = np.arange(most + 1)
    # change[x, y, i, j] = i units of x the needed way, j units of y back
    change = n[None, None, :, None] * unit_site_kw[:, None, None, None] - n[None, None, None, :] * unit_site_kw[None, :, None, None]
    gain = sign * (n[None, None, :, None] * margin[:, None, None, None] - n[None, None, None, :] * margin[None, :, None, None])
    # a unit switched at t for this step alone starts once (at t going on, or at t + 1 coming back)
    gain -= n[None, None, :, None] * startup[:, None, None, None] + n[None, None, None, :] * startup[None, :, None, None]
    allowed = (n[None, None, :, None] <= forward[:, None, None, None]) & (n[None, None, None, :] <= back[None, :, None, None])
    allowed &= (np.arange(len(movable))[:, None] != np.arange(len(movable))[None, :])[:, :, None, None] | (n[None, None, None, :] == 0)
    allowed &= n[None, None, :, None] > 0
    enough = allowed & (change >= need - 1e-9)
    if enough.any():
        score = np.where(enough, gain - (change - need) * overshoot_usd_per_kw, -np.inf)
        x, y, i, j = np.unravel_index(np.argmax(score), change.shape)
    else:
        single = np.where(allowed[:, 0, :, 0], change[:, 0, :, 0], -np.inf)
        x, i = np.unravel_index(np.argmax(single), single.shape)
        y, j = 0, 0
    move = [(movable[x], sign * int(i))]
    if j:
        move.append((movable[y], -sign * int(j)))
    return move
