"""Backtests: replay history hour by hour with a strategy, then score every strategy the same way (pure).

Strategies:
- `rolling`: the daemon's loop — at each hour a forecast from what was published by then (`build_forecast`
  enforces it), a solve from the previous applied hour, only step 0 applied;
- `breakeven`: strike-price curtailment — each ASIC pool runs all units in stock mode while the latest known
  real-time price (the last hour that has ended) is below its breakeven, in a leaner mode where the site or
  hall cap leaves too little for all in stock; GPUs run while they earn their power; reserve offered from the
  running ASIC load within the model's limits (min(max offer, PUE x ASIC kW)); caps, ramps and minimum rental
  times respected greedily;
- `strike-4cp`: `breakeven` plus every ASIC off through the 15:45-17:45 Central window on 4CP call days
  (`optimizer.studies.fourcp.is_call_day`), ramping down ahead of the window within the ramp limit;
- `always-on`: every unit in stock mode, within the caps and ramps;
- `perfect-foresight`: the whole period solved at once with the prices that actually happened (upper bound),
  knowing the official 4CP intervals.

Scoring: the applied hours of each strategy form one schedule over the whole period; it is checked against
every constraint and evaluated on the realised prices (real-time price, that hour's BTC and day's network data,
that month's GPU rate, day-ahead reserve price), so start-ups and ramps across hours count exactly as in the model.
With `[power.four_cp]` in the config every strategy is charged the realised 4CP cost through the same
evaluation: rate/4 x its site-meter kW in each hour holding an official 4CP interval of the period.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hashpivot.models.calendar import MARKET_TZ, to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision
from hashpivot.models.errors import ConfigError, DataError, InfeasibleError, SolverError
from hashpivot.models.hashprice import (
    block_subsidy_btc,
    blocks_per_day_per_th,
    hashprice_usd_per_th_day,
)
from hashpivot.models.market import MarketData
from hashpivot.optimizer.forecast import Forecast, build_forecast
from hashpivot.optimizer.milp.families import violations
from hashpivot.optimizer.milp.problem import InitialState, Problem, make_problem
from hashpivot.optimizer.milp.schedule import (
    Schedule,
    asic_it_kw,
    evaluate,
    gpu_it_kw,
    profit_by_step,
    site_kw,
    starts,
)
from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings, solve
from hashpivot.optimizer.pipeline.decide import decide
from hashpivot.optimizer.studies.executors import run_jobs
from hashpivot.optimizer.studies.fourcp import (
    is_call_day,
    peak_outcomes,
    realised_probability,
    window_hour,
)

log = logging.getLogger(__name__)

STRATEGIES = ("rolling", "breakeven", "strike-4cp", "always-on", "perfect-foresight")
SHORT_GAP_HOURS = 2  # missing real-time hours bridged by the previous price (DST hours the source drops)


def data_gaps(market: MarketData, start: pd.Timestamp, end: pd.Timestamp, min_hours: int = SHORT_GAP_HOURS + 1):
    """Runs of at least `min_hours` hours in [start, end) with no real-time price, as (first, end) pairs."""
    grid = pd.date_range(start, end, freq="h", tz="UTC", inclusive="left")
    missing = market.power["rt_price_usd_per_mwh"].reindex(grid).isna().to_numpy()
    gaps, run_start = [], None
    for t, miss in zip(grid, missing):
        if miss and run_start is None:
            run_start = t
        elif not miss and run_start is not None:
            gaps.append((run_start, t))
            run_start = None
    if run_start is not None:
        gaps.append((run_start, end))
    return [(a, b) for a, b in gaps if b - a >= pd.Timedelta(hours=min_hours)]


@dataclass
class BacktestResult:
    strategy: str
    problem: Problem  # the realised whole-period problem every strategy is scored on
    schedule: Schedule
    totals: dict[str, float]
    steps: pd.DataFrame  # one row per hour
    solve_time_s: list[float] = field(default_factory=list)


def realised_forecast(cfg: SiteConfig, market: MarketData, start: pd.Timestamp, hours: int) -> Forecast:
    """What actually happened over [start, start + hours): the inputs perfect foresight and scoring use."""
    grid = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    rt = market.power["rt_price_usd_per_mwh"].reindex(grid)
    if rt.isna().any():
        gaps = data_gaps(market, grid[0], grid[-1] + pd.Timedelta(hours=1), min_hours=1)
        longest = max(b - a for a, b in gaps)
        if longest > pd.Timedelta(hours=SHORT_GAP_HOURS):
            a, b = next((a, b) for a, b in gaps if b - a == longest)
            raise DataError(f"real-time prices missing from {a:%Y-%m-%dT%H:%MZ} to {b:%Y-%m-%dT%H:%MZ}; "
                            "backtest around it (run_backtest_windows skips such gaps)")
        rt = rt.ffill().bfill()  # the DST hours the source file drops: carry the previous hour over
    btc = market.btc["btc_usd"].reindex(grid, method="ffill")
    net = market.network.reindex(grid.floor("D")).ffill()
    subsidy = net["subsidy_btc"].to_numpy(dtype=float)
    if "height_at_day_start" in net.columns:  # the subsidy follows the height hour by hour (halving days)
        into_day = (grid - grid.floor("D")) / pd.Timedelta(days=1)
        height = net["height_at_day_start"].to_numpy() + net["blocks"].to_numpy() * np.asarray(into_day)
        subsidy = np.where(np.isfinite(height), [block_subsidy_btc(int(h)) if np.isfinite(h) else 0.0 for h in height], subsidy)
    hashprice = np.array([
        hashprice_usd_per_th_day(d, b, s, f)
        for d, b, s, f in zip(net["difficulty"], btc, subsidy, net["fees_btc_per_block"])
    ])
    gpu = {}
    for pool in cfg.gpu_pools:
        if pool.rate_series is not None:
            gpu[pool.name] = market.gpu_rates[pool.rate_series].dropna().reindex(grid, method="ffill").to_numpy()
        else:
            gpu[pool.name] = np.full(hours, float(pool.marketplace_rate_usd_per_gpu_hour or 0.0))
    reserve = np.zeros(hours)
    res = cfg.power.reserve
    if res is not None and res.enabled:
        if res.capacity_price_usd_per_mw_hour is not None:
            reserve[:] = res.capacity_price_usd_per_mw_hour
        elif not market.ancillary.empty:
            reserve = market.ancillary[f"{res.product}_usd_per_mw_hour"].reindex(grid).ffill().fillna(0.0).to_numpy()
    return Forecast(
        interval_start_utc=list(grid),
        step_minutes=60,
        power_price_usd_per_mwh=rt.to_numpy(dtype=float),
        hashprice_usd_per_th_day=hashprice,
        btc_usd=btc.to_numpy(dtype=float),
        gpu_rate_usd_per_gpu_hour=gpu,
        ambient_temp_c=np.full(hours, cfg.forecast.ambient_temp_c),
        reserve_price_usd_per_mw_hour=reserve,
        notes={"realised": True, "btc_blocks_per_th_day": [blocks_per_day_per_th(d) for d in net["difficulty"]]},
    )


def check_coverage(market: MarketData, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """DataError naming the covered range when [start, end) reaches outside the real-time prices in `market`
    (holes inside it are cut out and counted by `run_backtest_windows`)."""
    rt = market.power["rt_price_usd_per_mwh"].dropna()
    if rt.empty:
        raise DataError(f"{market.source}: no real-time prices at all")
    first, last_end = rt.index[0], rt.index[-1] + pd.Timedelta(hours=1)
    if start < first or end > last_end:
        raise DataError(f"--from {start:%Y-%m-%dT%H:%MZ} --to {end:%Y-%m-%dT%H:%MZ} is not covered by the data: "
                        f"real-time prices in {market.source} cover {first:%Y-%m-%dT%H:%MZ} .. {last_end:%Y-%m-%dT%H:%MZ}")


def _hour_cfg(cfg: SiteConfig) -> SiteConfig:
    """The site as a backtest decides it, hour by hour (the price history is hourly): a shorter step becomes an
    hour with the same horizon length, ramp rate and price-forecast decay per hour, and the change is logged."""
    minutes = cfg.horizon.step_minutes
    if minutes == 60:
        return cfg
    per_hour = 60 // minutes
    steps = max(1, math.ceil(cfg.horizon.steps / per_hour))
    ramp = cfg.site.ramp_limit_kw_per_step
    ramp = None if ramp is None else ramp * per_hour
    decay = cfg.forecast.price_decay_per_step ** per_hour
    log.warning("backtest: decisions are hourly, so horizon.step_minutes = %d becomes 60: %d steps (%g h), ramp limit "
                "%s kW per hour, price decay %.3g per hour", minutes, steps, steps, "none" if ramp is None else f"{ramp:,.0f}",
                decay)
    return cfg.model_copy(update={
        "horizon": cfg.horizon.model_copy(update={"step_minutes": 60, "steps": steps}),
        "site": cfg.site.model_copy(update={"ramp_limit_kw_per_step": ramp}),
        "forecast": cfg.forecast.model_copy(update={"price_decay_per_step": decay})})


RECENT_START_HOURS = 12  # start-up history handed to the next solve (minimum run/rental times up to 12 h)


def _recent_starts(on: np.ndarray, t: int) -> list[int]:
    """Units started in hours t, t-1, … (most recent first); the first hour of the replay starts nothing."""
    started = starts(on[: t + 1], None)
    return [int(x) for x in started[::-1][:RECENT_START_HOURS]]


def _state_after(problem: Problem, applied: Schedule, t: int) -> InitialState:
    """The state a rule-based strategy leaves after applied hour t, with the start-ups of recent hours (for
    minimum rental times). The rolling strategy carries its state through its decision documents instead,
    exactly as the daemon does."""
    state = InitialState()
    for a, pool in enumerate(problem.asic):
        state.asic_on_by_mode[pool.name] = {m: int(applied.asic_units[a][k, t]) for k, m in enumerate(pool.mode_names)}
        state.recent_starts[pool.name] = _recent_starts(applied.asic_units[a].sum(axis=0), t)
    for g, pool in enumerate(problem.gpu):
        state.gpu_contract_on[pool.name] = int(applied.gpu_contract_on[g][t])
        state.gpu_market_on[pool.name] = int(applied.gpu_market_on[g][t])
        state.recent_starts[pool.name] = _recent_starts(applied.gpu_market_on[g], t)
    return state


def _empty(problem: Problem) -> Schedule:
    T = problem.steps
    return Schedule(
        asic_units=[np.zeros((len(a.mode_names), T)) for a in problem.asic],
        gpu_contract_on=[np.zeros(T) for _ in problem.gpu],
        gpu_market_on=[np.zeros(T) for _ in problem.gpu],
        reserve_kw=np.zeros(T),
    )


def _copy_step(dst: Schedule, t: int, src: Schedule, s: int = 0) -> None:
    for a in range(len(dst.asic_units)):
        dst.asic_units[a][:, t] = src.asic_units[a][:, s]
    for g in range(len(dst.gpu_contract_on)):
        dst.gpu_contract_on[g][t] = src.gpu_contract_on[g][s]
        dst.gpu_market_on[g][t] = src.gpu_market_on[g][s]
    dst.reserve_kw[t] = src.reserve_kw[s]


def _rule_step(p1: Problem, strategy: str, prev_site_kw: float | None, ramp_kw: float | None,
               asics_off: bool = False, site_ceiling_kw: float | None = None) -> Schedule:
    """One hour of a rule-based strategy on a 1-step problem (prices as known then). `asics_off`: a 4CP call
    window (strike-4cp); `site_ceiling_kw`: the most site-meter kW this hour may run (ramping down ahead of one).
    Each pool's must-run floor (`min_units_on`, an operator hold) runs first, whatever the price or the window;
    a drop larger than the ramp limit is held back by more units or hungrier modes (`_limit_ramp_down`)."""
    s = _empty(p1)
    price = float(p1.price_usd_per_mwh[0]) + p1.adder_usd_per_mwh
    hall_left = {h: float(c[0]) for h, c in p1.hall_cap_kw.items()}
    site_left = p1.site_cap_kw / p1.pue
    if ramp_kw is not None and prev_site_kw is not None:
        site_left = min(site_left, (prev_site_kw + ramp_kw) / p1.pue)
    if site_ceiling_kw is not None:
        site_left = min(site_left, site_ceiling_kw / p1.pue)
    fair = strategy in ("breakeven", "strike-4cp")  # what operators run: lean modes under the cap, reserve offered
    revenue = p1.asic_revenue_usd()
    options = []  # (priority, margin per kW, kind, index, mode, kW per unit, units)
    for g, x in enumerate(p1.gpu):
        if x.contract_ub:
            options.append((0, 1e9, "gc", g, 0, x.full_power_kw, x.contract_ub))
        rented = int(sum(x.recent_starts[: max(x.min_rental_steps - 1, 0)]))
        if rented:  # rentals still inside their minimum duration stay on
            options.append((0, 1e9, "gm", g, 0, x.market_power_kw, min(rented, x.market_ub)))
        if x.market_ub:
            # USD/MWh at the site meter, like the ASICs' breakeven - price below
            margin = float(x.market_net_usd_per_gpu_hour[0]) / x.market_power_kw * 1000.0 / p1.pue - price
            if strategy == "always-on" or margin > 0:
                options.append((1, margin, "gm", g, 0, x.market_power_kw, x.market_ub))
    for a, x in enumerate(p1.asic):
        k = _rule_mode(x)
        kw = float(x.mode_power_kw[k])
        if x.min_units_on:
            options.append((-1, 0.0, "n", a, k, kw, min(x.min_units_on, x.units_available)))
        breakeven = float(revenue[a][k, 0]) / (kw * p1.step_hours / 1000.0) / p1.pue  # USD/MWh at the site meter
        if not asics_off and (strategy == "always-on" or price < breakeven):
            options.append((1, breakeven - price, "n", a, k, kw, x.units_available))
    for _, _, kind, i, k, kw, units in sorted(options, key=lambda o: (o[0], -o[1])):
        pool = p1.gpu[i] if kind != "n" else p1.asic[i]
        room_kw = min(hall_left[pool.hall], site_left)
        fit = int(min(units, np.floor(room_kw / kw + 1e-9)))
        if fit <= 0:
            continue
        if kind == "n":  # `units` is the pool's target count: its floor, then all it has
            before = float(pool.mode_power_kw @ s.asic_units[i][:, 0])
            fit = int(min(units - s.asic_units[i][:, 0].sum(), np.floor(room_kw / kw + 1e-9)))
            if fit <= 0:
                continue
            s.asic_units[i][k, 0] += fit
            if fair and s.asic_units[i][:, 0].sum() < units:
                _leaner_mix(pool, s.asic_units[i], k, units, room_kw + before)
            used = float(pool.mode_power_kw @ s.asic_units[i][:, 0]) - before
            hall_left[pool.hall] -= used
            site_left -= used
            continue
        if kind == "gc":
            s.gpu_contract_on[i][0] = fit
        else:
            fit = int(min(fit, p1.gpu[i].market_ub - s.gpu_market_on[i][0]))
            if fit <= 0:
                continue
            s.gpu_market_on[i][0] += fit
        hall_left[pool.hall] -= fit * kw
        site_left -= fit * kw
    if ramp_kw is not None and prev_site_kw is not None:
        _limit_ramp_down(p1, s, prev_site_kw - ramp_kw)
    if fair and p1.reserve_max_kw > 0 and p1.reserve_price_usd_per_mw_hour[0] > 0:
        asic_site_kw = sum((float(x.mode_power_kw @ u[:, 0]) for x, u in zip(p1.asic, s.asic_units)), 0.0) * p1.pue
        s.reserve_kw[0] = min(p1.reserve_max_kw, asic_site_kw)
    return s


def _rule_mode(pool) -> int:
    """The mode a rule-based strategy runs a pool in: stock, else its most efficient."""
    names = pool.mode_names
    return names.index("stock") if "stock" in names else int(np.argmax(pool.mode_hashrate_th / pool.mode_power_kw))


def floor_site_kw(p: Problem) -> float:
    """Site-meter kW of every pool's must-run floor in its rule mode (what a strike-4cp window still runs)."""
    return sum(float(x.mode_power_kw[_rule_mode(x)]) * min(x.min_units_on, x.units_available) for x in p.asic) * p.pue


def _leaner_mix(pool, units: np.ndarray, k: int, available: int, room_kw: float) -> None:
    """When the room left holds fewer than all `available` units in mode k, run more units by moving some to
    the most efficient leaner mode (more TH/s per kW): as many units as fit in that mode, as many of them in
    mode k as the room still allows. Leaves `units` alone without such a mode."""
    kw = pool.mode_power_kw
    efficiency = pool.mode_hashrate_th / kw
    leaner = [j for j in range(len(kw)) if kw[j] < kw[k] and efficiency[j] > efficiency[k]]
    if not leaner:
        return
    j = max(leaner, key=lambda m: efficiency[m])
    total = int(min(available, np.floor(room_kw / kw[j] + 1e-9)))
    in_k = int(np.clip(np.floor((room_kw - total * kw[j]) / (kw[k] - kw[j]) + 1e-9), 0, total))
    if pool.mode_hashrate_th[k] * in_k + pool.mode_hashrate_th[j] * (total - in_k) <= pool.mode_hashrate_th[k] * units[k, 0]:
        return
    units[:, 0] = 0
    units[k, 0] = in_k
    units[j, 0] = total - in_k


def _limit_ramp_down(p1: Problem, s: Schedule, floor_site_kw: float) -> None:
    """If the step drops below what the ramp allows, keep extra ASIC units on (cheapest loss first); when every
    unit is already on (a whole pool moving to a leaner mode at once), move units back to a hungrier mode."""
    site = float(site_kw(p1, s)[0])
    order = sorted(enumerate(p1.asic), key=lambda ax: -float(p1.asic_revenue_usd()[ax[0]][:, 0].max()))
    for a, x in order:
        k = int(np.argmax(x.mode_hashrate_th / x.mode_power_kw))
        kw = float(x.mode_power_kw[k]) * p1.pue
        room = x.units_available - s.asic_units[a][:, 0].sum()
        need = int(np.ceil(max(floor_site_kw - site, 0.0) / kw - 1e-9))
        add = int(min(room, need))
        if add > 0:
            s.asic_units[a][k, 0] += add
            site += add * kw
        if site >= floor_site_kw - 1e-6:
            return
    for a, x in order:
        hungry = int(np.argmax(x.mode_power_kw))
        for j in np.argsort(x.mode_power_kw):  # from the leanest mode up
            step_kw = float(x.mode_power_kw[hungry] - x.mode_power_kw[j]) * p1.pue
            if j == hungry or step_kw <= 0 or s.asic_units[a][j, 0] == 0:
                continue
            move = int(min(s.asic_units[a][j, 0], np.ceil((floor_site_kw - site) / step_kw - 1e-9)))
            s.asic_units[a][j, 0] -= move
            s.asic_units[a][hungry, 0] += move
            site += move * step_kw
            if site >= floor_site_kw - 1e-6:
                return


class _OncePerHole(logging.Filter):
    """The forecast's "hours missing from the trailing window" warning once per hole in the real-time prices, not
    once per decision: the daemon wants every one, a year's replay would print the same hole 24 times."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        key = getattr(record, "trailing_hole_end", None)
        if key is None:
            return True
        if key in self.seen:
            self.held += 1
            return False
        self.seen.add(key)
        return True


def run_backtest(
    cfg: SiteConfig,
    market: MarketData,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    strategy: str,
    settings: SolveSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Replay [start, end) hourly with `strategy`; score on the realised prices."""
    forecast_log, once = logging.getLogger("hashpivot.optimizer.forecast"), _OncePerHole()
    forecast_log.addFilter(once)
    try:
        return _replay(cfg, market, start, end, strategy, settings, progress)
    finally:
        forecast_log.removeFilter(once)
        if once.held:
            log.warning("power_rt: %d more %s decisions had the same real-time hours missing from their trailing "
                        "window (a backtest logs each hole once)", once.held, strategy)


def _replay(cfg: SiteConfig, market: MarketData, start: pd.Timestamp | str, end: pd.Timestamp | str, strategy: str,
            settings: SolveSettings | None, progress: Callable[[int, int], None] | None) -> BacktestResult:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy {strategy!r}: must be one of {', '.join(STRATEGIES)}")
    cfg = _hour_cfg(cfg)
    start, end = to_utc(start), to_utc(end)
    hours = int((end - start) / pd.Timedelta(hours=1))
    if hours <= 0:
        raise ConfigError(f"--to {end} must be after --from {start}")
    settings = settings or SolveSettings.from_config(cfg)
    realised = make_problem(cfg, realised_forecast(cfg, market, start, hours))
    realised.initial_site_kw = None
    four_cp = cfg.power.four_cp
    months = tuple(four_cp.months) if four_cp is not None else ()
    grid = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    if four_cp is not None and cfg.site.market == "ERCOT":  # every strategy pays the realised charge, also when
        # decisions ignore it (enabled = false); a NYISO site has no 4CP
        realised.four_cp_probability = realised_probability(market.four_cp_intervals, grid, months)
        realised.four_cp_rate_usd_per_kw_year = four_cp.rate_usd_per_kw_year
    # rule-based strategies read no 4CP forecast (strike-4cp calls its days by its own rule)
    rule_cfg = cfg.model_copy(update={"power": cfg.power.model_copy(update={"four_cp": None})})
    call_days: dict[pd.Timestamp, bool] = {}
    flags = np.full(hours, np.nan)  # rolling: step 0's 4CP probability; strike-4cp: 1 in a call window
    blind: list[str] = []  # rolling: why each hour priced 4CP at the climatology (ERCOT load missing or stale)
    times: list[float] = []
    kept_hours: list[int] = []  # rolling: hours whose decision failed, run on the previous plan
    if strategy == "perfect-foresight":
        t0 = time.perf_counter()
        sol = solve(realised, settings)
        times.append(time.perf_counter() - t0)
        applied = sol.schedule
    else:
        applied = _empty(realised)
        state: InitialState | None = None
        previous: Decision | None = None
        kept = PersistentLP(settings)  # one model for the whole replay: each hour only moves its numbers
        plan: tuple[int, Schedule] | None = None  # rolling: the last decision's hour and schedule
        for t in range(hours):
            at = start + pd.Timedelta(hours=t)
            t0 = time.perf_counter()
            if strategy == "rolling":  # the daemon's loop: the pipeline, from the previous hour's document
                try:
                    decided = decide(cfg, market, at, previous, kept)  # the forecast sees only what was published by `at`
                except (SolverError, InfeasibleError) as exc:  # as the daemon does: the last plan's step for this hour
                    if plan is None or t - plan[0] >= plan[1].reserve_kw.shape[0]:
                        raise SolverError(f"rolling: the decision for {at:%Y-%m-%dT%H:%MZ} failed and no earlier plan "
                                          f"covers that hour: {exc}") from None
                    if not kept_hours:
                        log.warning("rolling: the decision for %s failed (%s); the previous plan's step is applied, "
                                    "as the daemon keeps it", f"{at:%Y-%m-%dT%H:%MZ}", str(exc).splitlines()[0])
                    kept_hours.append(t)
                    times.append(time.perf_counter() - t0)
                    _copy_step(applied, t, plan[1], t - plan[0])
                    if progress is not None:
                        progress(t + 1, hours)
                    continue
                step, previous = decided.solution.schedule, decided.document
                plan = (t, step)
                if decided.forecast.four_cp_probability is not None:
                    flags[t] = float(decided.forecast.four_cp_probability[0])
                if "four_cp" in decided.forecast.notes:
                    blind.append(str(decided.forecast.notes["four_cp"]))
            else:
                # strike-price curtailment reacts to the latest real-time price, not to a forecast
                forecast = build_forecast(rule_cfg, market, at)
                one = make_problem(rule_cfg, _first_step(forecast, float(forecast.notes["last_rt_price_usd_per_mwh"])), state)
                prev = None if t == 0 else float(site_kw(realised, applied)[t - 1])
                off, ceiling = False, None
                if strategy == "strike-4cp" and months:
                    off, ceiling = _strike_window(market, at, months, call_days, realised, applied, t,
                                                  cfg.site.ramp_limit_kw_per_step)
                step = _rule_step(one, strategy, prev, cfg.site.ramp_limit_kw_per_step, off, ceiling)
                if strategy == "strike-4cp":
                    flags[t] = float(off)
            times.append(time.perf_counter() - t0)
            _copy_step(applied, t, step)
            if strategy != "rolling":
                state = _state_after(realised, applied, t)
            if progress is not None:
                progress(t + 1, hours)
    if len(kept_hours) > 1:
        log.warning("rolling: %d of %d decisions failed and kept the previous plan", len(kept_hours), hours)
    if blind:
        log.warning("%s: %d of %d hours priced 4CP at the hour-of-day climatology, not a forecast (first: %s)",
                    strategy, len(blind), hours, blind[0])
    problems = violations(realised, applied)
    if problems:
        raise SolverError(f"{strategy}: the applied schedule breaks constraints (a bug, please report): {problems[:3]}")
    totals = evaluate(realised, applied)
    result_totals = _totals(realised, applied, totals, times)
    result_totals["four_cp_charge_usd"] = totals["four_cp_cost_usd"]
    result_totals["hours_kept_previous_plan"] = len(kept_hours)
    result_totals.update(peak_outcomes(realised, applied, market.four_cp_intervals, grid, months))
    steps = _steps(realised, applied, times, start)
    steps["four_cp_peak"] = realised_probability(market.four_cp_intervals, grid, months) if months else 0.0
    steps["four_cp_flag"] = np.round(flags, 6)  # a probability to 1e-6, not 3.88e-214
    return BacktestResult(strategy, realised, applied, result_totals, steps, times)


def _strike_window(market: MarketData, at: pd.Timestamp, months, call_days: dict, realised: Problem, applied: Schedule,
                   t: int, ramp_kw: float | None) -> tuple[bool, float | None]:
    """strike-4cp at the hour starting `at`: (all ASICs off?, site-meter ceiling). On a call day the window's
    hours run no ASIC but the must-run floors, and the hours before it stay within the ramp of the load the window
    keeps (the last hour's GPU kW and the floors), so the site reaches it in time."""
    day = at.tz_convert(MARKET_TZ).normalize()
    if day not in call_days:
        call_days[day] = is_call_day(market.load["system_load_mw"], day.tz_convert("UTC"), months,
                                     load_interval=market.load_interval) if not market.load.empty else False
    if not call_days[day]:
        return False, None
    if window_hour(at):
        return True, None
    first = next((h for h in range(1, 24) if window_hour(at + pd.Timedelta(hours=h))
                  and (at + pd.Timedelta(hours=h)).tz_convert(MARKET_TZ).normalize() == day), None)
    if first is None or ramp_kw is None:
        return False, None
    gpu_kw = 0.0 if t == 0 else float(sum(kw[t - 1] for kw in gpu_it_kw(realised, applied))) * realised.pue
    return False, gpu_kw + floor_site_kw(realised) + ramp_kw * first


def _first_step(f: Forecast, price_usd_per_mwh: float) -> Forecast:
    return Forecast(
        interval_start_utc=f.interval_start_utc[:1],
        step_minutes=f.step_minutes,
        power_price_usd_per_mwh=np.array([price_usd_per_mwh]),
        hashprice_usd_per_th_day=f.hashprice_usd_per_th_day[:1],
        btc_usd=f.btc_usd[:1],
        gpu_rate_usd_per_gpu_hour={k: v[:1] for k, v in f.gpu_rate_usd_per_gpu_hour.items()},
        ambient_temp_c=f.ambient_temp_c[:1],
        reserve_price_usd_per_mw_hour=f.reserve_price_usd_per_mw_hour[:1],
        notes=f.notes,
    )


def _totals(p: Problem, s: Schedule, parts: dict[str, float], times: list[float]) -> dict[str, float]:
    site = site_kw(p, s)
    ramps = np.abs(np.diff(site))
    out = dict(parts)
    out.update(
        profit_usd=parts["objective_usd"],
        gpu_hours=float(sum((c + m).sum() for c, m in zip(s.gpu_contract_on, s.gpu_market_on)) * p.step_hours),
        energy_mwh=float(site.sum()) * p.step_hours / 1000.0,
        curtailed_asic_unit_hours=float(sum((a.units_available - u.sum(axis=0)).sum() for a, u in zip(p.asic, s.asic_units))) * p.step_hours,
        ramp_events=int((ramps > 0.1 * (p.ramp_limit_kw or p.site_cap_kw)).sum()),
        mean_solve_time_s=float(np.mean(times)) if times else 0.0,
        total_solve_time_s=float(np.sum(times)),
    )
    return out


def _steps(p: Problem, s: Schedule, times: list[float], start: pd.Timestamp) -> pd.DataFrame:
    df = pd.DataFrame({"interval_start_utc": pd.date_range(start, periods=p.steps, freq="h", tz="UTC"),
                       "power_price_usd_per_mwh": p.price_usd_per_mwh, "hashprice_usd_per_th_day": p.hashprice_usd_per_th_day,
                       "site_power_kw": site_kw(p, s), "reserve_kw": s.reserve_kw})
    for pool, kw in zip(p.asic, asic_it_kw(p, s)):
        df[f"{pool.name}_kw"] = kw
    for pool, kw in zip(p.gpu, gpu_it_kw(p, s)):
        df[f"{pool.name}_kw"] = kw
    if len(times) == p.steps:
        df["solve_time_s"] = times
    return df


@dataclass
class WindowedResult:
    strategy: str
    windows: list[BacktestResult]
    totals: dict[str, float]
    steps: pd.DataFrame
    hourly_profit_usd: np.ndarray


ADDITIVE = ("objective_usd", "asic_revenue_usd", "gpu_revenue_usd", "reserve_revenue_usd", "resale_revenue_usd", "energy_cost_usd",
            "block_cost_usd", "startup_cost_usd", "sla_penalty_usd", "four_cp_cost_usd", "profit_usd",
            "gpu_hours", "energy_mwh", "curtailed_asic_unit_hours", "ramp_events", "total_solve_time_s",
            "four_cp_charge_usd", "four_cp_peaks", "four_cp_peaks_avoided", "four_cp_hours_curtailed",
            "hours_kept_previous_plan")

COUNTS = ("ramp_events", "four_cp_peaks", "four_cp_peaks_avoided", "four_cp_hours_curtailed", "hours_kept_previous_plan")  # whole numbers in the tables


def _window_job(cfg_json: str, market: MarketData, strategy: str, span: tuple[pd.Timestamp, pd.Timestamp]) -> BacktestResult:
    return run_backtest(SiteConfig.model_validate_json(cfg_json), market, span[0], span[1], strategy)


def run_backtest_windows(cfg: SiteConfig, market: MarketData, start, end, strategy: str, windows: int = 1,
                         executor: str = "local", scheduler: str | None = None,
                         progress: Callable[[int, int], None] | None = None) -> WindowedResult:
    """The period cut into `windows` contiguous windows, each replayed from a free start and scored on its own
    realised prices; windows are independent, so they run in parallel on Dask with the same numbers as locally.
    One window (the default) is the exact sequential replay."""
    start, end = to_utc(start), to_utc(end)
    check_coverage(market, start, end)
    hours = int((end - start) / pd.Timedelta(hours=1))
    if not 1 <= windows <= max(hours, 1):
        raise ConfigError(f"--windows {windows}: must be between 1 and the number of hours ({hours})")
    edges = [start + pd.Timedelta(hours=round(hours * i / windows)) for i in range(windows + 1)]
    spans = list(zip(edges[:-1], edges[1:]))
    # hours without real-time prices (the source has week-long holes) cannot be decided or scored: cut them out,
    # with the hour after each hole, whose forecast has no recent real-time price yet
    for gap_start, gap_end in data_gaps(market, start, end):
        cut = []
        for a, b in spans:
            cut += [(a, min(b, gap_start)), (max(a, gap_end + pd.Timedelta(hours=1)), b)]
        spans = [(a, b) for a, b in cut if b > a]
    skipped = hours - sum(int((b - a) / pd.Timedelta(hours=1)) for a, b in spans)
    if not spans:
        raise DataError(f"no real-time prices between {start:%Y-%m-%dT%H:%MZ} and {end:%Y-%m-%dT%H:%MZ}")
    if skipped:
        holes = ", ".join(f"{a:%Y-%m-%dT%H:%MZ} .. {b:%Y-%m-%dT%H:%MZ}" for a, b in data_gaps(market, start, end))
        log.warning("backtest: %d of %d hours cut out: no real-time prices %s (and the hour after each hole)",
                    skipped, hours, holes)
    if executor not in ("local", "dask"):
        raise ConfigError(f"--executor {executor!r}: must be local or dask")
    if executor == "local" and len(spans) == 1:  # the sequential replay: progress hour by hour
        results = [run_backtest(cfg, market, spans[0][0], spans[0][1], strategy, progress=progress)]
    else:
        results = run_jobs(_window_job, [cfg.model_dump_json(), market, strategy], spans, executor, scheduler, progress)
    totals = {k: (int if k in COUNTS else float)(sum(r.totals[k] for r in results)) for k in ADDITIVE}
    times = [t for r in results for t in r.solve_time_s]
    totals["mean_solve_time_s"] = float(np.mean(times)) if times else 0.0
    totals["hours_without_data"] = int(skipped)
    steps = pd.concat([r.steps for r in results], ignore_index=True)
    profit = np.concatenate([profit_by_step(r.problem, r.schedule)["objective_usd"] for r in results])
    return WindowedResult(strategy, results, totals, steps, profit)
