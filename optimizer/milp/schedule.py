"""A schedule (integer units per pool, mode and step) and an independent check of it (pure numpy).

`profit_by_step` / `evaluate` recompute a schedule's profit without the solver; one `check_*` per constraint
family lists what the schedule breaks (`optimizer.milp.families.violations` runs them all). The solver's
answer is certified against both: an objective above the LP bound means the model and this checker disagree.
"""

from __future__ import annotations

from collections.abc import Callable
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


def starts(on: np.ndarray, initial: int | float | None) -> np.ndarray:
    """Units started at each step: the rise of `on` over the step before (over `initial` at step 0; a free
    start, `initial` None, starts nothing at step 0)."""
    on = np.asarray(on, dtype=float)
    previous = np.concatenate([[on[0] if initial is None else initial], on[:-1]])
    return np.maximum(on - previous, 0.0)


def _asic_revenue(p: Problem, s: Schedule) -> np.ndarray:
    return sum(((u * r).sum(axis=0) for u, r in zip(s.asic_units, p.asic_revenue_usd())), np.zeros(p.steps))


def _gpu_revenue(p: Problem, s: Schedule) -> np.ndarray:
    return sum(((c * g.contract_rate_usd_per_gpu_hour + m * g.market_net_usd_per_gpu_hour) * p.step_hours
                for g, c, m in zip(p.gpu, s.gpu_contract_on, s.gpu_market_on)), np.zeros(p.steps))


def _reserve_revenue(p: Problem, s: Schedule) -> np.ndarray:
    return s.reserve_kw * p.reserve_price_usd_per_mw_hour * p.step_hours / 1000.0


def _resale_revenue(p: Problem, s: Schedule) -> np.ndarray:
    _, sell = grid_flows_kw(p, site_kw(p, s))
    return sell * p.price_usd_per_mwh * p.step_hours / 1000.0


def _energy_cost(p: Problem, s: Schedule) -> np.ndarray:
    buy, _ = grid_flows_kw(p, site_kw(p, s))
    return buy * (p.price_usd_per_mwh + p.adder_usd_per_mwh) * p.step_hours / 1000.0


def _block_cost(p: Problem, s: Schedule) -> np.ndarray:
    """The take-or-pay cost of the fixed blocks (a constant), spread over the steps they deliver in (all at
    step 0 when no step has block energy)."""
    total_kw = float(p.block_kw.sum())
    if total_kw > 0:
        return p.block_cost_usd * p.block_kw / total_kw
    cost = np.zeros(p.steps)
    cost[0] = p.block_cost_usd
    return cost


def _startup_cost(p: Problem, s: Schedule) -> np.ndarray:
    cost = np.zeros(p.steps)
    for pool, on in zip(p.asic, asic_on(s)):
        cost += starts(on, pool.initial_on) * pool.startup_cost_usd
    for g, m in zip(p.gpu, s.gpu_market_on):
        cost += starts(m, g.initial_market_on) * g.startup_cost_usd
    return cost


def _sla_penalty(p: Problem, s: Schedule) -> np.ndarray:
    return sum(((g.committed_gpus - c) * g.sla_penalty_usd_per_gpu_hour * p.step_hours
                for g, c in zip(p.gpu, s.gpu_contract_on)), np.zeros(p.steps))


def _four_cp_cost(p: Problem, s: Schedule) -> np.ndarray:
    """Expected (or, on a realised problem with p = 1 on the peak hours, actual) 4CP transmission charge."""
    return p.four_cp_usd_per_kw() * site_kw(p, s)


# The one evaluation of a schedule's profit: (name, sign, USD per step). `solve` certifies the model's answer
# with it, the rounding heuristics compare schedules with it, backtests score every strategy with it. A term
# added to the model's objective (optimizer/milp/model.py: set_objective) must be added here too, or the
# certificate in `solve` fails.
PROFIT_TERMS: tuple[tuple[str, int, Callable[[Problem, Schedule], np.ndarray]], ...] = (
    ("asic_revenue_usd", +1, _asic_revenue),
    ("gpu_revenue_usd", +1, _gpu_revenue),
    ("reserve_revenue_usd", +1, _reserve_revenue),
    ("resale_revenue_usd", +1, _resale_revenue),
    ("energy_cost_usd", -1, _energy_cost),
    ("block_cost_usd", -1, _block_cost),
    ("startup_cost_usd", -1, _startup_cost),
    ("sla_penalty_usd", -1, _sla_penalty),
    ("four_cp_cost_usd", -1, _four_cp_cost),
)


def profit_by_step(problem: Problem, schedule: Schedule) -> dict[str, np.ndarray]:
    """Every profit term per step (USD, revenues and costs as positive amounts) and `objective_usd`, their
    signed sum per step."""
    parts = {name: np.asarray(fn(problem, schedule), dtype=float) for name, _, fn in PROFIT_TERMS}
    parts["objective_usd"] = sum((sign * parts[name] for name, sign, _ in PROFIT_TERMS), np.zeros(problem.steps))
    return parts


def evaluate(problem: Problem, schedule: Schedule) -> dict[str, float]:
    """Profit and its parts over the horizon, USD (the sums of `profit_by_step`)."""
    return {name: float(values.sum()) for name, values in profit_by_step(problem, schedule).items()}


# --------------------------------------------------------------------------- constraint checks
# One check per constraint family, registered beside the family's builder in optimizer/milp/families.py.


def domain_violations(problem: Problem, schedule: Schedule) -> list[str]:
    """Unit counts must be non-negative integers within each pool's column bounds (not a family: the
    variables' own domains)."""
    out: list[str] = []
    for p, u in zip(problem.asic, schedule.asic_units):
        if (u < -1e-9).any() or not np.allclose(u, np.round(u)) or (u > p.units_available + 1e-9).any():
            out.append(f"asic {p.name}: unit counts must be integers in [0, {p.units_available}]")
    for g, c, m in zip(problem.gpu, schedule.gpu_contract_on, schedule.gpu_market_on):
        for label, x, ub in (("contract", c, g.contract_ub), ("marketplace", m, g.market_ub)):
            if (x < -1e-9).any() or not np.allclose(x, np.round(x)) or (x > ub + 1e-9).any():
                out.append(f"gpu {g.name}: {label} GPUs on must be integers in [0, {ub}]")
    return out


def check_unit_limits(problem: Problem, schedule: Schedule) -> list[str]:
    out = []
    for p, on in zip(problem.asic, asic_on(schedule)):
        if (on > p.units_available + 1e-9).any():
            out.append(f"asic {p.name}: more units on than available ({on.max():g} > {p.units_available})")
    return out


def check_unit_floors(problem: Problem, schedule: Schedule) -> list[str]:
    out = []
    for p, on in zip(problem.asic, asic_on(schedule)):
        if p.min_units_on and (on < p.min_units_on - 1e-9).any():
            out.append(f"asic {p.name}: fewer units on than the must-run floor ({on.min():g} < {p.min_units_on})")
    return out


def check_hall_caps(problem: Problem, schedule: Schedule, tol_kw: float = 1e-3) -> list[str]:
    out = []
    for h, kw in hall_it_kw(problem, schedule).items():
        over = kw - problem.hall_cap_kw[h]
        if (over > tol_kw).any():
            t = int(over.argmax())
            out.append(f"hall {h}: {kw[t]:.1f} kW > cap {problem.hall_cap_kw[h][t]:.1f} kW at step {t}")
    return out


def check_site_cap(problem: Problem, schedule: Schedule, tol_kw: float = 1e-3) -> list[str]:
    site = site_kw(problem, schedule)
    if (site > problem.site_cap_kw + tol_kw).any():
        t = int(site.argmax())
        return [f"site: {site[t]:.1f} kW > interconnect cap {problem.site_cap_kw:.1f} kW at step {t}"]
    return []


def holds_by_construction(problem: Problem, schedule: Schedule) -> list[str]:
    """For families the checker satisfies by how it computes (energy bought and resold from `grid_flows_kw`,
    start-ups from `starts`): nothing to check."""
    return []


def check_ramp_limits(problem: Problem, schedule: Schedule, tol_kw: float = 1e-3) -> list[str]:
    if problem.ramp_limit_kw is None:
        return []
    site = site_kw(problem, schedule)
    previous = site[:-1] if problem.initial_site_kw is None else np.concatenate([[problem.initial_site_kw], site[:-1]])
    current = site[1:] if problem.initial_site_kw is None else site
    jumps = np.abs(current - previous)
    if (jumps > problem.ramp_limit_kw + tol_kw).any():
        return [f"site: ramp of {jumps.max():.1f} kW in one step > limit {problem.ramp_limit_kw:.1f} kW"]
    return []


def check_asic_min_up(problem: Problem, schedule: Schedule) -> list[str]:
    out: list[str] = []
    for p, on in zip(problem.asic, asic_on(schedule)):
        _check_min_up(out, f"asic {p.name}", on, p.initial_on, p.recent_starts, p.min_up_steps)
    return out


def check_gpu_min_rental(problem: Problem, schedule: Schedule) -> list[str]:
    out: list[str] = []
    for g, m in zip(problem.gpu, schedule.gpu_market_on):
        _check_min_up(out, f"gpu {g.name} marketplace", m, g.initial_market_on, g.recent_starts, g.min_rental_steps)
    return out


def check_contract_floors(problem: Problem, schedule: Schedule) -> list[str]:
    return [f"gpu {g.name}: firm contract floor of {g.contract_ub} GPUs broken"
            for g, c in zip(problem.gpu, schedule.gpu_contract_on) if g.firm and (c < g.contract_ub - 1e-9).any()]


def check_reserve_limits(problem: Problem, schedule: Schedule, tol_kw: float = 1e-3) -> list[str]:
    asic_site = sum((kw for kw in asic_it_kw(problem, schedule)), np.zeros(problem.steps)) * problem.pue
    q = schedule.reserve_kw
    if (q < -tol_kw).any() or (q > problem.reserve_max_kw + tol_kw).any() or (q > asic_site + tol_kw).any():
        return ["reserve: offer must be within [0, max offer] and at most the curtailable (ASIC) load"]
    return []


def _check_min_up(out: list[str], label: str, on: np.ndarray, initial: int | None, recent: list[int], steps: int) -> None:
    """Units started in the last `steps` steps must still be on (identical units, counted as a cluster)."""
    if steps <= 1:
        return
    started = starts(on, initial)
    history = list(reversed(recent[: steps - 1]))  # oldest first
    series = np.concatenate([np.array(history, dtype=float), started])
    offset = len(history)
    for t in range(len(on)):
        window = series[max(0, offset + t - steps + 1) : offset + t + 1].sum()
        if on[t] + 1e-9 < window:
            out.append(f"{label}: min-up broken at step {t} ({on[t]:g} on < {window:g} started in the last {steps} steps)")
            return
