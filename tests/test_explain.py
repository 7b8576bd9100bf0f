"""Why texts and binding constraints in an operator's words, each on a tiny problem solved by hand.

Conventions of tests/builders.py: hashprice 24 USD/TH/day (1 TH/s earns 1 USD per hour), 1-hour steps, PUE 1.
"""

from __future__ import annotations

from hashpivot.optimizer.milp.explain import explain
from hashpivot.optimizer.milp.solve import solve
from tests.builders import asic, gpu, problem


def reasons(p) -> tuple[dict[str, str], list[str], list[str]]:
    exp = explain(solve(p))
    return {d.name: d.reason for d in exp.pools}, exp.binding_constraints, exp.binding_explained


def test_a_pool_held_back_by_the_ramp_limit_says_so():
    # 10 units of 1 kW earning 5 USD/h each at 100 USD/MWh, all off now, 3 kW/step of ramp: 3 on at step 0
    p = problem([100.0, 100.0], [asic("a", 10, [(1.0, 5.0)], initial={"m0": 0})], ramp_kw=3.0)
    why, names, words = reasons(p)
    assert why["a"] == "3/10 units on: held by the ramp limit (margin +4,900 USD/MWh)"
    assert "ramp_limits[t=0]" in names
    assert "ramp limit 3 kW/step binding at step 0 (up from 0 kW now)" in words


def test_units_kept_in_a_leaner_mode_by_the_interconnect_say_so():
    # 10 units, modes 1 kW / 4 TH and 2 kW / 6 TH, site cap 12 kW: 8 lean + 2 hungry fill the cap exactly
    p = problem([0.0, 0.0], [asic("a", 10, [(1.0, 4.0), (2.0, 6.0)])], site_cap_kw=12.0)
    why, names, words = reasons(p)
    assert why["a"].startswith("all 10 units on, in m0 + m1 mode: the interconnect cap keeps them out of a hungrier mode")
    assert "site_cap[t=0]" in names and "interconnect 12 kW reached at steps 0–1" in words


def test_a_contract_bigger_than_its_hall_says_it_does_not_fit():
    # 10 contract GPUs of 1 kW (SLA penalty, so not firm) in a 5 kW hall: 5 on, and the reason says why
    g = gpu("g", 10, 1, committed=10, contract_rate=2.0, sla=1.0, full_kw=1.0)
    why, names, words = reasons(problem([50.0], gpu_pools=[g], halls={"h": 5.0}))
    assert why["g"] == "contract: 5/10 GPUs on: does not fit: hall h cap 5 kW < contract 10 kW"
    assert "h: cap 5 kW reached at step 0" in words


def test_a_pool_losing_money_on_power_is_curtailed():
    # 1 kW earning 0.5 USD/h at 1000 USD/MWh (1 USD/kWh): breakeven 500 USD/MWh < price
    why, _, _ = reasons(problem([1000.0], [asic("a", 4, [(1.0, 0.5)])]))
    assert why["a"] == "curtailed: price 1,000 USD/MWh > breakeven 500 USD/MWh"


def test_the_ramp_reproduction_on_the_example_site_names_the_ramp():
    """The operator-truth issue's case: every ASIC pool was unavailable at 23:00; at 00:00 the site climbs by
    exactly the 25 MW ramp limit, and the pools it holds back say so."""
    from pathlib import Path

    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.models.config import load_config
    from hashpivot.optimizer.pipeline.decide import decide

    site = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
    cfg = load_config(site)
    none = load_config(site, [f"asic_pools.{p.name}.units_available=0" for p in cfg.asic_pools])
    market = load_market_data(None, cfg.site.settlement_point)
    before = decide(none, market, "2025-05-31T23:00Z").document
    after = decide(cfg, market, "2025-06-01T00:00Z", before).document
    assert after.site.site_power_kw - before.site.site_power_kw > 24_900
    assert "ramp_limits[t=0]" in after.binding_constraints
    assert "held by the ramp limit" in after.pool("s21").reason


def test_a_breakeven_and_a_price_are_never_printed_equal_when_they_differ():
    from hashpivot.optimizer.milp.explain import _apart

    assert _apart(69.6, 70.4) == ("69.6", "70.4")  # "breakeven 70 < price 70" read as a contradiction
    assert _apart(60.2, 85.1) == ("60", "85") and _apart(70.04, 70.01) == ("70.04", "70.01")


def test_a_pool_held_at_its_must_run_floor_names_the_floor():
    # 10 units of 1 kW earning 5 USD/h each (breakeven 5,000 USD/MWh) at 9,000 USD/MWh: only the floor of 4 runs
    a = asic("a", 10, [(1.0, 5.0)])
    a.min_units_on = 4
    why, _, _ = reasons(problem([9000.0, 9000.0], [a]))
    assert why["a"] == ("4/10 units on although price 9,000 > breakeven 5,000 USD/MWh: held by the must-run floor "
                        "(min_units_on = 4)")


def test_a_unit_bigger_than_the_interconnect_says_so_not_crowded_out():
    # one unit draws 2 kW even in its leanest mode; the site cap is 1.5 kW: nothing fits, no pool crowds it out
    why, _, _ = reasons(problem([10.0], [asic("a", 10, [(2.0, 6.0), (3.0, 8.0)])], site_cap_kw=1.5))
    assert why["a"] == "off: one unit draws 2.00 kW in its leanest mode, more than the interconnect cap allows (1.50 kW IT)"


def test_the_binding_list_names_a_must_run_floor_that_holds_a_pool():
    # as above: only the floor of 4 runs at 9,000 USD/MWh, so the floor is what binds at step 0
    a = asic("a", 10, [(1.0, 5.0)])
    a.min_units_on = 4
    _, names, words = reasons(problem([9000.0, 9000.0], [a]))
    assert "unit_floors[a,t=0]" in names and "a: must-run floor keeps 4 units on (min_units_on)" in words
    _, names, _ = reasons(problem([10.0, 10.0], [a]))  # all 10 run at 10 USD/MWh: the floor is slack
    assert not any(n.startswith("unit_floors") for n in names)


def test_an_interconnect_too_small_for_one_unit_is_not_called_reached():
    # nothing runs under a 1.5 kW cap with 2 kW units: the cap binds, but 1.5 kW are left, not "reached"
    _, names, words = reasons(problem([10.0], [asic("a", 10, [(2.0, 6.0), (3.0, 8.0)])], site_cap_kw=1.5))
    assert "site_cap[t=0]" in names
    assert "interconnect 1.5 kW leaves 1.5 kW at step 0, less than one more unit needs (2 kW at the meter)" in words
