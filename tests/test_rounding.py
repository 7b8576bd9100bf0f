"""The rounding heuristics that earn integrality at LP cost: hand-worked ramp repair, a property over random
sites, and the real-data case that made ramp repair necessary (5-minute steps, tight ramp)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.config import load_config
from hashpivot.optimizer.forecast import build_forecast
from hashpivot.optimizer.milp.families import build_model, violations
from hashpivot.optimizer.milp.highs_instance import HighsInstance
from hashpivot.optimizer.milp.problem import make_problem
from hashpivot.optimizer.milp.rounding import ramp_repair, round_schedule
from hashpivot.optimizer.milp.schedule import Schedule, site_kw
from hashpivot.optimizer.milp.solve import SolveSettings, extract_schedule, solve
from tests.builders import asic, problem
from tests.test_properties import SETTINGS, problems

A = [(1.0, 3.0)]  # 1 kW, earns 3 USD/h
B = [(2.5, 7.0)]  # 2.5 kW, earns 7 USD/h


def units(a0, a1, b0, b1) -> Schedule:
    return Schedule(asic_units=[np.array([[a0, a1]], float), np.array([[b0, b1]], float)], gpu_contract_on=[],
                    gpu_market_on=[], reserve_kw=np.zeros(2))


def test_flooring_that_breaks_a_ramp_is_mended_with_the_smallest_change():
    # Ramp 10 kW from 0. The relaxed schedule runs 10 kW then 20 kW (at the limit). Flooring A (2.5 -> 2) drops
    # step 0 to 9.5 kW, so step 1 (20 kW, integral) rises 10.5 kW. One A more at step 0 would pass 10 kW, so
    # step 1 must shed 0.5 kW: swapping one B for two A does it exactly (-7 + 6 USD); dropping one A would
    # shed 1 kW for -3 USD.
    p = problem([0, 0], [asic("A", 10, A), asic("B", 10, B)], ramp_kw=10.0, initial_site_kw=0.0)
    relaxed = units(2.5, 5.0, 3.0, 6.0)
    rounded = round_schedule(p, relaxed)
    assert violations(p, rounded) == ["site: ramp of 10.5 kW in one step > limit 10.0 kW"]
    repaired = ramp_repair(p, relaxed, rounded)
    np.testing.assert_array_equal(repaired.asic_units[0], [[2, 7]])
    np.testing.assert_array_equal(repaired.asic_units[1], [[3, 5]])
    np.testing.assert_allclose(site_kw(p, repaired), [9.5, 19.5])
    assert violations(p, repaired) == []


def test_floored_units_come_back_up_to_the_lp_power_largest_first():
    # The LP runs 1.5 A + 3.4 B = 10 kW per step; flooring leaves 8.5 kW. Another B (2.5 kW) would pass the LP's
    # 10 kW, another A (1 kW) does not: 2 A + 3 B = 9.5 kW.
    p = problem([0, 0], [asic("A", 10, A), asic("B", 10, B)], ramp_kw=10.0, initial_site_kw=0.0)
    relaxed = units(1.5, 1.5, 3.4, 3.4)
    repaired = ramp_repair(p, relaxed, round_schedule(p, relaxed))
    np.testing.assert_array_equal(repaired.asic_units[0], [[2, 2]])
    np.testing.assert_array_equal(repaired.asic_units[1], [[3, 3]])


@given(problems(dynamics=True))
@settings(**SETTINGS)
def test_a_repaired_schedule_breaks_no_ramp_and_no_cap(p):
    inst = HighsInstance(build_model(p, relax=True))
    res = inst.solve()
    if res.status != "optimal":
        return
    relaxed = extract_schedule(inst, res.col_values, p)
    repaired = ramp_repair(p, relaxed, round_schedule(p, relaxed))
    if repaired is None:
        return
    broken = [v for v in violations(p, repaired) if "ramp" in v or "cap" in v or "available" in v]
    assert broken == []


@pytest.mark.parametrize("at, ramp_kw", [("2024-08-05T14:00Z", 1000), ("2024-08-20T20:00Z", 1000)])
def test_five_minute_steps_with_a_tight_ramp_are_certified_by_rounding(at, ramp_kw):
    # 288 five-minute steps, the site may move 1 MW per step: the LP ramps at the limit for hours. Flooring
    # breaks one ramp row; tightening every row lost 2.1e-4 and sent the solve into 60 s of branch-and-bound.
    overrides = ["horizon.step_minutes=5", "horizon.steps=288", f"site.ramp_limit_kw_per_step={ramp_kw}"]
    cfg = load_config("configs/site.toml", overrides)
    p = make_problem(cfg, build_forecast(cfg, load_market_data(), pd.Timestamp(at)))
    sol = solve(p, SolveSettings(time_limit_s=60))
    assert (sol.method, sol.status) == ("lp-rounding", "optimal")
    assert sol.gap <= 1e-4
    assert violations(p, sol.schedule) == []
