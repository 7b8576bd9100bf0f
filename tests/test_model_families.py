"""One tiny model per constraint family, with the optimum worked out by hand (see tests/builders.py units).

Pool A: 1 kW, 3 TH/s -> earns 3 USD/h, so its margin at 1000 USD/MWh is 2 USD/h per unit (2 USD/kWh).
Pool B: 2 kW, 5 TH/s -> earns 5 USD/h, margin 3 USD/h per unit at 1000 USD/MWh (1.5 USD/kWh).
"""

from __future__ import annotations

import numpy as np
import pytest

from hashpivot.models.errors import InfeasibleError
from hashpivot.optimizer.milp.families import violations
from hashpivot.optimizer.milp.solve import SolveSettings, solve
from tests.builders import asic, gpu, problem

A = [(1.0, 3.0)]
B = [(2.0, 5.0)]


def run(p, strategy="auto"):
    sol = solve(p, SolveSettings(mip_rel_gap=1e-6, strategy=strategy))
    assert violations(p, sol.schedule) == []
    return sol


@pytest.mark.parametrize("strategy", ["auto", "mip"])
def test_site_cap_integrality_matters(strategy):
    # 15 kW: LP takes 10 A + 2.5 B (27.5/step); best integral is 9 A + 3 B = 18 + 9 = 27 per step.
    p = problem([1000, 1000], [asic("A", 10, A), asic("B", 10, B)], site_cap_kw=15)
    sol = run(p, strategy)
    assert sol.objective_usd == pytest.approx(54.0, abs=1e-6)
    assert sol.bound_usd >= 54.0 - 1e-6
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [9, 9])
    np.testing.assert_array_equal(sol.schedule.asic_units[1][0], [3, 3])


def test_hall_caps():
    # A's hall holds 5 kW: 5 A (10) + all 10 B (30) = 40 per step.
    p = problem([1000, 1000], [asic("A", 10, A, hall="h1"), asic("B", 10, B, hall="h2")], halls={"h1": 5, "h2": 100})
    sol = run(p)
    assert sol.objective_usd == pytest.approx(80.0)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [5, 5])


def test_ramp_limit_from_initial_state():
    # From 0 kW, 4 kW per step: A runs 4, 8, 10 units -> 2 x 22 = 44; B loses money and stays off.
    p = problem(
        [1000, 1000, 1000],
        [asic("A", 10, A, initial={"m0": 0}), asic("B", 10, [(2.0, 1.0)], initial={"m0": 0})],
        ramp_kw=4,
    )
    sol = run(p)
    assert sol.objective_usd == pytest.approx(44.0)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [4, 8, 10])
    np.testing.assert_array_equal(sol.schedule.asic_units[1][0], [0, 0, 0])


@pytest.mark.parametrize("startup, expected", [(2.5, 35.0), (0.0, 40.0)])
def test_startup_cost_keeps_units_through_a_short_spike(startup, expected):
    # Costs 1, 3.5, 1 USD/unit: staying on earns 2 - 0.5 + 2 = 3.5/unit; stopping earns 4 - restart.
    p = problem([1000, 3500, 1000], [asic("A", 10, A, startup=startup, initial={"m0": 10}), asic("B", 0, B)])
    sol = run(p)
    assert sol.objective_usd == pytest.approx(expected)


def test_min_up_time():
    # Margins 2, 2, -2; a unit started must stay 3 steps: 2 + 2 - 2 = 2/unit (vs 4 without min-up).
    p = problem([1000, 1000, 5000], [asic("A", 10, A, min_up_steps=3, initial={"m0": 0}), asic("B", 0, B)])
    assert run(p).objective_usd == pytest.approx(20.0)
    p.asic[0].min_up_steps = 1
    assert run(p).objective_usd == pytest.approx(40.0)


def test_min_up_counts_starts_before_the_horizon():
    # 10 units started one step before the horizon with a 2-step min-up must run step 0 at a loss of 1 each.
    p = problem([4000, 1000], [asic("A", 10, A, min_up_steps=2, initial={"m0": 10}, recent=[10]), asic("B", 0, B)])
    sol = run(p)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [10, 10])
    assert sol.objective_usd == pytest.approx(-10.0 + 20.0)


def test_firm_contract_floor_beyond_hall_cap_is_diagnosed():
    p = problem([30, 30], gpu_pools=[gpu("H", 100, 2, committed=100, firm=True, contract_rate=2.0)], halls={"h": 50})
    with pytest.raises(InfeasibleError) as info:
        solve(p)
    assert info.value.groups == ["hall_caps", "contract_floors"]
    assert "firm contracts need 100 kW > hall cap 50 kW" in str(info.value)


def test_firm_contract_runs_through_a_price_spike():
    p = problem([9000], gpu_pools=[gpu("H", 10, 1, committed=10, firm=True, contract_rate=2.0, full_kw=1.0)])
    sol = run(p)
    assert sol.schedule.gpu_contract_on[0][0] == 10
    assert sol.objective_usd == pytest.approx(10 * (2.0 - 9.0))


def test_soft_contract_curtailed_when_power_costs_more_than_rate_plus_penalty():
    # Step 0: 2 - 1 = +1/GPU -> on. Step 1: on = 2 - 5 = -3, off = -1 (SLA) -> off. Total 10 - 10 = 0.
    p = problem([1000, 5000], gpu_pools=[gpu("H", 10, 2, committed=10, contract_rate=2.0, sla=1.0)])
    sol = run(p)
    np.testing.assert_array_equal(sol.schedule.gpu_contract_on[0], [10, 0])
    assert sol.objective_usd == pytest.approx(0.0)
    assert sol.breakdown["sla_penalty_usd"] == pytest.approx(10.0)


@pytest.mark.parametrize("min_rental, expected", [(1, 20.0), (2, 0.0)])
def test_minimum_rental_duration(min_rental, expected):
    # Net 3 USD/h per GPU, costs 6, 1, 6: renting only step 1 earns 2; a 2-step rental always loses 1.
    g = gpu("M", 10, 3, market_net=3.0, min_rental_steps=min_rental, initial_market=0, initial_contract=0)
    p = problem([6000, 1000, 6000], gpu_pools=[g])
    assert run(p).objective_usd == pytest.approx(expected)


def test_fixed_block_energy_is_resold_when_mining_does_not_pay():
    # Block 5 kW at 20 USD/MWh for 2 h costs 0.2. Step 0: 10 units, buy 5 kW at 1 -> 30 - 5.
    # Step 1 (4 USD/kWh): off and resell the block, 5 x 4 = 20. Total 44.8.
    p = problem([1000, 4000], [asic("A", 10, A), asic("B", 0, B)], block_kw=5, block_price=20)
    sol = run(p)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [10, 0])
    assert sol.objective_usd == pytest.approx(44.8)
    assert sol.breakdown["resale_revenue_usd"] == pytest.approx(20.0)


def test_reserve_only_from_curtailable_load():
    # Reserve pays 1 USD/kW-h up to 6 kW of running ASIC load. Step 0: 20 + 6. Step 1 (margin -0.5/unit):
    # run exactly 6 units to offer 6 kW: -3 + 6 = 3. Total 29.
    p = problem([1000, 3500], [asic("A", 10, A), asic("B", 0, B)], reserve_price=1000, reserve_max_kw=6)
    sol = run(p)
    assert sol.objective_usd == pytest.approx(29.0)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][0], [10, 6])
    np.testing.assert_allclose(sol.schedule.reserve_kw, [6, 6])


def test_pue_scales_site_power_and_cost():
    # PUE 1.25: a unit costs 1.25 USD/h at the meter; a 10 kW meter cap allows 8 units: (3 - 1.25) x 8 = 14.
    p = problem([1000], [asic("A", 20, A), asic("B", 0, B)], site_cap_kw=10, pue=1.25)
    sol = run(p)
    assert sol.schedule.asic_units[0][0, 0] == 8
    assert sol.objective_usd == pytest.approx(14.0)


def test_modes_choose_the_best_use_of_a_capped_hall():
    # Modes (kW, TH): eco (0.5, 2) earns 2 - 0.5 = 1.5, stock (1, 3) earns 2. Hall of 5 kW with 10 units:
    # all 10 in eco = 15 beats 5 stock = 10 and any mix (x stock + y eco: 2x + 1.5y, x + 0.5y <= 5, x + y <= 10).
    p = problem([1000], [asic("A", 10, [(0.5, 2.0), (1.0, 3.0)], hall="h1"), asic("B", 0, B)], halls={"h1": 5, "h": 100})
    sol = run(p)
    assert sol.objective_usd == pytest.approx(15.0)
    np.testing.assert_array_equal(sol.schedule.asic_units[0][:, 0], [10, 0])


def test_time_limit_returns_the_best_incumbent_as_feasible_with_the_lp_bound():
    # 3 steps, ramp 2 kW from an idle start: HiGHS stopped at once still has the start it was given.
    from hashpivot.optimizer.milp.schedule import Schedule
    from hashpivot.optimizer.milp.solve import _branch_and_bound

    p = problem([1000, 1000, 1000], [asic("A", 10, A), asic("B", 10, B)], ramp_kw=2.0, initial_site_kw=0.0)
    start = Schedule(asic_units=[np.array([[1.0, 2.0, 3.0]]), np.zeros((1, 3))], gpu_contract_on=[],
                     gpu_market_on=[], reserve_kw=np.zeros(3))
    assert violations(p, start) == []
    method, status, sched, obj, bound = _branch_and_bound(p, SolveSettings(time_limit_s=1e-9), start, {}, lp_bound=20.0)
    assert (method, status) == ("mip-warm-start", "feasible")
    np.testing.assert_array_equal(sched.asic_units[0], start.asic_units[0])
    assert obj == pytest.approx(2 * (1 + 2 + 3)) and bound == 20.0


def test_time_limit_with_nothing_found_is_a_clear_error():
    from hashpivot.models.errors import SolverError

    p = problem([1000, 1000], [asic("A", 10, A), asic("B", 10, B)], site_cap_kw=15)
    with pytest.raises(SolverError, match=r"raise solver.time_limit_s \(now 1e-09 s\)"):
        solve(p, SolveSettings(time_limit_s=1e-9))


def test_unit_floor_keeps_a_held_pool_running_through_a_spike():
    # At 5000 USD/MWh pool A loses 2 USD/h per unit: free it runs none; held at 4 units it runs exactly 4.
    free = run(problem([1000, 5000], [asic("A", 10, A)]))
    assert list(free.schedule.asic_units[0][0]) == [10, 0]
    held = asic("A", 10, A)
    held.min_units_on = 4
    sol = run(problem([1000, 5000], [held]))
    assert list(sol.schedule.asic_units[0][0]) == [10, 4]
    assert sol.objective_usd == pytest.approx(10 * 2.0 + 4 * (3.0 - 5.0))


def test_a_floor_the_site_cannot_honour_is_diagnosed():
    held = asic("A", 10, A)
    held.min_units_on = 8
    with pytest.raises(InfeasibleError) as info:
        solve(problem([1000], [held], site_cap_kw=5))
    assert info.value.groups == ["unit_floors", "site_cap"]
    assert "asic pool A: 8 units must run (8 kW IT, 8 kW at the meter at least)" in str(info.value)  # PUE 1 here
