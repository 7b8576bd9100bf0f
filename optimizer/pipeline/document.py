"""The typed decision document (`hashpivot.models.decision.Decision`) of one solve: inputs, per pool units,
power, money, breakeven and why, the recent start-ups the next decision needs, and the horizon's schedule."""

from __future__ import annotations

import numpy as np

from hashpivot.models.calendar import iso_utc
from hashpivot.models.decision import SCHEMA_VERSION, Decision, Inputs, SiteState, Step
from hashpivot.optimizer.forecast import Forecast
from hashpivot.optimizer.milp.explain import Explanation
from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.schedule import (
    Schedule,
    asic_it_kw,
    asic_on,
    gpu_it_kw,
    grid_flows_kw,
    site_kw,
    starts,
)
from hashpivot.optimizer.milp.solve import Solution


def start_history_steps(problem: Problem) -> int:
    """How many steps of start-up history a decision carries: the longest minimum run/rental time."""
    return max([1] + [p.min_up_steps for p in problem.asic] + [g.min_rental_steps for g in problem.gpu])


def recent_starts(problem: Problem, schedule: Schedule) -> dict[str, list[int]]:
    """Per pool: units (ASIC) or marketplace GPUs started at step 0, then 1, 2, … steps before it (most recent
    first), as many steps as `start_history_steps`."""
    n = start_history_steps(problem)
    out: dict[str, list[int]] = {}
    for pool, on in zip(problem.asic, asic_on(schedule)):
        out[pool.name] = ([int(round(starts(on, pool.initial_on)[0]))] + list(pool.recent_starts))[:n]
    for g, m in zip(problem.gpu, schedule.gpu_market_on):
        out[g.name] = ([int(round(starts(m, g.initial_market_on)[0]))] + list(g.recent_starts))[:n]
    return {name: history + [0] * (n - len(history)) for name, history in out.items()}


def decision_document(sol: Solution, exp: Explanation, forecast: Forecast, site_name: str = "",
                      reason: str = "", reserve_product: str | None = None) -> Decision:
    """Everything an operator or a downstream system needs about one solve; figures are for step 0."""
    p, s = sol.problem, sol.schedule
    site = site_kw(p, s)
    per_pool_kw = {pool.name: kw for pool, kw in zip(p.asic, asic_it_kw(p, s))}
    per_pool_kw.update({g.name: kw for g, kw in zip(p.gpu, gpu_it_kw(p, s))})
    starts_by_pool = recent_starts(p, s)
    bought, resold = grid_flows_kw(p, site)
    pools = [
        d.model_copy(update={
            "power_kw": round(d.power_kw, 1),
            "revenue_usd_per_hour": _round(d.revenue_usd_per_hour, 2),
            "cost_usd_per_hour": _round(d.cost_usd_per_hour, 2),
            "breakeven_usd_per_mwh": _round(d.breakeven_usd_per_mwh, 2),
            "margin_usd_per_mwh": _round(d.margin_usd_per_mwh, 2),
            "recent_starts": starts_by_pool[d.name],
        })
        for d in exp.pools
    ]
    return Decision(
        schema_version=SCHEMA_VERSION,
        status=sol.status,
        reason=reason or ("solved" if sol.status == "optimal" else "time limit: best feasible allocation found"),
        site=SiteState(name=site_name, cap_kw=p.site_cap_kw, it_power_kw=round(float(site[0] / p.pue), 1),
                       site_power_kw=round(float(site[0]), 1), pue=p.pue, bought_kw=round(float(bought[0]), 1),
                       block_kw=round(float(p.block_kw[0]), 1), resold_kw=round(float(resold[0]), 1)),
        interval_start_utc=iso_utc(forecast.interval_start_utc[0]),
        horizon_steps=p.steps,
        step_minutes=forecast.step_minutes,
        objective_usd=round(sol.objective_usd, 2),
        bound_usd=round(sol.bound_usd, 2),
        gap=sol.gap,
        method=sol.method,
        inputs=Inputs(
            btc_usd=float(forecast.btc_usd[0]),
            hashprice_usd_per_th_day=round(float(forecast.hashprice_usd_per_th_day[0]), 6),
            hashprice_usd_per_ph_day=round(float(forecast.hashprice_usd_per_th_day[0]) * 1000, 3),
            power_price_usd_per_mwh=round(float(p.price_usd_per_mwh[0]), 2),
            marginal_power_price_usd_per_mwh=round(exp.marginal_price_usd_per_mwh, 2),
            adder_usd_per_mwh=p.adder_usd_per_mwh,
            reserve_price_usd_per_mw_hour=round(float(p.reserve_price_usd_per_mw_hour[0]), 2),
            reserve_product=reserve_product,
            gpu_rates_usd_per_gpu_hour={g.name: round(float(g.market_rate_usd_per_gpu_hour[0]), 4) for g in p.gpu},
            forecast_notes=forecast.notes,
        ),
        pools=pools,
        reserve_kw=round(float(s.reserve_kw[0]), 1),
        binding_constraints=exp.binding_constraints,
        binding_explained=exp.binding_explained,
        shadow_price_usd_per_mw_hour=_round(exp.shadow_price_usd_per_mw_hour, 2),
        hall_shadow_prices_usd_per_mw_hour={h: round(v, 2) for h, v in exp.hall_shadow_prices_usd_per_mw_hour.items()},
        breakdown_usd={k: round(v, 2) for k, v in sol.breakdown.items()},
        four_cp_expected_cost_usd=None if p.four_cp_probability is None else round(sol.breakdown.get("four_cp_cost_usd", 0.0), 2),
        timings_s={k: round(v, 4) for k, v in sol.timings_s.items()},
        schedule=[
            Step(
                interval_start_utc=iso_utc(forecast.interval_start_utc[t]),
                power_price_usd_per_mwh=round(float(p.price_usd_per_mwh[t]), 2),
                site_power_kw=round(float(site[t]), 1),
                reserve_kw=round(float(s.reserve_kw[t]), 1),
                pools_power_kw={name: round(float(kw[t]), 1) for name, kw in per_pool_kw.items()},
                four_cp_probability=None if p.four_cp_probability is None else round(float(p.four_cp_probability[t]), 6),
            )
            for t in range(p.steps)
        ],
    )


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)
