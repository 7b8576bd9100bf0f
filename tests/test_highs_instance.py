"""The direct Pyomo-to-highspy translation: every expression shape the model uses, changes between solves,
and the column order `extract_schedule` relies on."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from hashpivot.models.errors import SolverError
from hashpivot.optimizer.milp.families import build_model
from hashpivot.optimizer.milp.highs_instance import HighsInstance
from hashpivot.optimizer.milp.solve import extract_schedule
from tests.builders import asic, gpu, problem


def small_model() -> pyo.ConcreteModel:
    """max 3x + 2y + z + 10  s.t.  x + y <= 4 (flat sum), x <= 3 (bare variable), y - z == 1 - 2 (constants on
    both sides), -r <= x - y <= r (mutable Param r = 1), x, y integer in [0, 10], z in [0, 5]."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.NonNegativeIntegers, bounds=(0, 10))
    m.y = pyo.Var(domain=pyo.NonNegativeIntegers, bounds=(0, 10))
    m.z = pyo.Var(bounds=(0, 5))
    m.r = pyo.Param(mutable=True, initialize=1.0)
    m.total = pyo.Constraint(expr=pyo.quicksum([1.0 * m.x, 1.0 * m.y]) <= 4)
    m.x_cap = pyo.Constraint(expr=m.x <= 3)
    m.link = pyo.Constraint(expr=m.y - m.z + 2 == 1)
    m.gap = pyo.Constraint(expr=pyo.inequality(-m.r, m.x - m.y, m.r))
    m.obj = pyo.Objective(expr=3 * m.x + 2 * m.y + m.z + 10, sense=pyo.maximize)
    return m


def values(inst: HighsInstance, x: np.ndarray) -> dict[str, float]:
    return {v.name: float(x[i]) for i, v in enumerate(inst.vars)}


def test_every_row_shape_translates_and_solves_to_the_hand_optimum():
    # z = y + 1, so the objective is 3x + 3y + 11 with x + y <= 4: 23 (x = 2, y = 2 and x = 3, y = 1 tie).
    inst = HighsInstance(small_model())
    res = inst.solve()
    assert res.status == "optimal"
    assert res.objective == pytest.approx(23.0)
    v = values(inst, res.col_values)
    assert v["x"] + v["y"] <= 4 + 1e-9 and abs(v["x"] - v["y"]) <= 1 + 1e-9
    assert v["z"] == pytest.approx(v["y"] + 1)
    assert res.bound == pytest.approx(23.0, abs=1e-6)


def test_mutable_param_rows_follow_refresh_and_columns_reset():
    m = small_model()
    inst = HighsInstance(m)
    m.r.set_value(0.0)  # x == y: x = y = 2 -> 6 + 4 + 3 + 10 = 23; then cap both at 1
    inst.refresh_bounds()
    inst.set_col_bounds(inst.cols(m.x), [0.0], [1.0])  # a solver-side change, undone by the next refresh
    res = inst.solve()
    assert res.objective == pytest.approx(3 + 2 + 2 + 10)
    m.r.set_value(1.0)
    inst.refresh_bounds()
    assert inst.solve().objective == pytest.approx(23.0)


def test_relaxed_columns_and_objective_reload():
    m = small_model()
    inst = HighsInstance(m)
    inst.set_col_bounds(np.arange(len(inst.vars)), inst.col_lower, inst.col_upper, integer=False)
    res = inst.solve()
    assert res.objective == pytest.approx(23.0)  # x = 2.5, y = 1.5 ties the integral optimum here
    m.del_component(m.obj)
    m.obj = pyo.Objective(expr=m.z - m.x, sense=pyo.minimize)
    inst.set_objective()
    assert inst.solve().objective == pytest.approx(0.0)  # z - x = y + 1 - x >= 0 since x - y <= 1


def test_nonlinear_rows_are_refused_with_a_clear_error():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.c = pyo.Constraint(expr=m.x * m.x <= 1)
    m.o = pyo.Objective(expr=m.x)
    with pytest.raises(SolverError, match="must be linear"):
        HighsInstance(m)


def test_infeasible_status():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.c = pyo.Constraint(expr=m.x >= 2)
    m.o = pyo.Objective(expr=m.x)
    res = HighsInstance(m).solve()
    assert res.status == "infeasible" and not res.has_solution


def test_extract_schedule_reads_each_variable_from_its_own_column():
    p = problem(
        [50, 60, 70],
        [asic("A", 10, [(1.0, 3.0), (1.5, 4.0)]), asic("B", 7, [(2.0, 5.0)]), asic("C", 4, [(1.0, 2.0), (1.2, 2.2), (1.4, 2.3)])],
        [gpu("G", 8, 3, committed=2), gpu("H", 3, 3)],
        reserve_max_kw=5.0,
    )
    m = build_model(p, relax=True)
    inst = HighsInstance(m)
    x = np.arange(len(inst.vars), dtype=float)  # every column a distinct value
    sched = extract_schedule(inst, x, p)
    for (a, k, t), var in m.n.items():
        assert sched.asic_units[a][k, t] == x[inst.col_of[id(var)]]
    for (g, t), var in m.gc.items():
        assert sched.gpu_contract_on[g][t] == x[inst.col_of[id(var)]]
    for (g, t), var in m.gm.items():
        assert sched.gpu_market_on[g][t] == x[inst.col_of[id(var)]]
    for t, var in m.q.items():
        assert sched.reserve_kw[t] == x[inst.col_of[id(var)]]


def test_a_mutable_param_inside_a_row_body_is_refused():
    # Bodies are read once; a Param there would silently keep its first value after set_value.
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 10))
    m.y = pyo.Var(bounds=(0, 10))
    m.k = pyo.Param(mutable=True, initialize=2.0)
    m.c = pyo.Constraint(expr=m.k * m.x + m.y <= 4)
    m.o = pyo.Objective(expr=m.x)
    with pytest.raises(SolverError, match="mutable parameter k inside a row body"):
        HighsInstance(m)


def test_the_time_limit_is_per_solve_not_per_instance_lifetime():
    # HiGHS's time_limit option counts every run of an instance; a kept model must not run out of it.
    p = problem(
        list(np.linspace(20, 80, 48)),
        [asic("A", 500, [(1.0, 3.0), (1.5, 4.0)], startup=0.05), asic("B", 400, [(2.0, 5.0), (2.4, 5.5)], startup=0.05)],
        site_cap_kw=900, ramp_kw=150,
    )
    inst = HighsInstance(build_model(p, relax=True), time_limit_s=0.02)
    runs = 0
    while inst.highs.getRunTime() < 0.1 and runs < 20_000:
        inst.clear_solver()
        assert inst.solve().status == "optimal", f"run {runs + 1} after {inst.highs.getRunTime():.3f} s of solving"
        runs += 1
    assert inst.highs.getRunTime() >= 0.1


def hard_knapsacks(n: int = 80) -> pyo.ConcreteModel:
    """Five random knapsack rows over n binaries: branch-and-bound runs for seconds, so a time limit stops it."""
    rng = np.random.default_rng(0)
    weight = rng.integers(1000, 2000, n).astype(float)
    value = weight + rng.integers(0, 50, n)
    m = pyo.ConcreteModel()
    m.i = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.i, domain=pyo.Binary)
    m.rows = pyo.ConstraintList()
    for k in range(5):
        w = rng.permutation(weight)
        m.rows.add(pyo.quicksum(float(w[i]) * m.x[i] for i in m.i) <= float(weight.sum() / 2 + k * 0.5))
    m.obj = pyo.Objective(expr=pyo.quicksum(float(value[i]) * m.x[i] for i in m.i), sense=pyo.maximize)
    return m


def test_every_solve_of_a_kept_instance_stops_at_its_time_limit():
    # HiGHS bounds each run by time_limit; the limit used to be set to the instance's run time so far plus the
    # budget, so the third solve of a kept model could run 3 budgets (17 s on a 3 s limit in a backtest)
    import time

    inst = HighsInstance(hard_knapsacks(), time_limit_s=0.3)
    for run in range(4):
        t0 = time.perf_counter()
        result = inst.solve()
        took = time.perf_counter() - t0
        assert result.status == "time_limit" and took < 0.6, f"solve {run + 1} took {took:.2f} s on a 0.3 s limit"
        inst.set_objective()  # as each decision does: the same model, new objective numbers
