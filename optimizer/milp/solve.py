"""Solve the allocation model with HiGHS (the Pyomo model loaded by `optimizer.milp.highs_instance`) and extract the schedule.

Strategy "auto" earns integrality at LP cost where it can:
1. solve the LP relaxation: its objective is an upper bound on any integral allocation, its duals price the caps;
2. floor the unit counts, mend ramp rows flooring broke (`optimizer.milp.rounding`), give back profitable units
   where caps allow, and check the result with the independent checker;
3. if that is not within `mip_rel_gap` of the LP bound, solve the MIP restricted to the LP optimum's
   neighbourhood in growing boxes (integral LP values fixed, fractional ones floor or ceiling; then two units
   either side; then every count one unit either side);
4. a schedule within `mip_rel_gap` of the LP bound is returned, certified by the bound; otherwise HiGHS's
   full branch-and-bound runs, warm-started from the best schedule so far. `time_limit_s` bounds all of it.
Strategy "mip" skips 2–3 (the LP still gives the bound and the duals). Every termination condition is checked;
an infeasible model is diagnosed (`optimizer.milp.diagnosis`).

The certificate can fail: every schedule's profit comes from the independent checker
(`optimizer.milp.schedule.evaluate`), and a profit above the bound by more than numerical tolerance raises
SolverError naming both numbers — it means the model's objective and the checker disagree (a term added to
one and not the other), which no `max()` may hide.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC

from hashpivot.models.errors import SolverError
from hashpivot.optimizer.milp.diagnosis import diagnose_infeasibility
from hashpivot.optimizer.milp.families import build_model, set_objective, violations
from hashpivot.optimizer.milp.highs_instance import HighsInstance
from hashpivot.optimizer.milp.model import set_parameters, structure_key
from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.rounding import round_and_fill
from hashpivot.optimizer.milp.schedule import (
    Schedule,
    evaluate,
    grid_flows_kw,
    hall_it_kw,
    site_kw,
    starts,
)
from hashpivot.optimizer.milp.settings import SolveSettings, Strategy, load_highs

__all__ = ["PersistentLP", "Solution", "SolveSettings", "Strategy", "solve"]

log = logging.getLogger(__name__)

# How far a schedule's profit may lie above its bound before the certificate fails: HiGHS's feasibility and
# optimality tolerances (1e-7) leave the LP objective that much short of the exact optimum.
CERTIFICATE_REL_TOL = 1e-6


@dataclass
class Solution:
    status: Literal["optimal", "feasible"]  # feasible = time limit hit, best incumbent returned
    method: str  # "lp-rounding" / "lp-neighbourhood" (certified by the LP bound) or "mip" / "mip-warm-start"
    objective_usd: float
    bound_usd: float  # upper bound on the optimum (LP relaxation or branch-and-bound)
    schedule: Schedule
    problem: Problem
    breakdown: dict[str, float]
    site_cap_dual_usd_per_kw_step: np.ndarray | None  # LP relaxation duals of the site cap, per step
    hall_cap_dual_usd_per_kw_step: dict[str, np.ndarray] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return max(0.0, self.bound_usd - self.objective_usd) / max(abs(self.bound_usd), 1.0)


def extract_schedule(inst: HighsInstance, col_values: np.ndarray, problem: Problem) -> Schedule:
    """The unit counts and reserve of a solution vector as numpy arrays (unrounded). Columns of an indexed Var
    follow its keys: (pool, mode, step) for `n`, (pool, step) for `gc`/`gm`."""
    m, T = inst.model, problem.steps
    n = col_values[inst.cols(m.n)]
    asic, start = [], 0
    for pool in problem.asic:
        size = len(pool.mode_names) * T
        asic.append(n[start : start + size].reshape(len(pool.mode_names), T))
        start += size
    G = len(problem.gpu)
    gc = col_values[inst.cols(m.gc)].reshape(G, T)
    gm = col_values[inst.cols(m.gm)].reshape(G, T)
    q = col_values[inst.cols(m.q)]
    return Schedule(asic_units=asic, gpu_contract_on=list(gc), gpu_market_on=list(gm), reserve_kw=q)


def _set_values(m: pyo.ConcreteModel, problem: Problem, sched: Schedule) -> None:
    """Load a complete, consistent point into the model's variables (for HiGHS's MIP start)."""
    T = problem.steps
    site = site_kw(problem, sched)
    buy, sell = grid_flows_kw(problem, site)
    for a, pool in enumerate(problem.asic):
        on = sched.asic_units[a].sum(axis=0)
        started = starts(on, pool.initial_on)
        for t in range(T):
            for k in range(len(pool.mode_names)):
                m.n[a, k, t].set_value(float(sched.asic_units[a][k, t]), skip_validation=True)
            if (a, t) in m.on:
                m.on[a, t].set_value(float(on[t]), skip_validation=True)
            m.s[a, t].set_value(float(started[t]), skip_validation=True)
    for g, x in enumerate(problem.gpu):
        mk = sched.gpu_market_on[g]
        started = starts(mk, x.initial_market_on)
        for t in range(T):
            m.gc[g, t].set_value(float(sched.gpu_contract_on[g][t]), skip_validation=True)
            m.gm[g, t].set_value(float(mk[t]), skip_validation=True)
            m.gs[g, t].set_value(float(started[t]), skip_validation=True)
    hall_kw = hall_it_kw(problem, sched)
    for (h, t), var in m.hall_kw.items():
        var.set_value(float(hall_kw[h][t]), skip_validation=True)
    for t in range(T):
        m.site[t].set_value(float(site[t]), skip_validation=True)
        m.buy[t].set_value(float(buy[t]), skip_validation=True)
        m.sell[t].set_value(float(sell[t]), skip_validation=True)
        m.q[t].set_value(float(sched.reserve_kw[t]), skip_validation=True)


def _duals(inst: HighsInstance, problem: Problem) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """LP duals of the site cap (per step) and the hall caps (per hall and step), as magnitudes."""
    m = inst.model
    site = np.abs(inst.row_duals(m.site_cap)) if hasattr(m, "site_cap") else None
    halls: dict[str, np.ndarray] = {}
    if hasattr(m, "hall_caps"):
        for (h, t), dual in zip(m.hall_caps.keys(), inst.row_duals(m.hall_caps)):
            halls.setdefault(h, np.zeros(problem.steps))[t] = abs(dual)
    return site, halls


class PersistentLP:
    """The LP relaxation and its HiGHS instance, kept between solves of problems of one structure
    (`optimizer.model.structure_key`: same pools, halls, horizon, which initial values are known). The next
    problem's interval-dependent numbers (initial state and recent starts, hall caps after derate, fixed blocks,
    site cap, ramp limit) go into the model's mutable Params and the instance's bounds, its prices into the
    objective; the Pyomo build and the translation to HiGHS are skipped. A problem of another structure rebuilds the model. The LP is re-solved from scratch
    (no basis carried over), so results do not depend on the order the problems come in. What sweeps, rolling
    backtests and the daemon use."""

    def __init__(self, settings: SolveSettings, problem: Problem | None = None):
        self.settings = settings
        self.rebuilds = 0
        self.key: tuple | None = None
        self.untouched_for: Problem | None = None
        if problem is not None:
            self._build(problem)

    def _build(self, problem: Problem) -> None:
        self.key = structure_key(problem)
        self.instance = load_highs(build_model(problem, relax=True), self.settings)
        self.untouched_for = problem  # the instance is exactly as built for this problem
        self.rebuilds += 1

    def prepare(self, problem: Problem) -> HighsInstance:
        """The instance for `problem`, with the declared bounds (the neighbourhood step narrows them)."""
        if self.key is None or (problem is not self.untouched_for and structure_key(problem) != self.key):
            self._build(problem)
        inst = self.instance
        if problem is not self.untouched_for:
            with PauseGC():  # see optimizer.model.build_model
                set_parameters(inst.model, problem)
                inst.model.del_component(inst.model.profit)
                set_objective(inst.model, problem)
                inst.set_objective()
            inst.refresh_bounds()
            inst.clear_solver()
        inst.model.problem = problem
        self.untouched_for = None
        return inst


def solve(problem: Problem, settings: SolveSettings | None = None, persistent: PersistentLP | None = None) -> Solution:
    """Find the most profitable integral allocation; raise InfeasibleError or SolverError otherwise.

    `persistent` reuses a model built for a problem with the same structure (see PersistentLP).
    `settings.time_limit_s` bounds the whole solve: every HiGHS run gets what is left of it.
    """
    settings = settings or SolveSettings()
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    deadline = t_start + settings.time_limit_s

    t0 = time.perf_counter()
    if persistent is not None:
        lp = persistent.prepare(problem)
        timings["build_lp_s"] = time.perf_counter() - t0
    else:
        model = build_model(problem, relax=True)
        timings["build_lp_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        lp = load_highs(model, settings)
        timings["load_lp_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = lp.solve(_left(deadline))
    timings["solve_lp_s"] = time.perf_counter() - t0
    if res.status == "infeasible":
        raise diagnose_infeasibility(problem, settings)
    if res.status != "optimal":
        hint = f"; raise solver.time_limit_s (now {settings.time_limit_s:g} s)" if res.status == "time_limit" else ""
        raise SolverError(f"HiGHS stopped on the LP relaxation with status {res.status}{hint}")
    lp_bound = res.objective
    site_dual, hall_dual = _duals(lp, problem)

    best: Schedule | None = None
    best_obj = -math.inf
    method = "lp-rounding"
    if settings.strategy == "auto":
        t0 = time.perf_counter()
        relaxed = extract_schedule(lp, res.col_values, problem)
        best, best_obj = round_and_fill(problem, relaxed)
        certify(best_obj, lp_bound, "LP rounding against the LP bound")
        timings["rounding_s"] = time.perf_counter() - t0
        if not _within_gap(best_obj, lp_bound, settings):
            t0 = time.perf_counter()
            found, found_obj = _neighbourhood(lp, problem, relaxed, settings, lp_bound, deadline)
            timings["neighbourhood_s"] = time.perf_counter() - t0
            certify(found_obj, lp_bound, "LP neighbourhood against the LP bound")
            if found is not None and found_obj > best_obj:
                best, best_obj, method = found, found_obj, "lp-neighbourhood"

    status: Literal["optimal", "feasible"] = "optimal"
    bound = lp_bound
    if not _within_gap(best_obj, lp_bound, settings):
        if best is not None and _left(deadline) <= 0:
            status = "feasible"  # the time limit is spent: the best schedule so far, with its gap
        else:
            method, status, best, best_obj, bound = _branch_and_bound(problem, settings, best, timings, lp_bound, deadline)
            certify(best_obj, bound, "branch-and-bound against its bound")
    timings["total_s"] = time.perf_counter() - t_start
    log.info(
        "solve method=%s status=%s objective_usd=%.2f bound_usd=%.2f total_s=%.3f",
        method, status, best_obj, bound, timings["total_s"],
    )
    return Solution(
        status=status,
        method=method,
        objective_usd=best_obj,
        bound_usd=bound,
        schedule=best,
        problem=problem,
        breakdown=evaluate(problem, best),
        site_cap_dual_usd_per_kw_step=site_dual,
        hall_cap_dual_usd_per_kw_step=hall_dual,
        timings_s=timings,
    )


def certify(objective_usd: float, bound_usd: float, what: str) -> None:
    """SolverError if a schedule's profit (from the independent checker) is above an upper bound on every
    schedule's profit: then the model and the checker compute different things."""
    if objective_usd > bound_usd + CERTIFICATE_REL_TOL * max(abs(bound_usd), 1.0):
        raise SolverError(
            f"certificate failed ({what}): the schedule's profit {objective_usd:,.2f} USD from the independent "
            f"checker is above the bound {bound_usd:,.2f} USD; the model and the checker disagree"
        )


def _left(deadline: float) -> float:
    return max(deadline - time.perf_counter(), 0.0)


def _within_gap(objective: float, bound: float, settings: SolveSettings) -> bool:
    return objective > -math.inf and (bound - objective) <= settings.mip_rel_gap * max(abs(bound), 1.0)


def _neighbourhood(lp: HighsInstance, problem: Problem, relaxed: Schedule, settings: SolveSettings, lp_bound: float,
                   deadline: float):
    """Solve the MIP restricted to the LP optimum's neighbourhood (RENS), in growing boxes until one holds a
    schedule within `mip_rel_gap` of the LP bound: (1) unit counts the LP left integral fixed, fractional ones
    floor or ceiling; (2) fractional ones two units either side; (3) every count one unit either side. The
    first boxes have a few dozen integer columns and close in milliseconds; the last one matters when ramps
    bind at almost every step. Returns the best schedule found (or None) and its objective.
    """
    m = lp.model
    cols = np.concatenate([lp.cols(m.n), lp.cols(m.gc), lp.cols(m.gm)])
    value = np.concatenate(
        [u.ravel() for u in relaxed.asic_units] + [np.ravel(relaxed.gpu_contract_on), np.ravel(relaxed.gpu_market_on)]
    )
    lo, hi, ub = np.floor(value + 1e-6), np.ceil(value - 1e-6), lp.col_upper[cols]
    best, best_obj = None, -math.inf
    for widen_fractional, widen_all in ((0, 0), (2, 0), (1, 1)):
        w = np.where(lo != hi, widen_fractional, widen_all)
        if _left(deadline) <= 0:
            break
        lp.set_col_bounds(cols, np.maximum(lo - w, 0.0), np.minimum(hi + w, ub), integer=True)
        res = lp.solve(_left(deadline))
        if not res.has_solution:
            continue
        sched = _rounded(extract_schedule(lp, res.col_values, problem))
        if violations(problem, sched):
            continue
        obj = evaluate(problem, sched)["objective_usd"]
        if obj > best_obj:
            best, best_obj = sched, obj
        if _within_gap(best_obj, lp_bound, settings):
            break
    return best, best_obj


def _branch_and_bound(problem: Problem, settings: SolveSettings, start: Schedule | None, timings: dict[str, float],
                      lp_bound: float = math.inf, deadline: float | None = None):
    """HiGHS's branch-and-bound on the full MIP, from `start` when given, until `deadline` (default: the time
    limit from now). The bound returned is the tighter of HiGHS's dual bound and the LP bound (HiGHS has none
    when stopped early)."""
    deadline = time.perf_counter() + settings.time_limit_s if deadline is None else deadline
    t0 = time.perf_counter()
    model = build_model(problem, relax=False)
    inst = load_highs(model, settings)
    timings["build_mip_s"] = time.perf_counter() - t0
    if start is not None:
        _set_values(model, problem, start)
        inst.set_start(inst.model_values())
    t0 = time.perf_counter()
    res = inst.solve(_left(deadline))
    timings["solve_mip_s"] = time.perf_counter() - t0
    if res.status == "infeasible":
        raise diagnose_infeasibility(problem, settings, relax=False)
    if not res.has_solution:
        raise SolverError(
            f"HiGHS found no integral allocation within {settings.time_limit_s:g} s (status {res.status}); "
            "raise solver.time_limit_s or shorten the horizon"
        )
    sched = _rounded(extract_schedule(inst, res.col_values, problem))
    obj = evaluate(problem, sched)["objective_usd"]
    if start is not None and abs(obj - res.objective) > 1e-6 * max(1.0, abs(res.objective)):
        # HiGHS 1.16 can report a better incumbent than the column values it hands back when a MIP start was
        # given and presolve finishes the problem; solve again without the start rather than lose that incumbent.
        log.warning("HiGHS returned the MIP start (%.6f) instead of its incumbent (%.6f); re-solving cold", obj, res.objective)
        inst = load_highs(model, settings)
        res = inst.solve(_left(deadline))
        if not res.has_solution:
            raise SolverError(f"HiGHS found no integral allocation on the cold re-solve (status {res.status})")
        sched = _rounded(extract_schedule(inst, res.col_values, problem))
        obj = evaluate(problem, sched)["objective_usd"]
        start = None
    status = "optimal" if res.status == "optimal" else "feasible"
    bound = min(res.bound if res.bound is not None else math.inf, lp_bound)
    if math.isinf(bound):
        raise SolverError("HiGHS returned an integral allocation without a bound (no LP bound either)")
    return ("mip-warm-start" if start is not None else "mip"), status, sched, obj, bound


def _rounded(sched: Schedule) -> Schedule:
    return Schedule(
        asic_units=[np.round(u) for u in sched.asic_units],
        gpu_contract_on=[np.round(c) for c in sched.gpu_contract_on],
        gpu_market_on=[np.round(x) for x in sched.gpu_market_on],
        reserve_kw=sched.reserve_kw,
    )
