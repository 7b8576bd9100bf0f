"""A schedule (integer units per pool, mode and step) and an independent check of it (pure numpy).

`evaluate` recomputes the profit of a schedule without the solver, and `violations` lists every
constraint it breaks. The solver's answer is checked against both (tests, property tests), and the
LP-rounding heuristic uses them to certify its integral solution before skipping branch-and-bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashpivot.optimizer.milp.problem import Problem


@dataclass
class Schedule:
    asic_units: list[np.ndarray]  # per ASIC pool: (modes x steps) units on
    gpu_contract_on: list[np.ndarray]  # per GPU pool: (steps,) contract GPUs on
    gpu_market_on: list[np.ndarray]  # per GPU pool: (steps,) marketplace GPUs on
    reserve_kw: np.ndarray  # (steps,) reserve offered, site-meter kW


def asic_on(schedule: Schedule) -> list[np.ndarray]:
    return [u.sum(axis=0) for u in schedule.asic_units]


def asic_it_kw(problem: Problem, schedule: Schedule) -> list[np.ndarray]:
    return [p.mode_power_kw @ u for p, u in zip(problem.asic, schedule.asic_units)]


def gpu_it_kw(problem: Problem, schedule: Schedule) -> list[np.ndarray]:
    return [
        g.full_power_kw * c + g.market_power_kw * m
        for g, c, m in zip(problem.gpu, schedule.gpu_contract_on, schedule.gpu_market_on)
    ]


def hall_it_kw(problem: Problem, schedule: Schedule) -> dict[str, np.ndarray]:
    """IT kW per hall and step."""
    hall_kw = {h: np.zeros(problem.steps) for h in problem.hall_cap_kw}
    for p, kw in zip(problem.asic, asic_it_kw(problem, schedule)):
        hall_kw[p.hall] += kw
    for g, kw in zip(problem.gpu, gpu_it_kw(problem, schedule)):
        hall_kw[g.hall] += kw
    return hall_kw


def site_kw(problem: Problem, schedule: Schedule) -> np.ndarray:
    total = np.zeros(problem.steps)
    for kw in asic_it_kw(problem, schedule) + gpu_it_kw(problem, schedule):
        total = total + kw
    return total * problem.pue


def grid_flows_kw(problem: Problem, site: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bought, resold) kW per step that settle the site load against the fixed blocks most cheaply."""
    if problem.adder_usd_per_mwh < 0:  # buying is cheaper than resale pays: resell all block energy, buy all load
        return site.copy(), problem.block_kw.copy()
    return np.maximum(site - problem.block_kw, 0.0), np.maximum(problem.block_kw - site, 0.0)


def _starts(on: np.ndarray, initial: int | None) -> np.ndarray:
    previous = np.concatenate([[on[0] if initial is None else initial], on[:-1]])
    return np.maximum(on - previous, 0.0)


def evaluate(problem: Problem, schedule: Schedule) -> dict[str, float]:
    """Profit and its parts over the horizon, USD."""
    dt = problem.step_hours
    asic_rev = sum(float((u * r).sum()) for u, r in zip(schedule.asic_units, problem.asic_revenue_usd()))
    startup = sum(
        float(_starts(on, p.initial_on).sum()) * p.startup_cost_usd for p, on in zip(problem.asic, asic_on(schedule))
    )
    gpu_rev = 0.0
    sla = 0.0
    for g, c, m in zip(problem.gpu, schedule.gpu_contract_on, schedule.gpu_market_on):
        gpu_rev += float((c * g.contract_rate_usd_per_gpu_hour + m * g.market_net_usd_per_gpu_hour).sum()) * dt
        sla += float((g.committed_gpus - c).sum()) * g.sla_penalty_usd_per_gpu_hour * dt
        startup += float(_starts(m, g.initial_market_on).sum()) * g.startup_cost_usd
    site = site_kw(problem, schedule)
    buy, sell = grid_flows_kw(problem, site)
    energy = float((buy * (problem.price_usd_per_mwh + problem.adder_usd_per_mwh)).sum()) * dt / 1000.0
    resale = float((sell * problem.price_usd_per_mwh).sum()) * dt / 1000.0
    reserve = float((schedule.reserve_kw * problem.reserve_price_usd_per_mw_hour).sum()) * dt / 1000.0
    objective = asic_rev + gpu_rev + reserve + resale - energy - startup - sla - problem.block_cost_usd
    return {
        "objective_usd": objective,
        "asic_revenue_usd": asic_rev,
        "gpu_revenue_usd": gpu_rev,
        "reserve_revenue_usd": reserve,
        "resale_revenue_usd": resale,
        "energy_cost_usd": energy,
        "block_cost_usd": problem.block_cost_usd,
        "startup_cost_usd": startup,
        "sla_penalty_usd": sla,
    }


def violations(problem: Problem, schedule: Schedule, tol_kw: float = 1e-3) -> list[str]:
    """Every constraint the schedule breaks, as readable strings (empty list = feasible)."""
    out: list[str] = []
    T = problem.steps
    for p, u in zip(problem.asic, schedule.asic_units):
        if (u < -1e-9).any() or not np.allclose(u, np.round(u)):
            out.append(f"asic {p.name}: unit counts must be non-negative integers")
        on = u.sum(axis=0)
        if (on > p.units_available + 1e-9).any():
            out.append(f"asic {p.name}: more units on than available ({on.max():g} > {p.units_available})")
        _check_min_up(out, f"asic {p.name}", on, p.initial_on, p.recent_starts, p.min_up_steps)
    for g, c, m in zip(problem.gpu, schedule.gpu_contract_on, schedule.gpu_market_on):
        for label, x, ub in (("contract", c, g.contract_ub), ("marketplace", m, g.market_ub)):
            if (x < -1e-9).any() or not np.allclose(x, np.round(x)) or (x > ub + 1e-9).any():
                out.append(f"gpu {g.name}: {label} GPUs on must be integers in [0, {ub}]")
        if g.firm and (c < g.contract_ub - 1e-9).any():
            out.append(f"gpu {g.name}: firm contract floor of {g.contract_ub} GPUs broken")
        _check_min_up(out, f"gpu {g.name} marketplace", m, g.initial_market_on, g.recent_starts, g.min_rental_steps)

    for h, kw in hall_it_kw(problem, schedule).items():
        over = kw - problem.hall_cap_kw[h]
        if (over > tol_kw).any():
            t = int(over.argmax())
            out.append(f"hall {h}: {kw[t]:.1f} kW > cap {problem.hall_cap_kw[h][t]:.1f} kW at step {t}")
    site = site_kw(problem, schedule)
    if (site > problem.site_cap_kw + tol_kw).any():
        t = int(site.argmax())
        out.append(f"site: {site[t]:.1f} kW > interconnect cap {problem.site_cap_kw:.1f} kW at step {t}")
    if problem.ramp_limit_kw is not None:
        previous = site[:-1] if problem.initial_site_kw is None else np.concatenate([[problem.initial_site_kw], site[:-1]])
        current = site[1:] if problem.initial_site_kw is None else site
        jumps = np.abs(current - previous)
        if (jumps > problem.ramp_limit_kw + tol_kw).any():
            out.append(f"site: ramp of {jumps.max():.1f} kW in one step > limit {problem.ramp_limit_kw:.1f} kW")
    asic_site = sum((kw for kw in asic_it_kw(problem, schedule)), np.zeros(T)) * problem.pue
    q = schedule.reserve_kw
    if (q < -tol_kw).any() or (q > problem.reserve_max_kw + tol_kw).any() or (q > asic_site + tol_kw).any():
        out.append("reserve: offer must be within [0, max offer] and at most the curtailable (ASIC) load")
    return out


def _check_min_up(out: list[str], label: str, on: np.ndarray, initial: int | None, recent: list[int], steps: int) -> None:
    """Units started in the last `steps` steps must still be on (identical units, counted as a cluster)."""
    if steps <= 1:
        return
    starts = _starts(on, initial)
    history = list(reversed(recent[: steps - 1]))  # oldest first
    series = np.concatenate([np.array(history, dtype=float), starts])
    offset = len(history)
    for t in range(len(on)):
        window = series[max(0, offset + t - steps + 1) : offset + t + 1].sum()
        if on[t] + 1e-9 < window:
            out.append(f"{label}: min-up broken at step {t} ({on[t]:g} on < {window:g} started in the last {steps} steps)")
            return
