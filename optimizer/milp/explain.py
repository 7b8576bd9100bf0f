"""Why each pool is where it is at step 0: breakeven vs price, margin, binding constraints, shadow prices (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashpivot.models.breakeven import (
    asic_breakeven_usd_per_mwh,
    gpu_breakeven_usd_per_mwh,
)
from hashpivot.models.decision import PoolDecision
from hashpivot.optimizer.milp.schedule import (
    asic_it_kw,
    grid_flows_kw,
    hall_it_kw,
    site_kw,
)
from hashpivot.optimizer.milp.solve import Solution


@dataclass
class Explanation:
    pools: list[PoolDecision]
    binding_constraints: list[str]  # row-group names, e.g. "site_cap[t=0]"
    binding_explained: list[str]  # the same in an operator's words, e.g. "interconnect 90,000 kW reached at steps 0–5"
    marginal_price_usd_per_mwh: float
    shadow_price_usd_per_mw_hour: float | None  # value of one more MW of interconnect at step 0 (LP dual)
    hall_shadow_prices_usd_per_mw_hour: dict[str, float]


def _increment_kw(sol: Solution) -> float:
    """Site kW of the smallest addition still possible: one more unit, or one unit moved to a hungrier mode."""
    p, s = sol.problem, sol.schedule
    options = []
    for pool, u in zip(p.asic, s.asic_units):
        if u[:, 0].sum() < pool.units_available:
            options.append(float(pool.mode_power_kw.min()))
        for k in np.flatnonzero(u[:, 0] > 0):
            steps_up = pool.mode_power_kw[pool.mode_power_kw > pool.mode_power_kw[k]] - pool.mode_power_kw[k]
            if steps_up.size:
                options.append(float(steps_up.min()))
    for g, c, m in zip(p.gpu, s.gpu_contract_on, s.gpu_market_on):
        if c[0] < g.contract_ub:
            options.append(g.full_power_kw)
        if m[0] < g.market_ub:
            options.append(g.market_power_kw)
    return (min(options) if options else 0.0) * p.pue + 1e-6


@dataclass(frozen=True)
class Binding:
    """A constraint binding at step 0: its row-group name (kept in the JSON) and what it means for an operator."""

    name: str
    words: str


def _apart(a: float, b: float) -> tuple[str, str]:
    """Two USD/MWh figures with the fewest decimals (0-2) that keep them apart, so a sentence never reads
    "breakeven 70 < price 70"."""
    digits = next((d for d in (0, 1) if round(a, d) != round(b, d)), 2)
    return f"{a:,.{digits}f}", f"{b:,.{digits}f}"


def _kw(value: float) -> str:
    """kW with thousands separators, and three significant digits below 100 kW (a 1.5 kW cap is not "2 kW")."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _steps_text(steps: np.ndarray) -> str:
    """[0, 1, 2, 5] -> "steps 0–2, 5"."""
    runs: list[list[int]] = []
    for t in map(int, steps):
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs)
    return ("step " if len(steps) == 1 else "steps ") + text


def binding_constraints(sol: Solution) -> list[Binding]:
    """Constraints at step 0 with less slack than one more unit needs (or than 0.1 % of the limit), each with
    the words an operator reads (the cap, where it binds over the horizon, what sets it)."""
    p, s = sol.problem, sol.schedule
    inc = _increment_kw(sol)
    out: list[Binding] = []
    site = site_kw(p, s)
    site_tol = max(inc, 1e-3 * p.site_cap_kw)
    if p.site_cap_kw - site[0] < site_tol:
        at = np.flatnonzero(p.site_cap_kw - site < site_tol)
        left_kw = p.site_cap_kw - site[0]
        # "reached" only when it is: at 0 of 2 kW the cap is binding because one unit needs more than it leaves
        words = (f"interconnect {_kw(p.site_cap_kw)} kW reached at {_steps_text(at)}" if left_kw <= 1e-3 * p.site_cap_kw
                 else f"interconnect {_kw(p.site_cap_kw)} kW leaves {_kw(left_kw)} kW at step 0, less than one more "
                      f"unit needs ({_kw(inc)} kW at the meter)")
        out.append(Binding("site_cap[t=0]", words))
    hall_kw = {h: kw[0] for h, kw in hall_it_kw(p, s).items()}
    for h, kw in hall_kw.items():
        cap = float(p.hall_cap_kw[h][0])
        if cap - kw < max(inc / p.pue, 1e-3 * cap) and kw > 0:
            base = p.hall_base_cap_kw.get(h, cap)
            derate = (f" after the cooling derate at {p.ambient_temp_c[0]:.0f} °C (nameplate {base:,.0f} kW)"
                      if base - cap > 0.5 and p.ambient_temp_c is not None else "")
            out.append(Binding(f"hall_caps[{h},t=0]", f"{h}: cap {_kw(cap)} kW{derate} reached at step 0"))
    if p.ramp_limit_kw is not None:
        # the relative tolerance matters: rounding leaves a few kW of a 25 MW ramp unused, more than one unit
        ramp_tol = max(inc, 1e-3 * p.ramp_limit_kw)
        if p.initial_site_kw is not None and abs(site[0] - p.initial_site_kw) > p.ramp_limit_kw - ramp_tol:
            direction = "up" if site[0] > p.initial_site_kw else "down"
            out.append(Binding("ramp_limits[t=0]", f"ramp limit {p.ramp_limit_kw:,.0f} kW/step binding at step 0 "
                                                   f"({direction} from {p.initial_site_kw:,.0f} kW now)"))
        if p.steps > 1 and abs(site[1] - site[0]) > p.ramp_limit_kw - ramp_tol:
            out.append(Binding("ramp_limits[t=1]", f"ramp limit {p.ramp_limit_kw:,.0f} kW/step binding between steps 0 and 1"))
    for pool, u in zip(p.asic, s.asic_units):
        if pool.units_available and u[:, 0].sum() >= pool.units_available:
            out.append(Binding(f"unit_limits[{pool.name},t=0]", f"{pool.name}: all {pool.units_available:,} available units on"))
        if pool.min_units_on and u[:, 0].sum() <= pool.min_units_on + 1e-6:
            out.append(Binding(f"unit_floors[{pool.name},t=0]",
                               f"{pool.name}: must-run floor keeps {pool.min_units_on:,} units on (min_units_on)"))
    for g, c in zip(p.gpu, s.gpu_contract_on):
        if g.firm and g.committed_gpus and c[0] <= g.committed_gpus:
            out.append(Binding(f"contract_floors[{g.name},t=0]", f"{g.name}: firm contract keeps {g.committed_gpus:,} GPUs on"))
    if p.reserve_max_kw > 0 and s.reserve_kw[0] > 0:
        asic_site = sum((kw[0] for kw in asic_it_kw(p, s)), 0.0) * p.pue
        if s.reserve_kw[0] >= min(p.reserve_max_kw, asic_site) - 1e-6:
            limit = ("power.reserve.max_offer_mw" if p.reserve_max_kw <= asic_site
                     else f"the curtailable ASIC load, {asic_site:,.0f} kW at the meter")
            out.append(Binding("reserve_limits[t=0]", f"reserve offer {s.reserve_kw[0]:,.0f} kW at its limit ({limit})"))
    return out


def explain(sol: Solution) -> Explanation:
    p, s = sol.problem, sol.schedule
    dt = p.step_hours
    site = site_kw(p, s)
    buy, _ = grid_flows_kw(p, site)
    price = float(p.price_usd_per_mwh[0])
    marginal = price + p.adder_usd_per_mwh if buy[0] > 1e-6 or p.block_kw[0] <= site[0] else price
    binding = binding_constraints(sol)
    names = [b.name for b in binding]
    shadow = None
    if sol.site_cap_dual_usd_per_kw_step is not None:
        shadow = float(sol.site_cap_dual_usd_per_kw_step[0]) * 1000.0 / dt
    hall_shadow = {h: float(d[0]) * 1000.0 / dt for h, d in sol.hall_cap_dual_usd_per_kw_step.items()}
    # steps a full ramp down takes, when the site is ramping down at step 0: a 4CP peak that close explains it
    down = p.ramp_limit_kw is not None and p.initial_site_kw is not None and site[0] < p.initial_site_kw - 1e-6
    reach = int(np.ceil(p.site_cap_kw / p.ramp_limit_kw)) if down else 0
    ctx = _Context(names, marginal, shadow, hall_shadow, dt, p.four_cp_usd_per_kw() * 1000.0,
                   np.zeros(p.steps) if p.four_cp_probability is None else np.asarray(p.four_cp_probability, dtype=float),
                   reach, site_cap_it_kw=p.site_cap_kw / p.pue,
                   hall_cap_it_kw={h: float(c[0]) for h, c in p.hall_cap_kw.items()})

    pools: list[PoolDecision] = []
    revenue = p.asic_revenue_usd()
    for pool, u, rev in zip(p.asic, s.asic_units, revenue):
        counts = {name: int(round(u[k, 0])) for k, name in enumerate(pool.mode_names)}
        on = sum(counts.values())
        mode = max(counts, key=counts.get) if on else None
        k_ref = pool.mode_names.index(mode) if mode else int(np.argmax(pool.mode_hashrate_th / pool.mode_power_kw))
        be = asic_breakeven_usd_per_mwh(
            float(p.hashprice_usd_per_th_day[0]), float(pool.mode_hashrate_th[k_ref]), float(pool.mode_power_kw[k_ref] * 1000),
            pool.pool_fee, p.pue,
        )
        power = float(pool.mode_power_kw @ u[:, 0])
        pools.append(
            PoolDecision(
                name=pool.name, kind="asic", hall=pool.hall, units_on=on, units_available=pool.units_available,
                mode=mode, units_by_mode={k: v for k, v in counts.items() if v},
                power_kw=power, revenue_usd_per_hour=float(rev[:, 0] @ u[:, 0]) / dt,
                cost_usd_per_hour=power * p.pue * marginal / 1000.0, breakeven_usd_per_mwh=be,
                margin_usd_per_mwh=be - marginal,
                reason=ctx.reason(pool.name, pool.hall, on, pool.units_available, be,
                                  " + ".join(m for m, n in counts.items() if n) or None,
                                  hungrier_mode=bool((u[pool.mode_power_kw < pool.mode_power_kw.max(), 0] > 0).any()),
                                  floor=pool.min_units_on, unit_kw=float(pool.mode_power_kw.min())),
            )
        )
    for g, c, mk in zip(p.gpu, s.gpu_contract_on, s.gpu_market_on):
        gc, gm = int(round(c[0])), int(round(mk[0]))
        power = g.full_power_kw * gc + g.market_power_kw * gm
        market_be = gpu_breakeven_usd_per_mwh(float(g.market_net_usd_per_gpu_hour[0]), g.market_power_kw, pue=p.pue)
        contract_be = gpu_breakeven_usd_per_mwh(
            g.contract_rate_usd_per_gpu_hour + g.sla_penalty_usd_per_gpu_hour, g.full_power_kw, pue=p.pue
        )
        parts = []
        if g.committed_gpus:
            if g.firm:
                parts.append(f"firm contract: {gc}/{g.committed_gpus} committed GPUs on (never curtailed)")
            elif g.committed_gpus * g.full_power_kw > p.hall_cap_kw[g.hall][0] + 1e-6 and gc < g.contract_ub:
                parts.append(f"contract: {gc}/{g.committed_gpus} GPUs on: does not fit: hall {g.hall} cap "
                             f"{p.hall_cap_kw[g.hall][0]:,.0f} kW < contract {g.committed_gpus * g.full_power_kw:,.0f} kW")
            else:
                parts.append("contract: " + ctx.reason(g.name, g.hall, gc, g.contract_ub, contract_be, None, unit="GPUs"))
        if g.market_ub:
            parts.append("marketplace: " + ctx.reason(g.name, g.hall, gm, g.market_ub, market_be, None, unit="GPUs"))
        be = market_be if g.market_ub and not g.committed_gpus else (contract_be if not g.market_ub else min(market_be, contract_be))
        pools.append(
            PoolDecision(
                name=g.name, kind="gpu", hall=g.hall, units_on=gc + gm, units_available=g.gpus_available,
                mode=None, units_by_mode={}, power_kw=power,
                revenue_usd_per_hour=gc * g.contract_rate_usd_per_gpu_hour + gm * float(g.market_net_usd_per_gpu_hour[0]),
                cost_usd_per_hour=power * p.pue * marginal / 1000.0, breakeven_usd_per_mwh=be,
                margin_usd_per_mwh=be - marginal, reason="; ".join(parts) or "no GPUs available",
                contract_on=gc, market_on=gm,
            )
        )
    return Explanation(pools, names, [b.words for b in binding], marginal, shadow, hall_shadow)


@dataclass
class _Context:
    binding: list[str]
    price: float
    shadow: float | None
    hall_shadow: dict[str, float]
    step_hours: float = 1.0
    four_cp_usd_per_mw_step: np.ndarray | None = None  # expected 4CP charge per MW of site load, per step
    four_cp_probability: np.ndarray | None = None
    ramp_down_reach_steps: int = 0  # ramping down at step 0: how many steps ahead a 4CP peak can explain it
    site_cap_it_kw: float = float("inf")  # the interconnect cap in IT kW (cap / PUE)
    hall_cap_it_kw: dict[str, float] | None = None  # each hall's cap at step 0

    def four_cp_reason(self, on: int, available: int, be: float, unit: str) -> str | None:
        """Why units are off for 4CP: the step's expected 4CP charge per MW is above the margin per MW-step, or
        the site is ramping down and a step within a full ramp's reach has one. None when 4CP does not explain it."""
        cost, prob = self.four_cp_usd_per_mw_step, self.four_cp_probability
        if cost is None or prob is None or not cost.any() or on >= available:
            return None
        margin = (be - self.price) * self.step_hours
        share = "curtailed" if on == 0 else f"{on:,}/{available:,} {unit} on, the rest curtailed"
        if cost[0] > margin:
            return (f"{share} for a likely 4CP peak (p = {prob[0]:.2g}, expected cost {cost[0]:,.0f} USD/MW-step "
                    f"> margin {margin:,.0f})")
        later = np.flatnonzero(cost[1 : 1 + self.ramp_down_reach_steps] > margin)
        if later.size:
            t = int(later[0]) + 1
            return (f"{share}: ramping down ahead of a likely 4CP peak at step {t} (p = {prob[t]:.2g}, expected cost "
                    f"{cost[t]:,.0f} USD/MW-step > margin {margin:,.0f})")
        return None

    def reason(self, name: str, hall: str, on: int, available: int, be: float, mode: str | None, unit: str = "units",
               hungrier_mode: bool = False, floor: int = 0, unit_kw: float | None = None) -> str:
        """One sentence an operator can act on: what holds this pool where it is. `mode`: the modes its units
        run in; `hungrier_mode`: some run a mode that draws less than the pool's hungriest; `floor`: its must-run
        floor (min_units_on); `unit_kw`: one unit's IT kW in its leanest mode."""
        p, b = self.price, self.binding
        at_text = f"{mode} mode, " if mode else ""
        if available == 0:
            return f"no {unit} available"
        room = min(self.site_cap_it_kw, (self.hall_cap_it_kw or {}).get(hall, float("inf")))
        if on == 0 and unit_kw is not None and unit_kw > room + 1e-9:
            where = "the interconnect cap" if room == self.site_cap_it_kw else f"the {hall} cap"
            return (f"off: one unit draws {unit_kw:,.2f} kW in its leanest mode, more than {where} allows "
                    f"({room:,.2f} kW IT)")
        at_floor = 0 < floor == on < available
        ramp = any(x.startswith("ramp_limits") for x in b)
        hall_bound = f"hall_caps[{hall},t=0]" in b
        site_bound = "site_cap[t=0]" in b
        margin = f"margin {be - p:+,.0f} USD/MWh"
        if on >= available:
            if be < p:
                why = "held on by the ramp limit" if ramp else "kept on: start-up cost / minimum run time / look-ahead"
                be_t, p_t = _apart(be, p)
                return f"all {available:,} {unit} on ({at_text}breakeven {be_t} < price {p_t} USD/MWh): {why}"
            if hungrier_mode and (site_bound or hall_bound):
                cap = f"the {hall} cap" if hall_bound else "the interconnect cap"
                return f"all {available:,} {unit} on, in {mode} mode: {cap} keeps them out of a hungrier mode ({margin})"
            if hungrier_mode and ramp:
                return f"all {available:,} {unit} on, in {mode} mode: the ramp limit keeps them out of a hungrier mode ({margin})"
            return f"at its cap: all {available:,} {unit} on ({at_text}{margin})"
        if be < p:
            if on == 0:
                p_t, be_t = _apart(p, be)
                return f"curtailed: price {p_t} USD/MWh > breakeven {be_t} USD/MWh"
            why = (f"the must-run floor (min_units_on = {floor:,})" if at_floor else
                   "the ramp limit" if ramp else "minimum run time / start-up cost")
            p_t, be_t = _apart(p, be)
            return f"{on:,}/{available:,} {unit} on although price {p_t} > breakeven {be_t} USD/MWh: held by {why}"
        four_cp = self.four_cp_reason(on, available, be, unit)
        if four_cp:
            return four_cp + (f"; {floor:,} must run (min_units_on)" if 0 < floor <= on else "")
        share = f"{on:,}/{available:,} {unit} on" if on else "off"
        if hall_bound:
            value = self.hall_shadow.get(hall)
            extra = f" (hall power worth {value:,.0f} USD/MWh)" if value else ""
            return f"{share}: limited by the {hall} cap{extra}, {margin}"
        if site_bound:
            value = f"{self.shadow:,.0f}" if self.shadow is not None else "?"
            return (f"{share}: crowded out by better pools under the interconnect cap "
                    f"(site power worth {value} USD/MWh more than price; this pool's {margin})")
        if ramp:
            return f"{share}: held by the ramp limit ({margin})"
        return f"{share}: minimum rental/run time or start-up cost over the horizon ({margin})"
