"""The allocation MILP in Pyomo: one function per constraint family, assembled by `build_model`.

Decisions per step t: integer ASIC units per pool and mode `n[a,m,t]`, integer contract and marketplace
GPUs `gc[g,t]`, `gm[g,t]`, start-ups, energy bought/resold against the fixed blocks and reserve offered.
Power is in kW (IT level unless named site), money in USD over each step.

Each constraint family's builder is registered once, with its meaning and its check in the independent
checker, in `optimizer.milp.families`, which also assembles the model (`build_model`).
"""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from hashpivot.optimizer.milp.problem import Problem


def add_sets(m: pyo.ConcreteModel, p: Problem) -> None:
    m.T = pyo.RangeSet(0, p.steps - 1)
    m.A = pyo.RangeSet(0, len(p.asic) - 1) if p.asic else pyo.Set(initialize=[])
    m.G = pyo.RangeSet(0, len(p.gpu) - 1) if p.gpu else pyo.Set(initialize=[])
    m.AM = pyo.Set(dimen=2, initialize=[(a, k) for a, pool in enumerate(p.asic) for k in range(len(pool.mode_names))])


def add_variables(m: pyo.ConcreteModel, p: Problem, relax: bool) -> None:
    integer = pyo.NonNegativeReals if relax else pyo.NonNegativeIntegers
    m.n = pyo.Var(m.AM, m.T, domain=integer, bounds=lambda _, a, k, t: (0, p.asic[a].units_available))
    # units on per multi-mode pool (sum over modes), so start-up and minimum-run rows stay three terms long
    m.AMULTI = pyo.Set(initialize=[a for a, pool in enumerate(p.asic) if len(pool.mode_names) > 1])
    m.on = pyo.Var(m.AMULTI, m.T, domain=pyo.NonNegativeReals)
    m.s = pyo.Var(m.A, m.T, domain=pyo.NonNegativeReals)  # ASIC units started
    m.gc = pyo.Var(m.G, m.T, domain=integer, bounds=lambda _, g, t: (0, p.gpu[g].contract_ub))
    m.gm = pyo.Var(m.G, m.T, domain=integer, bounds=lambda _, g, t: (0, p.gpu[g].market_ub))
    m.gs = pyo.Var(m.G, m.T, domain=pyo.NonNegativeReals)  # marketplace GPUs started (rentals begun)
    m.site = pyo.Var(m.T, domain=pyo.NonNegativeReals)  # site-meter kW, defined once so caps and ramps stay short rows
    m.buy = pyo.Var(m.T, domain=pyo.NonNegativeReals)
    m.sell = pyo.Var(m.T, domain=pyo.NonNegativeReals, bounds=lambda _, t: (0, m.block_kw[t]))
    m.q = pyo.Var(m.T, domain=pyo.NonNegativeReals, bounds=(0, p.reserve_max_kw))


def add_parameters(m: pyo.ConcreteModel, p: Problem) -> None:
    """Mutable Params for every number that differs between two intervals of one site (see `structure_key`):
    they appear only in row and column bounds, so `set_parameters` + a bounds refresh turns a kept model into the
    next interval's."""
    m.ramp_limit_kw = pyo.Param(mutable=True, initialize=0.0)
    m.site_cap_kw = pyo.Param(mutable=True, initialize=0.0)
    m.initial_site_kw = pyo.Param(mutable=True, initialize=0.0)
    m.block_kw = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.hall_cap_kw = pyo.Param(list(p.hall_cap_kw), m.T, mutable=True, initialize=0.0)
    m.asic_initial_on = pyo.Param(m.A, mutable=True, initialize=0.0)
    m.asic_started_before = pyo.Param(m.A, m.T, mutable=True, initialize=0.0)  # starts still inside min-up
    m.gpu_initial_market_on = pyo.Param(m.G, mutable=True, initialize=0.0)
    m.gpu_started_before = pyo.Param(m.G, m.T, mutable=True, initialize=0.0)
    set_parameters(m, p)


def _started_before(recent: list[int], steps: int, t: int) -> int:
    """Units started before the horizon that a minimum run of `steps` steps still holds on at step t."""
    return int(sum(recent[: max(0, steps - 1 - t)]))


def set_parameters(m: pyo.ConcreteModel, p: Problem) -> None:
    """Load `p`'s interval-dependent numbers into the model's mutable Params."""
    m.ramp_limit_kw.set_value(p.ramp_limit_kw or 0.0)
    m.site_cap_kw.set_value(p.site_cap_kw)
    m.initial_site_kw.set_value(p.initial_site_kw or 0.0)
    for t in range(p.steps):
        m.block_kw[t] = float(p.block_kw[t])
        for h, cap in p.hall_cap_kw.items():
            m.hall_cap_kw[h, t] = float(cap[t])
        for a, x in enumerate(p.asic):
            m.asic_started_before[a, t] = _started_before(x.recent_starts, x.min_up_steps, t)
        for g, x in enumerate(p.gpu):
            m.gpu_started_before[g, t] = _started_before(x.recent_starts, x.min_rental_steps, t)
    for a, x in enumerate(p.asic):
        m.asic_initial_on[a] = x.initial_on or 0
    for g, x in enumerate(p.gpu):
        m.gpu_initial_market_on[g] = x.initial_market_on or 0


def structure_key(p: Problem) -> tuple:
    """What fixes the model's rows, columns, coefficients and column bounds. Two problems with equal keys differ
    only in Params (`set_parameters`) and objective coefficients (`set_objective`), so one kept model serves both."""
    return (
        p.steps, p.pue, p.reserve_max_kw, p.ramp_limit_kw is None, p.initial_site_kw is None, tuple(p.hall_cap_kw),
        tuple((x.hall, x.units_available, tuple(map(float, x.mode_power_kw)), x.min_up_steps, x.initial_on is None,
               x.min_units_on) for x in p.asic),
        tuple((x.hall, x.contract_ub, x.market_ub, x.full_power_kw, x.market_power_kw, x.firm, x.committed_gpus,
               x.min_rental_steps, x.initial_market_on is None) for x in p.gpu),
    )


def _asic_on_terms(m, p: Problem, a: int, t: int, scale: float = 1.0) -> list:
    """Units on of pool a at step t: the `on` variable of a multi-mode pool, else its single mode's count."""
    return [(scale, m.on[a, t])] if len(p.asic[a].mode_names) > 1 else [(scale, m.n[a, 0, t])]


def _asic_kw_terms(m, p: Problem, a: int, t: int, scale: float = 1.0) -> list:
    return [(scale * float(p.asic[a].mode_power_kw[k]), m.n[a, k, t]) for k in range(len(p.asic[a].mode_names))]


def _gpu_kw_terms(m, p: Problem, g: int, t: int, scale: float = 1.0) -> list:
    return [(scale * p.gpu[g].full_power_kw, m.gc[g, t]), (scale * p.gpu[g].market_power_kw, m.gm[g, t])]


def _linear(terms: list) -> LinearExpression:
    """One flat linear expression from (coefficient, variable) pairs, built directly (3x faster than quicksum,
    and the flat shape `optimizer.highs_instance` reads without a generic expression walk)."""
    return LinearExpression([MonomialTermExpression((float(c), v)) for c, v in terms])


def _halls(p: Problem) -> dict[str, tuple[list[int], list[int]]]:
    """Halls that hold pools: name -> (ASIC pool indices, GPU pool indices)."""
    out = {}
    for h in p.hall_cap_kw:
        asics = [a for a, x in enumerate(p.asic) if x.hall == h]
        gpus = [g for g, x in enumerate(p.gpu) if x.hall == h]
        if asics or gpus:
            out[h] = (asics, gpus)
    return out


def add_power_expressions(m: pyo.ConcreteModel, p: Problem) -> None:
    """hall_kw[h,t] = IT kW of the hall's pools (the only long rows), site[t] = PUE x sum of halls: hall caps,
    the site cap, the energy balance and ramps then refer to these short variables."""
    halls = _halls(p)
    m.H = pyo.Set(initialize=list(halls))
    m.hall_kw = pyo.Var(m.H, m.T, domain=pyo.NonNegativeReals)

    def hall_rule(_, h, t):
        asics, gpus = halls[h]
        terms = [x for a in asics for x in _asic_kw_terms(m, p, a, t)] + [x for g in gpus for x in _gpu_kw_terms(m, p, g, t)]
        return _linear(terms + [(-1.0, m.hall_kw[h, t])]) == 0

    m.hall_definition = pyo.Constraint(m.H, m.T, rule=hall_rule)
    m.site_definition = pyo.Constraint(
        m.T, rule=lambda _, t: _linear([(p.pue, m.hall_kw[h, t]) for h in m.H] + [(-1.0, m.site[t])]) == 0
    )
    m.on_definition = pyo.Constraint(
        m.AMULTI, m.T,
        rule=lambda _, a, t: _linear([(1.0, m.n[a, k, t]) for k in range(len(p.asic[a].mode_names))] + [(-1.0, m.on[a, t])]) == 0,
    )


def add_unit_limits(m: pyo.ConcreteModel, p: Problem) -> None:
    """Units on <= units available: a bound on `on` (single-mode pools: the bound on their count suffices)."""
    for a, t in m.on:
        m.on[a, t].setub(p.asic[a].units_available)


def add_unit_floors(m: pyo.ConcreteModel, p: Problem) -> None:
    """Units on >= the pool's must-run floor (an operator hold at N units), every step."""
    floored = [a for a, x in enumerate(p.asic) if x.min_units_on > 0]
    m.unit_floors = pyo.Constraint([(a, t) for a in floored for t in m.T],
                                   rule=lambda _, a, t: _linear(_asic_on_terms(m, p, a, t)) >= p.asic[a].min_units_on)


def add_hall_caps(m: pyo.ConcreteModel, p: Problem) -> None:
    m.hall_caps = pyo.Constraint(m.H, m.T, rule=lambda _, h, t: m.hall_kw[h, t] <= m.hall_cap_kw[h, t])


def add_site_cap(m: pyo.ConcreteModel, p: Problem) -> None:
    m.site_cap = pyo.Constraint(m.T, rule=lambda _, t: m.site[t] <= m.site_cap_kw)


def add_energy_balance(m: pyo.ConcreteModel, p: Problem) -> None:
    m.energy_balance = pyo.Constraint(
        m.T, rule=lambda _, t: _linear([(1.0, m.site[t]), (-1.0, m.buy[t]), (1.0, m.sell[t])]) == m.block_kw[t]
    )


def add_ramp_limits(m: pyo.ConcreteModel, p: Problem) -> None:
    """-limit <= site[t] - site[t-1] <= limit, one ranged row per step (from the initial state when known)."""
    if p.ramp_limit_kw is None:
        return
    first = 0 if p.initial_site_kw is not None else 1

    def rule(_, t):
        if t == 0:
            return pyo.inequality(m.initial_site_kw - m.ramp_limit_kw, m.site[0], m.initial_site_kw + m.ramp_limit_kw)
        return pyo.inequality(-m.ramp_limit_kw, _linear([(1.0, m.site[t]), (-1.0, m.site[t - 1])]), m.ramp_limit_kw)

    m.ramp_limits = pyo.Constraint(list(range(first, p.steps)), rule=rule)


def add_asic_startups(m: pyo.ConcreteModel, p: Problem) -> None:
    def rule(_, a, t):
        if t == 0:
            if p.asic[a].initial_on is None:
                return pyo.Constraint.Skip
            return _linear([(1.0, m.s[a, t])] + _asic_on_terms(m, p, a, t, -1.0)) >= -m.asic_initial_on[a]
        return _linear([(1.0, m.s[a, t])] + _asic_on_terms(m, p, a, t, -1.0) + _asic_on_terms(m, p, a, t - 1)) >= 0

    m.asic_startups = pyo.Constraint(m.A, m.T, rule=rule)


def _min_up_rule(on_terms: list, start_var, steps: int, started_before, t: int):
    """on[t] - starts in the window of `steps` steps ending at t >= units started before the horizon still held."""
    inside = [(-1.0, start_var(tau)) for tau in range(max(0, t - steps + 1), t + 1)]
    return _linear(on_terms + inside) >= started_before


def add_asic_min_up(m: pyo.ConcreteModel, p: Problem) -> None:
    pairs = [(a, t) for a, x in enumerate(p.asic) if x.min_up_steps > 1 for t in range(p.steps)]
    m.asic_min_up = pyo.Constraint(
        pairs,
        rule=lambda _, a, t: _min_up_rule(
            _asic_on_terms(m, p, a, t), lambda tt: m.s[a, tt], p.asic[a].min_up_steps, m.asic_started_before[a, t], t
        ),
    )


def add_gpu_startups(m: pyo.ConcreteModel, p: Problem) -> None:
    def rule(_, g, t):
        if t == 0:
            if p.gpu[g].initial_market_on is None:
                return pyo.Constraint.Skip
            return _linear([(1.0, m.gs[g, 0]), (-1.0, m.gm[g, 0])]) >= -m.gpu_initial_market_on[g]
        return _linear([(1.0, m.gs[g, t]), (-1.0, m.gm[g, t]), (1.0, m.gm[g, t - 1])]) >= 0

    m.gpu_startups = pyo.Constraint(m.G, m.T, rule=rule)


def add_gpu_min_rental(m: pyo.ConcreteModel, p: Problem) -> None:
    pairs = [(g, t) for g, x in enumerate(p.gpu) if x.min_rental_steps > 1 for t in range(p.steps)]
    m.gpu_min_rental = pyo.Constraint(
        pairs,
        rule=lambda _, g, t: _min_up_rule(
            [(1.0, m.gm[g, t])], lambda tt: m.gs[g, tt], p.gpu[g].min_rental_steps, m.gpu_started_before[g, t], t
        ),
    )


def add_contract_floors(m: pyo.ConcreteModel, p: Problem) -> None:
    firm = [g for g, x in enumerate(p.gpu) if x.firm and x.committed_gpus > 0]
    # The floor is the committed count itself: a firm contract larger than the GPUs available is infeasible.
    m.contract_floors = pyo.Constraint(firm, m.T, rule=lambda _, g, t: m.gc[g, t] >= p.gpu[g].committed_gpus)


def add_reserve_limits(m: pyo.ConcreteModel, p: Problem) -> None:
    # No offer possible (q is bounded to 0): skip the rows, each of which holds every ASIC term of its step.
    steps = [] if p.reserve_max_kw <= 0 else list(range(p.steps))
    m.reserve_limits = pyo.Constraint(
        steps, rule=lambda _, t: _linear([(1.0, m.q[t])] + [x for a in m.A for x in _asic_kw_terms(m, p, a, t, -p.pue)]) <= 0
    )


def four_cp_cost_terms(m: pyo.ConcreteModel, p: Problem) -> list:
    """Expected 4CP transmission cost as (coefficient, variable) objective terms: -p_t x rate/4 per site-meter
    kW at step t. Plain coefficients, not Params (HiGHS reads no Param in the objective): a kept model gets the
    next interval's probabilities when `set_objective` rebuilds the objective, as it does for the prices."""
    cost = p.four_cp_usd_per_kw()
    return [(-float(cost[t]), m.site[t]) for t in m.T if cost[t] > 0]


def set_objective(m: pyo.ConcreteModel, p: Problem, costs: tuple = ()) -> None:
    """Profit over the horizon, USD: revenue - energy - start-ups - SLA penalties - fixed-block cost - the cost
    terms `costs` (functions (m, p) -> terms, the registry's cost families: `families.COSTS`)."""
    dt = p.step_hours
    asic_rev = p.asic_revenue_usd()
    terms: list = []
    for (a, k) in m.AM:
        terms.extend((float(asic_rev[a][k, t]), m.n[a, k, t]) for t in m.T)
    for a in m.A:
        if p.asic[a].startup_cost_usd:
            terms.extend((-p.asic[a].startup_cost_usd, m.s[a, t]) for t in m.T)
    for g in m.G:
        x = p.gpu[g]
        for t in m.T:
            terms.append(((x.contract_rate_usd_per_gpu_hour + x.sla_penalty_usd_per_gpu_hour) * dt, m.gc[g, t]))
            terms.append((float(x.market_net_usd_per_gpu_hour[t]) * dt, m.gm[g, t]))
            if x.startup_cost_usd:
                terms.append((-x.startup_cost_usd, m.gs[g, t]))
    for t in m.T:
        price = float(p.price_usd_per_mwh[t])
        terms.append((-(price + p.adder_usd_per_mwh) * dt / 1000.0, m.buy[t]))
        terms.append((price * dt / 1000.0, m.sell[t]))
        terms.append((float(p.reserve_price_usd_per_mw_hour[t]) * dt / 1000.0, m.q[t]))
    for cost_terms in costs:
        terms.extend(cost_terms(m, p))
    constant = -p.block_cost_usd - sum(x.committed_gpus * x.sla_penalty_usd_per_gpu_hour * dt * p.steps for x in p.gpu)
    m.objective_constant = constant
    m.profit = pyo.Objective(expr=_linear(terms) + constant, sense=pyo.maximize)
