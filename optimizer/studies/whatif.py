"""What-ifs: apply scenario files (config overrides, series transforms) to the base case, decide each through
the one pipeline and summarise every case the same way (sweeps reuse `solve_case`)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hashpivot.feeds.embedded import load_market_data
from hashpivot.feeds.tables import convert_columns, read_table
from hashpivot.models.calendar import iso_utc
from hashpivot.models.config import (
    SiteConfig,
    apply_override,
    load_config,
    load_raw_config,
    validate_config,
)
from hashpivot.models.errors import ConfigError, InfeasibleError
from hashpivot.models.hashprice import blocks_per_day_per_th
from hashpivot.models.scenario import MAY_BE_NEGATIVE, load_scenario
from hashpivot.optimizer.forecast import Forecast, build_forecast
from hashpivot.optimizer.milp.schedule import (
    asic_it_kw,
    gpu_it_kw,
    grid_flows_kw,
    site_kw,
)
from hashpivot.optimizer.milp.solve import PersistentLP
from hashpivot.optimizer.pipeline.decide import decide_on_forecast


def transform_forecast(f: Forecast, series: str, op: str, value: float | None = None, values: np.ndarray | None = None) -> Forecast:
    """A copy of `f` with one series set / scaled / shifted / replaced. BTC changes carry into hashprice. Only the
    power price may go below zero (ERCOT prices do); a negative BTC price, hashprice, GPU rate or reserve price
    is refused."""
    def apply(x: np.ndarray) -> np.ndarray:
        out = _applied(np.asarray(x, dtype=float))
        done = "the csv values" if op == "csv" else f"{op} {value:g}"
        if not np.isfinite(out).all():
            raise ConfigError(f"{series} would not be a finite number after {done}")
        if series not in MAY_BE_NEGATIVE and (out < 0).any():
            raise ConfigError(f"{series} would be {float(out.min()):g} after {done}: "
                              "must be >= 0 (only the power price can be negative)")
        return out

    def _applied(x: np.ndarray) -> np.ndarray:
        if op == "set":
            return np.full_like(x, float(value))
        if op == "scale":
            return x * float(value)
        if op == "add":
            return x + float(value)
        if op == "csv":
            return np.asarray(values, dtype=float)
        raise ConfigError(f"unknown op {op!r}: must be set, scale, add or csv")

    if series == "btc_usd":
        btc = apply(f.btc_usd)
        return dataclasses.replace(f, btc_usd=btc, hashprice_usd_per_th_day=f.hashprice_usd_per_th_day * btc / np.maximum(f.btc_usd, 1e-9))
    if series == "power_price_usd_per_mwh":
        return dataclasses.replace(f, power_price_usd_per_mwh=apply(f.power_price_usd_per_mwh))
    if series == "hashprice_usd_per_th_day":
        return dataclasses.replace(f, hashprice_usd_per_th_day=apply(f.hashprice_usd_per_th_day))
    if series == "reserve_price_usd_per_mw_hour":
        return dataclasses.replace(f, reserve_price_usd_per_mw_hour=apply(f.reserve_price_usd_per_mw_hour))
    if series.startswith("gpu_rate."):
        pool = series.split(".", 1)[1]
        if pool not in f.gpu_rate_usd_per_gpu_hour:
            pools = ", ".join(f.gpu_rate_usd_per_gpu_hour) or "none (this site has no GPU pools)"
            raise ConfigError(f"gpu_rate.{pool}: no GPU pool named {pool!r}; GPU pools: {pools}")
        rates = dict(f.gpu_rate_usd_per_gpu_hour, **{pool: apply(f.gpu_rate_usd_per_gpu_hour[pool])})
        return dataclasses.replace(f, gpu_rate_usd_per_gpu_hour=rates)
    raise ConfigError(f"unknown series {series!r}")


def csv_values(path: Path, f: Forecast) -> np.ndarray:
    """Values for every horizon step from a CSV with columns interval_start_utc,value (hourly or finer)."""
    df = read_table(path, [], complete=False)  # a scenario's own values, often written by hand
    if list(df.columns[:2]) != ["interval_start_utc", "value"]:
        raise ConfigError(f"{path}: header must be interval_start_utc,value; got {','.join(df.columns)}")
    df = convert_columns(df, path, numeric=["value"], times=["interval_start_utc"])
    series = pd.Series(df["value"].to_numpy(), index=pd.DatetimeIndex(df["interval_start_utc"]))
    out = series.reindex(pd.DatetimeIndex(f.interval_start_utc), method="ffill")
    if out.isna().any():
        raise ConfigError(f"{path}: no value for {out.index[out.isna()][0]:%Y-%m-%dT%H:%MZ} (the horizon starts {f.interval_start_utc[0]:%Y-%m-%dT%H:%MZ})")
    return out.to_numpy()


@dataclass
class CaseResult:
    name: str
    profit_usd: float
    power_kw: dict[str, float]  # step 0, per pool
    mean_power_kw: dict[str, float]  # horizon mean, per pool
    btc_mined: float
    gpu_hours: float
    energy_bought_mwh: float
    energy_sold_mwh: float
    binding: list[str]
    status: str

    def row(self) -> dict:
        out = {"case": self.name, "status": self.status, "profit_usd": round(self.profit_usd, 2)}
        out.update({f"{k}_mw": round(v / 1000, 3) for k, v in self.power_kw.items()})
        out.update(btc_mined=round(self.btc_mined, 4), gpu_hours=round(self.gpu_hours, 1),
                   energy_bought_mwh=round(self.energy_bought_mwh, 2), energy_sold_mwh=round(self.energy_sold_mwh, 2),
                   binding=", ".join(self.binding))
        return out


def infeasible_case(name: str, cfg: SiteConfig, exc: InfeasibleError) -> CaseResult:
    """A case the model cannot satisfy: status `infeasible`, no figures, the conflicting constraint groups as its
    binding list (so one bad point or scenario does not cost the others)."""
    pools = [p.name for p in cfg.asic_pools] + [g.name for g in cfg.gpu_pools]
    nan = math.nan
    return CaseResult(name=name, profit_usd=nan, power_kw=dict.fromkeys(pools, nan),
                      mean_power_kw=dict.fromkeys(pools, nan), btc_mined=nan, gpu_hours=nan, energy_bought_mwh=nan,
                      energy_sold_mwh=nan, binding=list(exc.groups), status="infeasible")


def solve_case(name: str, cfg: SiteConfig, forecast: Forecast, persistent: PersistentLP | None = None) -> CaseResult:
    """Decide one case from a free start and summarise it (an infeasible case as `infeasible_case`)."""
    try:
        decided = decide_on_forecast(cfg, forecast, kept=persistent)
    except InfeasibleError as exc:
        return infeasible_case(name, cfg, exc)
    sol = decided.solution
    p, s = sol.problem, sol.schedule
    kw = {pool.name: x for pool, x in zip(p.asic, asic_it_kw(p, s))}
    kw.update({g.name: x for g, x in zip(p.gpu, gpu_it_kw(p, s))})
    dt = p.step_hours
    blocks = np.array([blocks_per_day_per_th(float(forecast.notes.get("difficulty", math.nan)))] * p.steps) \
        if "difficulty" in forecast.notes else np.zeros(p.steps)
    th = sum((u.T @ a.mode_hashrate_th) * (1 - a.pool_fee) for a, u in zip(p.asic, s.asic_units)) + np.zeros(p.steps)
    subsidy_fees = float(forecast.notes.get("subsidy_btc", 0.0)) + float(forecast.notes.get("fees_btc_per_block", 0.0))
    buy, sell = grid_flows_kw(p, site_kw(p, s))
    return CaseResult(
        name=name,
        profit_usd=sol.objective_usd,
        power_kw={k: float(v[0]) for k, v in kw.items()},
        mean_power_kw={k: float(v.mean()) for k, v in kw.items()},
        btc_mined=float((th * blocks).sum() * subsidy_fees * dt / 24.0),
        gpu_hours=float(sum((c + m).sum() for c, m in zip(s.gpu_contract_on, s.gpu_market_on)) * dt),
        energy_bought_mwh=float(buy.sum()) * dt / 1000.0,
        energy_sold_mwh=float(sell.sum()) * dt / 1000.0,
        binding=decided.document.binding_constraints,
        status=sol.status,
    )


def _toml_value(value) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def run_whatif(config_path: Path, overrides: list[str], scenario_paths: list[Path], at: str | None = None,
               data: Path | None = None) -> tuple[SiteConfig, list[dict]]:
    """The base case and each scenario (its `set` keys over its `base` config or `config_path`, its transforms
    over the forecast at its `at` or `at`), as one summary row each (an infeasible one with status `infeasible`)."""
    base_cfg = load_config(config_path, overrides)

    def forecast_for(cfg: SiteConfig, when: str | None) -> Forecast:
        return build_forecast(cfg, load_market_data(data, cfg.site.settlement_point), when)

    def row(name: str, cfg: SiteConfig, forecast: Forecast) -> dict:  # each case says which hour it decided
        out = solve_case(name, cfg, forecast).row()
        return {"case": out.pop("case"), "at_utc": iso_utc(forecast.interval_start_utc[0]), **out}

    rows = [row("base", base_cfg, forecast_for(base_cfg, at))]
    names: dict[str, Path] = {}
    for path in scenario_paths:
        scenario, spath = load_scenario(path)
        if scenario.name in names or scenario.name == "base":
            other = names.get(scenario.name, "the base case")
            raise ConfigError(f"{spath}: name = {scenario.name!r} is already used by {other}; give each scenario its "
                              "own name")
        names[scenario.name] = spath
        cfg_path = (spath.parent / scenario.base) if scenario.base else config_path
        raw, label = load_raw_config(cfg_path, overrides)
        for key, value in scenario.set.items():
            apply_override(raw, f"{key}={_toml_value(value)}")
        cfg = validate_config(raw, f"{spath} (set over {label})")
        forecast = forecast_for(cfg, scenario.at or at)
        for i, t in enumerate(scenario.transform):
            values = csv_values(spath.parent / t.file, forecast) if t.op == "csv" else None
            try:
                forecast = transform_forecast(forecast, t.series, t.op, t.value, values)
            except ConfigError as exc:
                raise ConfigError(f"{spath}: transform[{i}].series = {t.series!r}: {exc}") from None
        rows.append(row(scenario.name, cfg, forecast))
    return base_cfg, rows
