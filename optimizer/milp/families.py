"""The constraint families of the allocation model, each registered once: name, builder (Pyomo rows in
`optimizer.milp.model`), the meaning an operator reads, its check in the independent checker
(`optimizer.milp.schedule`) and, where it helps, the numbers that explain a conflict. `build_model`, the
checker (`violations`), the infeasibility diagnosis and explanations all read `FAMILIES`, so a new family
is one entry here plus its builder and its check. A family may instead (or also) add a cost term to the
objective (`cost`: (model, problem) -> (coefficient, variable) terms); its profit term in the checker is the
PROFIT_TERMS entry of the same name + `_cost_usd` (`four_cp` → `four_cp_cost_usd`), so model and checker agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC

from hashpivot.optimizer.milp import model as mdl
from hashpivot.optimizer.milp import schedule as chk
from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.schedule import Schedule


def _contract_conflict(problem: Problem, groups: list[str]) -> list[str]:
    out = []
    firm_by_hall: dict[str, float] = {}
    for g in problem.gpu:
        if g.firm and g.committed_gpus:
            if g.committed_gpus > g.gpus_available:
                out.append(f"gpu pool {g.name}: firm contract {g.committed_gpus} GPUs > {g.gpus_available} available")
            firm_by_hall[g.hall] = firm_by_hall.get(g.hall, 0.0) + g.committed_gpus * g.full_power_kw
    for hall, kw in firm_by_hall.items():
        cap = float(problem.hall_cap_kw[hall].min())
        if "hall_caps" in groups and kw > cap:
            out.append(f"hall {hall}: firm contracts need {kw:,.0f} kW > hall cap {cap:,.0f} kW")
    total = sum(firm_by_hall.values()) * problem.pue
    if "site_cap" in groups and total > problem.site_cap_kw:
        out.append(f"site: firm contracts need {total:,.0f} kW at the meter > interconnect cap {problem.site_cap_kw:,.0f} kW")
    return out


def _floor_conflict(problem: Problem, groups: list[str]) -> list[str]:
    out = []
    for a in problem.asic:
        if a.min_units_on:
            kw = a.min_units_on * float(a.mode_power_kw.min())
            out.append(f"asic pool {a.name}: {a.min_units_on:,} units must run ({kw:,.0f} kW IT, "
                       f"{kw * problem.pue:,.0f} kW at the meter at least), "
                       f"{a.units_available:,} available; site cap {problem.site_cap_kw:,.0f} kW at the meter, hall "
                       f"{a.hall} cap {float(problem.hall_cap_kw[a.hall].min()):,.0f} kW")
    return out


def _ramp_conflict(problem: Problem, groups: list[str]) -> list[str]:
    if problem.initial_site_kw is None:
        return []
    return [f"initial site load {problem.initial_site_kw:,.0f} kW, ramp limit {problem.ramp_limit_kw:,.0f} kW/step, "
            f"interconnect cap {problem.site_cap_kw:,.0f} kW"]


def _no_rows(m: pyo.ConcreteModel, problem: Problem) -> None:
    """A cost-only family adds no rows."""


@dataclass(frozen=True)
class Family:
    name: str
    meaning: str  # what it enforces, naming the config keys an operator would change
    build: Callable[[pyo.ConcreteModel, Problem], None]
    check: Callable[[Problem, Schedule], list[str]]
    conflict: Callable[[Problem, list[str]], list[str]] | None = None  # details when diagnosis names it
    cost: Callable[[pyo.ConcreteModel, Problem], list] | None = None  # objective terms, if the family prices something


FAMILIES: tuple[Family, ...] = (
    Family("unit_limits", "units on <= units available (asic_pools[].units_available)",
           mdl.add_unit_limits, chk.check_unit_limits),
    Family("unit_floors", "units on >= the must-run floor (an operator hold at N units: `hashpivot hold list`; "
           "asic_pools[].min_units_on)", mdl.add_unit_floors, chk.check_unit_floors, _floor_conflict),
    Family("hall_caps", "hall IT power <= cap after cooling derate (site.halls[].cap_kw, cooling_derate)",
           mdl.add_hall_caps, chk.check_hall_caps),
    Family("site_cap", "site-meter power <= interconnect cap (site.interconnect_cap_kw, with PUE)",
           mdl.add_site_cap, chk.check_site_cap),
    Family("energy_balance", "site power = fixed blocks + bought - resold (power.fixed_blocks)",
           mdl.add_energy_balance, chk.holds_by_construction),
    Family("ramp_limits", "site-meter change per step <= site.ramp_limit_kw_per_step (from the initial state)",
           mdl.add_ramp_limits, chk.check_ramp_limits, _ramp_conflict),
    Family("asic_startups", "ASIC start-ups counted from the initial state",
           mdl.add_asic_startups, chk.holds_by_construction),
    Family("asic_min_up", "ASICs started stay on min_up_minutes (incl. starts before the horizon)",
           mdl.add_asic_min_up, chk.check_asic_min_up),
    Family("gpu_startups", "marketplace GPU rentals counted from the initial state",
           mdl.add_gpu_startups, chk.holds_by_construction),
    Family("gpu_min_rental", "rented GPUs stay on min_rental_hours (incl. rentals before the horizon)",
           mdl.add_gpu_min_rental, chk.check_gpu_min_rental),
    Family("contract_floors", "firm GPU contracts (no sla_penalty) keep committed_gpus on",
           mdl.add_contract_floors, chk.check_contract_floors, _contract_conflict),
    Family("reserve_limits", "reserve offered <= curtailable ASIC load and power.reserve.max_offer_mw",
           mdl.add_reserve_limits, chk.check_reserve_limits),
    Family("four_cp", "expected ERCOT 4CP transmission cost p x rate/4 x site-meter kW per step (power.four_cp)",
           _no_rows, chk.holds_by_construction, cost=mdl.four_cp_cost_terms),
)
BY_NAME = {f.name: f for f in FAMILIES}
COSTS = tuple(f.cost for f in FAMILIES if f.cost is not None)


def set_objective(m: pyo.ConcreteModel, problem: Problem) -> None:
    """The model's objective with every registered cost family's terms (a kept model calls it each interval)."""
    mdl.set_objective(m, problem, COSTS)


def build_model(problem: Problem, relax: bool = False, exclude: frozenset[str] = frozenset()) -> pyo.ConcreteModel:
    """Build the Pyomo model. `relax` makes unit counts continuous; `exclude` drops constraint families.

    Python's cyclic garbage collector is paused meanwhile (as Pyomo's own writers do): the build allocates
    hundreds of thousands of objects, none of them garbage, and the collector's repeated scans of them were
    two thirds of the build time (100 x 96: 0.69 s -> 0.24 s)."""
    with PauseGC():
        m = pyo.ConcreteModel(name="hashpivot")
        m.problem = problem  # kept for extraction/explanation; plain attribute, not a component
        mdl.add_sets(m, problem)
        mdl.add_parameters(m, problem)
        mdl.add_variables(m, problem, relax)
        mdl.add_power_expressions(m, problem)
        for family in FAMILIES:
            if family.name not in exclude:
                family.build(m, problem)
        set_objective(m, problem)
        return m


def violations(problem: Problem, schedule: Schedule) -> list[str]:
    """Every constraint the schedule breaks, as readable strings (empty list = feasible)."""
    out = chk.domain_violations(problem, schedule)
    for family in FAMILIES:
        out += family.check(problem, schedule)
    return out
