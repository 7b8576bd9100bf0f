"""The one decision pipeline: market data as known at a time, the site as it runs now → forecast → problem →
certified solve → explanation → decision document. `hashpivot solve`, the daemon and `tick`, what-ifs, sweeps
and the rolling backtest all call `decide` (or `decide_on_forecast` once they have changed the forecast).

The starting state is a previous decision document: its step 0 is what runs now, its recent start-ups keep
minimum run and rental times across decisions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from hashpivot.models.calendar import to_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.decision import Decision
from hashpivot.models.errors import InputError
from hashpivot.models.market import MarketData
from hashpivot.optimizer.forecast import Forecast, build_forecast
from hashpivot.optimizer.milp.explain import explain
from hashpivot.optimizer.milp.problem import InitialState, make_problem
from hashpivot.optimizer.milp.solve import (
    PersistentLP,
    Solution,
    SolveSettings,
    Strategy,
    solve,
)
from hashpivot.optimizer.pipeline.document import decision_document

log = logging.getLogger(__name__)


@dataclass
class Decided:
    """A decision and what it was made from (the solution and forecast, for studies that score or chart it)."""

    document: Decision
    solution: Solution
    forecast: Forecast


def decide(cfg: SiteConfig, market: MarketData, at: pd.Timestamp | str | None = None, initial: Decision | None = None,
           kept: PersistentLP | None = None, strategy: Strategy = "auto") -> Decided:
    """The decision for the interval holding `at` (default: the latest time in `market`), starting from
    `initial`'s step 0 (default: a free start). `kept` carries one model between calls (see PersistentLP).
    Raises DataError (inputs missing or stale), InfeasibleError or SolverError."""
    return decide_on_forecast(cfg, build_forecast(cfg, market, at), initial, kept, strategy)


def decide_on_forecast(cfg: SiteConfig, forecast: Forecast, initial: Decision | None = None,
                       kept: PersistentLP | None = None, strategy: Strategy = "auto") -> Decided:
    """`decide` on a forecast already built (and perhaps transformed by a what-if or a sweep)."""
    state = None
    if initial is not None:
        state = initial_state(cfg, initial, forecast.interval_start_utc[0], forecast.step_minutes)
    problem = make_problem(cfg, forecast, state)
    solution = solve(problem, SolveSettings.from_config(cfg, strategy), kept)
    reserve = cfg.power.reserve
    product = None if reserve is None or not reserve.enabled else (
        "fixed price" if reserve.capacity_price_usd_per_mw_hour is not None else reserve.product)
    document = decision_document(solution, explain(solution), forecast, cfg.site.name, reserve_product=product)
    return Decided(document, solution, forecast)


def initial_state(cfg: SiteConfig, doc: Decision, interval_start_utc: pd.Timestamp, step_minutes: int,
                  label: str = "previous decision") -> InitialState:
    """What `doc` left running for a decision at `interval_start_utc`: its step 0 (units per mode, GPUs on)
    and its recent start-ups, shifted by the steps that passed since (nothing was started meanwhile).

    A pool or mode the site does not have, or more units than installed, is an InputError naming the pool.
    A document without start-up history (schema 1) or with another step length starts minimum run/rental
    times from zero, with a warning."""
    asic = {p.name: p for p in cfg.asic_pools}
    gpus = {g.name: g for g in cfg.gpu_pools}
    elapsed = int((to_utc(interval_start_utc) - to_utc(doc.interval_start_utc)) / pd.Timedelta(minutes=step_minutes))
    shift = [0] * max(elapsed - 1, 0)
    history_usable = doc.step_minutes == step_minutes and all(p.recent_starts is not None for p in doc.pools)
    if not history_usable:
        why = ("it has no start-up history (schema 1)" if doc.step_minutes == step_minutes
               else f"it used {doc.step_minutes}-minute steps, this decision {step_minutes}")
        log.warning("%s: minimum run and rental times restart from zero: %s", label, why)
    state = InitialState()
    for pool in doc.pools:
        if pool.kind == "asic":
            if pool.name not in asic:
                raise InputError(f"{label}: ASIC pool {pool.name!r} is not in the site config; pools: {', '.join(asic) or 'none'}")
            modes = [m.name for m in asic[pool.name].modes]
            for mode, n in pool.units_by_mode.items():
                if mode not in modes:
                    raise InputError(f"{label}: pool {pool.name!r} has no mode {mode!r}; modes: {', '.join(modes)}")
            on, installed = sum(pool.units_by_mode.values()), asic[pool.name].units_installed
            state.asic_on_by_mode[pool.name] = dict(pool.units_by_mode)
        else:
            if pool.name not in gpus:
                raise InputError(f"{label}: GPU pool {pool.name!r} is not in the site config; pools: {', '.join(gpus) or 'none'}")
            on, installed = (pool.contract_on or 0) + (pool.market_on or 0), gpus[pool.name].gpus_installed
            state.gpu_contract_on[pool.name] = int(pool.contract_on or 0)
            state.gpu_market_on[pool.name] = int(pool.market_on or 0)
        if on > installed:
            raise InputError(f"{label}: pool {pool.name!r} has {on:,} units on, more than the {installed:,} installed")
        if history_usable:
            state.recent_starts[pool.name] = shift + list(pool.recent_starts or [])
    return state
