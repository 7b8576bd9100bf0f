"""A simple greedy allocation: the baseline the optimizer must beat, and a sanity check for it (pure).

Step by step, firm contracts first, then every (pool, mode) and GPU block in order of margin per site kW,
as many units as the pool, its hall and the site cap allow, while the margin is positive. It ignores ramps,
start-up costs and minimum run times, so it is only a valid schedule where those do not apply.
"""

from __future__ import annotations

import numpy as np

from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.schedule import Schedule


def greedy_schedule(problem: Problem) -> Schedule:
    p = problem
    T = p.steps
    asic = [np.zeros((len(a.mode_names), T)) for a in p.asic]
    gc = [np.zeros(T) for _ in p.gpu]
    gm = [np.zeros(T) for _ in p.gpu]
    revenue = p.asic_revenue_usd()
    four_cp = p.four_cp_usd_per_kw()
    for t in range(T):
        # USD per IT kW: energy plus the expected 4CP charge
        energy = ((p.price_usd_per_mwh[t] + p.adder_usd_per_mwh) * p.step_hours / 1000.0 + four_cp[t]) * p.pue
        hall_left = {h: float(c[t]) for h, c in p.hall_cap_kw.items()}
        site_left = p.site_cap_kw / p.pue  # in IT kW
        options = []  # (priority, margin per kW, kind, index, mode, kW per unit)
        for g, x in enumerate(p.gpu):
            if x.firm:
                options.append((0, 0.0, "gc", g, 0, x.full_power_kw))
            elif x.contract_ub:
                m = (x.contract_rate_usd_per_gpu_hour + x.sla_penalty_usd_per_gpu_hour) * p.step_hours - x.full_power_kw * energy
                options.append((1, m / x.full_power_kw, "gc", g, 0, x.full_power_kw))
            if x.market_ub:
                m = float(x.market_net_usd_per_gpu_hour[t]) * p.step_hours - x.market_power_kw * energy
                options.append((1, m / x.market_power_kw, "gm", g, 0, x.market_power_kw))
        for a, x in enumerate(p.asic):
            for k, kw in enumerate(x.mode_power_kw):
                m = float(revenue[a][k, t]) - kw * energy
                options.append((1, m / kw, "n", a, k, float(kw)))
        for priority, margin, kind, i, k, kw in sorted(options, key=lambda o: (o[0], -o[1])):
            if priority and margin <= 0:
                continue
            pool = p.gpu[i] if kind != "n" else p.asic[i]
            if kind == "n":
                room = pool.units_available - asic[i][:, t].sum()
            else:
                room = (pool.contract_ub - gc[i][t]) if kind == "gc" else (pool.market_ub - gm[i][t])
            fit = int(min(room, np.floor(min(hall_left[pool.hall], site_left) / kw + 1e-9)))
            if priority == 0:
                fit = int(room)  # firm contracts run regardless
            if fit <= 0:
                continue
            if kind == "n":
                asic[i][k, t] += fit
            elif kind == "gc":
                gc[i][t] += fit
            else:
                gm[i][t] += fit
            hall_left[pool.hall] -= fit * kw
            site_left -= fit * kw
    asic_site = sum((a.mode_power_kw @ u for a, u in zip(p.asic, asic)), np.zeros(T)) * p.pue
    reserve = np.minimum(asic_site, p.reserve_max_kw) * (p.reserve_price_usd_per_mw_hour > 0)
    return Schedule(asic_units=asic, gpu_contract_on=gc, gpu_market_on=gm, reserve_kw=reserve)
