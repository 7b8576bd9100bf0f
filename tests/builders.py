"""Tiny problems for hand-computed tests.

Conventions that keep the arithmetic by hand simple: hashprice 24 USD/TH/day (so one TH/s earns 1 USD per
hour), 1-hour steps, PUE 1, and prices of 1000 USD/MWh = 1 USD per kWh.
"""

from __future__ import annotations

import numpy as np

from hashpivot.optimizer.milp.problem import AsicPoolData, GpuPoolData, Problem


def asic(name, units, modes, hall="h", fee=0.0, startup=0.0, min_up_steps=1, initial=None, recent=None):
    """modes: list of (power_kw, hashrate_th); initial: dict mode name -> units (names m0, m1, …)."""
    return AsicPoolData(
        name=name,
        hall=hall,
        units_available=units,
        mode_names=[f"m{k}" for k in range(len(modes))],
        mode_power_kw=np.array([m[0] for m in modes], dtype=float),
        mode_hashrate_th=np.array([m[1] for m in modes], dtype=float),
        pool_fee=fee,
        startup_cost_usd=startup,
        min_up_steps=min_up_steps,
        initial_on_by_mode=initial,
        recent_starts=recent or [],
    )


def gpu(name, gpus, steps, committed=0, firm=False, contract_rate=0.0, sla=0.0, full_kw=1.0, market_kw=1.0,
        market_net=0.0, hall="h", min_rental_steps=1, initial_market=None, initial_contract=None):
    return GpuPoolData(
        name=name,
        hall=hall,
        gpus_available=gpus,
        committed_gpus=committed,
        firm=firm,
        contract_rate_usd_per_gpu_hour=contract_rate,
        sla_penalty_usd_per_gpu_hour=sla,
        full_power_kw=full_kw,
        market_power_kw=market_kw,
        market_net_usd_per_gpu_hour=np.full(steps, float(market_net)),
        market_rate_usd_per_gpu_hour=np.full(steps, float(market_net)),
        min_rental_steps=min_rental_steps,
        initial_market_on=initial_market,
        initial_contract_on=initial_contract,
    )


def problem(prices, asic_pools=(), gpu_pools=(), site_cap_kw=1e6, halls=None, ramp_kw=None, pue=1.0,
            block_kw=0.0, block_price=0.0, reserve_price=0.0, reserve_max_kw=0.0, hashprice=24.0,
            initial_site_kw=None, adder=0.0):
    prices = np.asarray(prices, dtype=float)
    T = len(prices)
    halls = halls or {"h": 1e6}
    block = np.full(T, float(block_kw))
    p = Problem(
        steps=T,
        step_hours=1.0,
        pue=pue,
        site_cap_kw=site_cap_kw,
        ramp_limit_kw=ramp_kw,
        hall_cap_kw={h: np.full(T, float(c)) if np.isscalar(c) else np.asarray(c, float) for h, c in halls.items()},
        price_usd_per_mwh=prices,
        adder_usd_per_mwh=adder,
        block_kw=block,
        block_cost_usd=float(block.sum()) * block_price / 1000.0,
        reserve_price_usd_per_mw_hour=np.full(T, float(reserve_price)),
        reserve_max_kw=reserve_max_kw,
        hashprice_usd_per_th_day=np.full(T, float(hashprice)),
        asic=list(asic_pools),
        gpu=list(gpu_pools),
    )
    if initial_site_kw is not None:
        p.initial_site_kw = initial_site_kw
    else:
        from hashpivot.optimizer.milp.problem import initial_site_kw as derive

        p.initial_site_kw = derive(p)
    return p
