"""The numbers one solve needs, flattened from config + forecast + initial state (pure).

`Problem` is what the model builder, the independent checker and the benchmarks share; tests and
property-based generators can build one directly without a config file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hashpivot.models.config import CoolingDerate, SiteConfig
from hashpivot.optimizer.forecast import Forecast


@dataclass
class AsicPoolData:
    name: str
    hall: str
    units_available: int
    mode_names: list[str]
    mode_power_kw: np.ndarray  # IT kW per unit, per mode
    mode_hashrate_th: np.ndarray
    pool_fee: float
    startup_cost_usd: float = 0.0  # per unit started
    min_up_steps: int = 1
    initial_on_by_mode: dict[str, int] | None = None
    recent_starts: list[int] = field(default_factory=list)  # units started 1, 2, … steps before step 0
    min_units_on: int = 0  # must-run floor (operator hold at N units)

    @property
    def initial_on(self) -> int | None:
        return None if self.initial_on_by_mode is None else int(sum(self.initial_on_by_mode.values()))


@dataclass
class GpuPoolData:
    name: str
    hall: str
    gpus_available: int
    committed_gpus: int
    firm: bool  # a firm contract may never be curtailed (hard floor); otherwise the SLA penalty applies
    contract_rate_usd_per_gpu_hour: float
    sla_penalty_usd_per_gpu_hour: float
    full_power_kw: float  # per contract GPU (fully loaded)
    market_power_kw: float  # per marketplace GPU (average of rented and idle)
    market_net_usd_per_gpu_hour: np.ndarray  # rate x utilisation x (1 - fee), per step
    market_rate_usd_per_gpu_hour: np.ndarray  # list rate, per step (for reports)
    utilisation: float = 1.0
    marketplace_fee: float = 0.0
    min_rental_steps: int = 1
    startup_cost_usd: float = 0.0
    initial_contract_on: int | None = None
    initial_market_on: int | None = None
    recent_starts: list[int] = field(default_factory=list)
    has_market: bool = True  # False: a contract-only pool, whose GPUs beyond the contract are never rented

    @property
    def contract_ub(self) -> int:
        return min(self.committed_gpus, self.gpus_available)

    @property
    def market_ub(self) -> int:
        return max(self.gpus_available - self.committed_gpus, 0) if self.has_market else 0


@dataclass
class Problem:
    steps: int
    step_hours: float
    pue: float
    site_cap_kw: float
    ramp_limit_kw: float | None
    hall_cap_kw: dict[str, np.ndarray]  # per hall, per step (cooling derate applied)
    price_usd_per_mwh: np.ndarray
    adder_usd_per_mwh: float
    block_kw: np.ndarray  # fixed-price energy per step (as average kW)
    block_cost_usd: float  # take-or-pay cost of the blocks over the horizon (a constant)
    reserve_price_usd_per_mw_hour: np.ndarray
    reserve_max_kw: float
    hashprice_usd_per_th_day: np.ndarray
    asic: list[AsicPoolData]
    gpu: list[GpuPoolData]
    initial_site_kw: float | None = None
    hall_base_cap_kw: dict[str, float] = field(default_factory=dict)  # nameplate, before the cooling derate (reports)
    ambient_temp_c: np.ndarray | None = None  # per step (reports)
    # probability that each step holds its month's 4CP interval (0 off-season, when disabled or without load
    # data) and the transmission rate it is charged at: see `four_cp_usd_per_kw`
    four_cp_probability: np.ndarray | None = None
    four_cp_rate_usd_per_kw_year: float = 0.0

    def four_cp_usd_per_kw(self) -> np.ndarray:
        """Expected 4CP charge per site-meter kW run through each step, USD: p x rate / 4 (one of four peaks sets
        a quarter of next year's charge). `four_cp_probability` is already per step: a sub-hourly step carries
        its share of the hour's probability (see `optimizer.forecast.four_cp_step_probability`)."""
        if self.four_cp_probability is None or not self.four_cp_rate_usd_per_kw_year:
            return np.zeros(self.steps)
        return np.asarray(self.four_cp_probability, dtype=float) * self.four_cp_rate_usd_per_kw_year / 4.0

    def asic_revenue_usd(self) -> list[np.ndarray]:
        """Per ASIC pool: (modes x steps) revenue of one unit over one step, USD."""
        out = []
        for p in self.asic:
            per_day = np.outer(p.mode_hashrate_th, self.hashprice_usd_per_th_day) * (1.0 - p.pool_fee)
            out.append(per_day * self.step_hours / 24.0)
        return out


@dataclass
class InitialState:
    """What is running now: units on per ASIC pool and mode, GPUs on per pool (contract / marketplace)."""

    asic_on_by_mode: dict[str, dict[str, int]] = field(default_factory=dict)
    gpu_contract_on: dict[str, int] = field(default_factory=dict)
    gpu_market_on: dict[str, int] = field(default_factory=dict)
    recent_starts: dict[str, list[int]] = field(default_factory=dict)


def derate_fraction(derate: CoolingDerate | None, ambient_temp_c: np.ndarray) -> np.ndarray:
    """Share of a hall's cap usable at each ambient temperature (1 below the start temperature)."""
    temps = np.asarray(ambient_temp_c, dtype=float)
    if derate is None:
        return np.ones_like(temps)
    frac = 1.0 - derate.fraction_per_c * np.maximum(temps - derate.start_temp_c, 0.0)
    return np.clip(frac, derate.min_fraction, 1.0)


def _steps(minutes: float, step_minutes: int) -> int:
    return max(1, math.ceil(minutes / step_minutes - 1e-9))


def make_problem(cfg: SiteConfig, forecast: Forecast, initial: InitialState | None = None) -> Problem:
    """Flatten a validated config, a forecast and the current state into a Problem."""
    T, dt = forecast.steps, forecast.step_hours
    hours = np.array([t.hour for t in forecast.interval_start_utc])
    block_kw = np.zeros(T)
    block_cost = 0.0
    for b in cfg.power.fixed_blocks:
        active = np.array([b.active_at_hour(int(h)) for h in hours], dtype=float)
        block_kw += active * b.power_mw * 1000.0
        block_cost += float(active.sum()) * b.power_mw * dt * b.price_usd_per_mwh
    res = cfg.power.reserve
    reserve_max_kw = res.max_offer_mw * 1000.0 if res is not None and res.enabled else 0.0

    initial = initial or InitialState()
    asic = []
    for p in cfg.asic_pools:
        init = initial.asic_on_by_mode.get(p.name)
        asic.append(
            AsicPoolData(
                name=p.name,
                hall=p.hall,
                units_available=p.units_available,
                mode_names=[m.name for m in p.modes],
                mode_power_kw=np.array([m.power_w / 1000.0 for m in p.modes]),
                mode_hashrate_th=np.array([m.hashrate_th for m in p.modes]),
                pool_fee=p.pool_fee,
                startup_cost_usd=p.startup_cost_usd_per_unit,
                min_up_steps=_steps(p.min_up_minutes, forecast.step_minutes) if p.min_up_minutes else 1,
                initial_on_by_mode=None if init is None else dict(init),
                recent_starts=list(initial.recent_starts.get(p.name, [])),
                min_units_on=p.min_units_on,
            )
        )
    gpu = []
    for g in cfg.gpu_pools:
        rate = forecast.gpu_rate_usd_per_gpu_hour[g.name]
        c = g.contract
        has_initial = g.name in initial.gpu_contract_on or g.name in initial.gpu_market_on
        gpu.append(
            GpuPoolData(
                name=g.name,
                hall=g.hall,
                gpus_available=g.gpus_available,
                committed_gpus=g.committed_gpus,
                firm=bool(c and c.sla_penalty_usd_per_gpu_hour is None),
                contract_rate_usd_per_gpu_hour=c.rate_usd_per_gpu_hour if c else 0.0,
                sla_penalty_usd_per_gpu_hour=(c.sla_penalty_usd_per_gpu_hour or 0.0) if c else 0.0,
                full_power_kw=g.full_power_kw,
                market_power_kw=g.market_power_kw,
                market_net_usd_per_gpu_hour=rate * g.utilisation * (1.0 - g.marketplace_fee),
                market_rate_usd_per_gpu_hour=rate,
                utilisation=g.utilisation,
                marketplace_fee=g.marketplace_fee,
                has_market=g.has_marketplace,
                min_rental_steps=_steps(g.min_rental_hours * 60, forecast.step_minutes) if g.min_rental_hours else 1,
                startup_cost_usd=g.startup_cost_usd_per_gpu,
                initial_contract_on=initial.gpu_contract_on.get(g.name, 0) if has_initial else None,
                initial_market_on=initial.gpu_market_on.get(g.name, 0) if has_initial else None,
                recent_starts=list(initial.recent_starts.get(g.name, [])),
            )
        )
    problem = Problem(
        steps=T,
        step_hours=dt,
        pue=cfg.site.pue,
        site_cap_kw=cfg.site.interconnect_cap_kw,
        ramp_limit_kw=cfg.site.ramp_limit_kw_per_step,
        hall_cap_kw={h.name: h.cap_kw * derate_fraction(h.cooling_derate, forecast.ambient_temp_c) for h in cfg.site.halls},
        hall_base_cap_kw={h.name: h.cap_kw for h in cfg.site.halls},
        ambient_temp_c=np.asarray(forecast.ambient_temp_c, dtype=float),
        price_usd_per_mwh=np.asarray(forecast.power_price_usd_per_mwh, dtype=float),
        adder_usd_per_mwh=cfg.power.adder_usd_per_mwh,
        block_kw=block_kw,
        block_cost_usd=block_cost,
        reserve_price_usd_per_mw_hour=np.asarray(forecast.reserve_price_usd_per_mw_hour, dtype=float),
        reserve_max_kw=reserve_max_kw,
        hashprice_usd_per_th_day=np.asarray(forecast.hashprice_usd_per_th_day, dtype=float),
        asic=asic,
        gpu=gpu,
    )
    four_cp = cfg.power.four_cp
    if four_cp is not None and four_cp.enabled and forecast.four_cp_probability is not None:
        problem.four_cp_probability = np.asarray(forecast.four_cp_probability, dtype=float)
        problem.four_cp_rate_usd_per_kw_year = four_cp.rate_usd_per_kw_year
    problem.initial_site_kw = initial_site_kw(problem)
    return problem


def initial_site_kw(problem: Problem) -> float | None:
    """Site-meter power of the initial state, or None when no initial state was given for any pool."""
    known = [p.initial_on_by_mode is not None for p in problem.asic] + [g.initial_contract_on is not None for g in problem.gpu]
    if not any(known):
        return None
    it_kw = 0.0
    for p in problem.asic:
        for name, n in (p.initial_on_by_mode or {}).items():
            if name in p.mode_names:
                it_kw += n * p.mode_power_kw[p.mode_names.index(name)]
    for g in problem.gpu:
        it_kw += (g.initial_contract_on or 0) * g.full_power_kw + (g.initial_market_on or 0) * g.market_power_kw
    return it_kw * problem.pue
