"""Property-based tests: for random valid sites and prices, every solution satisfies every constraint."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashpivot.models.breakeven import asic_breakeven_usd_per_mwh
from hashpivot.models.errors import InfeasibleError
from hashpivot.optimizer.milp.families import violations
from hashpivot.optimizer.milp.greedy import greedy_schedule
from hashpivot.optimizer.milp.model import structure_key
from hashpivot.optimizer.milp.schedule import evaluate
from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings, solve
from tests.builders import asic, gpu, problem

SETTINGS = dict(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def asic_pools(draw, halls, dynamics):
    pools = []
    for i in range(draw(st.integers(1, 3))):
        modes = [
            (draw(st.floats(0.5, 4.0)), draw(st.floats(10.0, 250.0)))
            for _ in range(draw(st.integers(1, 3)))
        ]
        units = draw(st.integers(0, 40))
        kwargs = {}
        if dynamics:
            kwargs = dict(
                startup=draw(st.sampled_from([0.0, 0.05, 2.0])),
                min_up_steps=draw(st.integers(1, 3)),
                initial={"m0": draw(st.integers(0, units))} if draw(st.booleans()) else None,
            )
        pools.append(asic(f"a{i}", units, modes, hall=draw(st.sampled_from(halls)), fee=draw(st.floats(0, 0.05)), **kwargs))
    return pools


@st.composite
def gpu_pools(draw, halls, steps, dynamics):
    pools = []
    for i in range(draw(st.integers(0, 2))):
        n = draw(st.integers(0, 30))
        committed = draw(st.integers(0, n))
        pools.append(
            gpu(
                f"g{i}", n, steps, committed=committed, firm=False,
                contract_rate=draw(st.floats(0.2, 3.0)), sla=draw(st.floats(0.0, 2.0)),
                full_kw=draw(st.floats(0.3, 1.4)), market_kw=draw(st.floats(0.2, 1.2)),
                market_net=draw(st.floats(0.0, 3.0)), hall=draw(st.sampled_from(halls)),
                min_rental_steps=draw(st.integers(1, 3)) if dynamics else 1,
                initial_market=draw(st.integers(0, n - committed)) if dynamics and draw(st.booleans()) else None,
            )
        )
    return pools


@st.composite
def problems(draw, dynamics=True):
    steps = draw(st.integers(1, 4))
    halls = {f"h{i}": draw(st.floats(5.0, 150.0)) for i in range(draw(st.integers(1, 2)))}
    names = list(halls)
    asics = draw(asic_pools(names, dynamics))
    gpus = draw(gpu_pools(names, steps, dynamics))
    prices = draw(st.lists(st.floats(-50.0, 3000.0), min_size=steps, max_size=steps))
    return problem(
        prices, asics, gpus,
        site_cap_kw=draw(st.floats(5.0, 250.0)), halls=halls,
        ramp_kw=draw(st.one_of(st.none(), st.floats(5.0, 60.0))) if dynamics else None,
        pue=draw(st.floats(1.0, 1.4)),
        block_kw=draw(st.sampled_from([0.0, 10.0])), block_price=35.0,
        reserve_price=draw(st.sampled_from([0.0, 5.0, 40.0])), reserve_max_kw=draw(st.sampled_from([0.0, 20.0])),
        hashprice=draw(st.floats(0.02, 0.12)), adder=draw(st.sampled_from([0.0, 2.5])),
    )


@given(problems(dynamics=True))
@settings(**SETTINGS)
def test_every_solution_satisfies_every_constraint(p):
    try:
        sol = solve(p)
    except InfeasibleError as exc:  # possible with ramps from an initial state: must name its groups
        assert exc.groups
        return
    assert violations(p, sol.schedule) == []
    assert evaluate(p, sol.schedule)["objective_usd"] == pytest.approx(sol.objective_usd, abs=1e-6)
    assert sol.objective_usd <= sol.bound_usd + 1e-6
    assert sol.gap <= 1e-4 + 1e-9 or sol.status == "feasible"


@given(problems(dynamics=False))
@settings(**SETTINGS)
def test_objective_at_least_greedy(p):
    greedy = greedy_schedule(p)
    assert violations(p, greedy) == []
    sol = solve(p)
    tolerance = 1e-4 * max(abs(sol.bound_usd), 1.0)
    assert sol.objective_usd >= evaluate(p, greedy)["objective_usd"] - tolerance


@given(problems(dynamics=False))
@settings(**SETTINGS)
def test_price_far_above_every_breakeven_turns_all_asics_off(p):
    top = max(
        (asic_breakeven_usd_per_mwh(float(p.hashprice_usd_per_th_day[0]), th, kw * 1000, 0.0, 1.0)
         for a in p.asic for kw, th in zip(a.mode_power_kw, a.mode_hashrate_th)),
        default=0.0,
    )
    p.price_usd_per_mwh[:] = 10 * top + 100
    p.reserve_price_usd_per_mw_hour[:] = 0.0
    sol = solve(p)
    assert all(u.sum() == 0 for u in sol.schedule.asic_units)


@given(problems(dynamics=False))
@settings(**SETTINGS)
def test_price_at_or_below_zero_runs_every_asic_up_to_the_caps(p):
    p.price_usd_per_mwh[:] = np.minimum(p.price_usd_per_mwh, 0.0)
    p.adder_usd_per_mwh = 0.0
    sol = solve(p, SolveSettings(mip_rel_gap=1e-9, strategy="mip"))
    s = sol.schedule
    from hashpivot.optimizer.milp.schedule import asic_it_kw, gpu_it_kw, site_kw

    site = site_kw(p, s)
    hall = {h: np.zeros(p.steps) for h in p.hall_cap_kw}
    for a, kw in zip(p.asic, asic_it_kw(p, s)):
        hall[a.hall] += kw
    for g, kw in zip(p.gpu, gpu_it_kw(p, s)):
        hall[g.hall] += kw
    for a, u in zip(p.asic, s.asic_units):
        smallest = float(a.mode_power_kw.min())
        for t in range(p.steps):
            if u[:, t].sum() < a.units_available:
                blocked = hall[a.hall][t] + smallest > p.hall_cap_kw[a.hall][t] + 1e-6 or site[t] + smallest * p.pue > p.site_cap_kw + 1e-6
                assert blocked, f"{a.name} step {t}: {u[:, t].sum()} of {a.units_available} on with room left"


@st.composite
def same_structure_pairs(draw):
    """Two problems one interval apart: same pools and halls, different prices, hall caps (derate), fixed
    blocks, site cap, initial state and recent starts (None-ness kept, as structure_key requires)."""
    a = draw(problems(dynamics=True))
    b = copy.deepcopy(a)
    T = b.steps

    def floats(lo, hi):
        return np.array(draw(st.lists(st.floats(lo, hi), min_size=T, max_size=T)))

    b.price_usd_per_mwh = floats(-50.0, 3000.0)
    b.hashprice_usd_per_th_day = floats(0.02, 0.12)
    b.hall_cap_kw = {h: cap * floats(0.3, 1.2) for h, cap in a.hall_cap_kw.items()}
    b.block_kw = np.full(T, draw(st.sampled_from([0.0, 4.0, 10.0])))
    b.site_cap_kw = a.site_cap_kw * draw(st.floats(0.5, 1.5))
    for x in b.asic:
        if x.initial_on_by_mode is not None:
            x.initial_on_by_mode = {"m0": draw(st.integers(0, x.units_available))}
        x.recent_starts = draw(st.lists(st.integers(0, 3), max_size=3))
    for x in b.gpu:
        if x.initial_market_on is not None:
            x.initial_market_on = draw(st.integers(0, x.market_ub))
        x.market_net_usd_per_gpu_hour = floats(0.0, 3.0)
        x.recent_starts = draw(st.lists(st.integers(0, 2), max_size=2))
    if a.initial_site_kw is not None:
        b.initial_site_kw = draw(st.floats(0.0, 200.0))
    assert structure_key(a) == structure_key(b)
    return a, b


@given(same_structure_pairs())
@settings(**SETTINGS)
def test_a_kept_model_solves_the_next_interval_exactly_like_a_fresh_build(pair):
    a, b = pair
    persistent = PersistentLP(SolveSettings(), a)
    try:
        solve(a, persistent=persistent)
    except InfeasibleError:
        pass
    try:
        fresh = solve(b)
    except InfeasibleError as exc:
        with pytest.raises(InfeasibleError) as kept:
            solve(b, persistent=persistent)
        assert kept.value.groups == exc.groups
        return
    kept = solve(b, persistent=persistent)
    assert persistent.rebuilds == 1
    assert kept.bound_usd == pytest.approx(fresh.bound_usd, rel=1e-7, abs=1e-6)  # the same LP
    assert violations(b, kept.schedule) == []
    assert kept.gap <= 1e-4 + 1e-9 or kept.status == "feasible"


def lp_point_profit(p) -> tuple[float, float] | None:
    """(LP objective, the independent checker's profit of the LP's own point), or None if infeasible."""
    from hashpivot.optimizer.milp.families import build_model
    from hashpivot.optimizer.milp.settings import load_highs
    from hashpivot.optimizer.milp.solve import extract_schedule

    inst = load_highs(build_model(p, relax=True), SolveSettings())
    res = inst.solve()
    if res.status == "infeasible":
        return None
    assert res.status == "optimal"
    return res.objective, evaluate(p, extract_schedule(inst, res.col_values, p))["objective_usd"]


def assert_checker_agrees_with_the_lp(p) -> None:
    result = lp_point_profit(p)
    if result is not None:
        lp, checker = result
        assert checker == pytest.approx(lp, rel=1e-6, abs=1e-6)


@given(problems(dynamics=True))
@settings(**SETTINGS)
def test_the_checker_prices_the_lp_relaxation_s_own_point_at_the_lp_objective(p):
    """The model's objective and the independent checker are two computations of one profit: on the LP
    relaxation's own (fractional) point they agree. A term in one and not the other breaks this."""
    assert_checker_agrees_with_the_lp(p)


def _checker_without(term: str):
    from hashpivot.optimizer.milp import schedule

    return tuple(t for t in schedule.PROFIT_TERMS if t[0] != term)


def test_a_cost_term_dropped_from_the_checker_breaks_the_agreement_and_the_certificate(monkeypatch):
    """The two checks above can fail: with the energy cost dropped from the checker only, the property no
    longer holds and `solve` refuses to certify, naming both numbers."""
    from hashpivot.models.errors import SolverError
    from hashpivot.optimizer.milp import schedule

    p = problem([80.0, 20.0], [asic("a", 10, [(3.0, 100.0)])], hashprice=0.05)  # 100 TH/s earns ~5 USD/day
    assert_checker_agrees_with_the_lp(p)
    assert solve(p).objective_usd <= solve(p).bound_usd
    monkeypatch.setattr(schedule, "PROFIT_TERMS", _checker_without("energy_cost_usd"))
    with pytest.raises(AssertionError):
        assert_checker_agrees_with_the_lp(p)
    with pytest.raises(SolverError, match=r"certificate failed .*profit [\d,.]+ USD .* above the bound [\d,.-]+ USD"):
        solve(p)
