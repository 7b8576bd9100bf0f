"""Benchmark: hashpivot's Pyomo model and solve strategy against the same model built directly in highspy.

Run from the repository root:

    python -m benchmarks.model_bench                      # 10x24, 100x96, 1000x96
    python -m benchmarks.model_bench --sizes 10x24 --mip-time-limit 60

For each size (ASIC pools x steps) it builds one seeded site — pools of catalogue miners with eco/stock/turbo
modes, several halls, an interconnect below the installed load, a ramp limit and start-up costs, ERCOT HB_WEST
prices from the embedded data — and reports:

- Pyomo build time and hashpivot's `solve()` (LP relaxation -> rounding certified by the LP bound, else MIP);
- the same MILP built directly with highspy (numpy arrays -> `passModel`), its LP relaxation (the practical
  floor) and its plain branch-and-bound (time-limited);
- ratios: hashpivot total / raw LP solve, Pyomo build / raw build, and the objective gap to the LP bound.

The raw model covers the families the generated site uses (unit limits, hall caps, site cap, energy balance,
ramp, ASIC start-ups); objectives of both builds are checked against each other.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import highspy
import numpy as np

from hashpivot.feeds.embedded import load_market_data
from hashpivot.models.catalogue import ASIC_MODELS
from hashpivot.optimizer.milp.families import build_model
from hashpivot.optimizer.milp.highs_instance import new_highs
from hashpivot.optimizer.milp.problem import AsicPoolData, Problem
from hashpivot.optimizer.milp.schedule import evaluate
from hashpivot.optimizer.milp.solve import PersistentLP, SolveSettings, solve

SIZES = ((10, 24), (100, 96), (1000, 96))


def make_problem(n_pools: int, steps: int, seed: int = 0) -> Problem:
    """A seeded site of `n_pools` ASIC pools over `steps` steps (hourly for <= 24 steps, else 15 minutes)."""
    rng = np.random.default_rng(seed)
    step_hours = 1.0 if steps <= 24 else 0.25
    models = list(ASIC_MODELS)
    n_halls = max(1, n_pools // 5)
    pools = []
    for i in range(n_pools):
        spec = ASIC_MODELS[models[i % len(models)]]
        modes = spec.default_modes()
        pools.append(
            AsicPoolData(
                name=f"p{i}",
                hall=f"h{i % n_halls}",
                units_available=int(rng.integers(100, 3000)),
                mode_names=[name for name, _, _ in modes],
                mode_power_kw=np.array([power_w / 1000 for _, power_w, _ in modes]),
                mode_hashrate_th=np.array([th for _, _, th in modes]),
                pool_fee=0.02,
                startup_cost_usd=0.05,
            )
        )
    stock_kw = np.array([p.units_available * p.mode_power_kw[1] for p in pools])
    hall_cap = {f"h{h}": np.full(steps, 0.95 * stock_kw[h::n_halls].sum()) for h in range(n_halls)}
    pue = 1.07
    site_cap = 0.8 * stock_kw.sum() * pue
    market = load_market_data()
    rt = market.power["rt_price_usd_per_mwh"].loc["2024-08-01":].to_numpy()
    start = int(rng.integers(0, 24 * 30))
    hourly = rt[start : start + int(np.ceil(steps * step_hours)) + 1]
    prices = np.repeat(hourly, int(round(1 / step_hours)))[:steps].astype(float)
    return Problem(
        steps=steps,
        step_hours=step_hours,
        pue=pue,
        site_cap_kw=float(site_cap),
        ramp_limit_kw=float(0.15 * site_cap),
        hall_cap_kw=hall_cap,
        price_usd_per_mwh=prices,
        adder_usd_per_mwh=2.5,
        block_kw=np.zeros(steps),
        block_cost_usd=0.0,
        reserve_price_usd_per_mw_hour=np.zeros(steps),
        reserve_max_kw=0.0,
        hashprice_usd_per_th_day=np.full(steps, 0.05),
        asic=pools,
        gpu=[],
        initial_site_kw=None,
    )


@dataclass
class RawModel:
    highs: highspy.Highs
    n_cols: int
    n_rows: int


def build_raw(p: Problem, integer: bool = True) -> RawModel:
    """The same MILP as `optimizer.model.build_model` for an ASIC-only problem, as numpy arrays -> highspy."""
    T, dt = p.steps, p.step_hours
    revenue = p.asic_revenue_usd()
    # columns: n[a,k,t] for every pool/mode/step, then s[a,t], then buy[t], sell[t]
    n_index, col = [], 0
    for a, pool in enumerate(p.asic):
        K = len(pool.mode_names)
        n_index.append(np.arange(col, col + K * T).reshape(K, T))
        col += K * T
    s_index = np.arange(col, col + len(p.asic) * T).reshape(len(p.asic), T)
    col += len(p.asic) * T
    buy = np.arange(col, col + T)
    sell = buy + T
    n_cols = col + 2 * T

    cost = np.zeros(n_cols)
    lower = np.zeros(n_cols)
    upper = np.full(n_cols, highspy.kHighsInf)
    for a, pool in enumerate(p.asic):
        cost[n_index[a]] = revenue[a]
        upper[n_index[a]] = pool.units_available
        cost[s_index[a]] = -pool.startup_cost_usd
    cost[buy] = -(p.price_usd_per_mwh + p.adder_usd_per_mwh) * dt / 1000.0
    cost[sell] = p.price_usd_per_mwh * dt / 1000.0
    upper[sell] = p.block_kw

    rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []  # (cols, coefs, lo, hi)
    inf = highspy.kHighsInf
    site_cols = np.concatenate([n_index[a].reshape(-1, T) for a in range(len(p.asic))])  # (sum K, T)
    site_coef = np.concatenate([pool.mode_power_kw for pool in p.asic]) * p.pue
    for a, pool in enumerate(p.asic):  # unit limits (multi-mode pools)
        if len(pool.mode_names) > 1:
            for t in range(T):
                rows.append((n_index[a][:, t], np.ones(len(pool.mode_names)), -inf, pool.units_available))
    for h, cap in p.hall_cap_kw.items():  # hall caps
        members = [a for a, pool in enumerate(p.asic) if pool.hall == h]
        for t in range(T):
            cols = np.concatenate([n_index[a][:, t] for a in members])
            coefs = np.concatenate([p.asic[a].mode_power_kw for a in members])
            rows.append((cols, coefs, -inf, float(cap[t])))
    for t in range(T):  # site cap, energy balance
        rows.append((site_cols[:, t], site_coef, -inf, p.site_cap_kw))
        rows.append((np.concatenate([site_cols[:, t], [buy[t], sell[t]]]), np.concatenate([site_coef, [-1.0, 1.0]]),
                     float(p.block_kw[t]), float(p.block_kw[t])))
    if p.ramp_limit_kw is not None:  # |site[t] - site[t-1]| <= ramp, as one ranged row
        for t in range(1, T):
            rows.append((np.concatenate([site_cols[:, t], site_cols[:, t - 1]]), np.concatenate([site_coef, -site_coef]),
                         -p.ramp_limit_kw, p.ramp_limit_kw))
    for a, pool in enumerate(p.asic):  # start-ups: s[a,t] - on[a,t] + on[a,t-1] >= 0
        K = len(pool.mode_names)
        for t in range(1, T):
            cols = np.concatenate([[s_index[a][t]], n_index[a][:, t], n_index[a][:, t - 1]])
            rows.append((cols, np.concatenate([[1.0], -np.ones(K), np.ones(K)]), 0.0, inf))

    starts = np.cumsum([0] + [len(r[0]) for r in rows])
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = len(rows)
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = np.array([r[2] for r in rows], dtype=float)
    lp.row_upper_ = np.array([r[3] for r in rows], dtype=float)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = np.concatenate([r[0] for r in rows]).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate([r[1] for r in rows]).astype(float)
    if integer:
        integrality = np.full(n_cols, highspy.HighsVarType.kContinuous)
        for idx in n_index:
            integrality[idx.ravel()] = highspy.HighsVarType.kInteger
        lp.integrality_ = list(integrality)
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.passModel(lp)
    return RawModel(h, n_cols, len(rows))


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench(n_pools: int, steps: int, mip_time_limit_s: float, mip_rel_gap: float = 1e-4) -> dict:
    p = make_problem(n_pools, steps)
    _, pyomo_build_s = _timed(build_model, p, False)
    sol, hashpivot_total_s = _timed(solve, p, SolveSettings(mip_rel_gap=mip_rel_gap))
    # the next interval's re-solve on a kept model: prices move by +5 %, the structure stays
    persistent = PersistentLP(SolveSettings(mip_rel_gap=mip_rel_gap), p)
    solve(p, persistent=persistent)
    moved = dataclasses.replace(p, price_usd_per_mwh=p.price_usd_per_mwh * 1.05)
    resolved, resolve_s = _timed(solve, moved, SolveSettings(mip_rel_gap=mip_rel_gap), persistent)

    raw_lp, raw_build_lp_s = _timed(build_raw, p, False)
    _, raw_lp_solve_s = _timed(raw_lp.highs.run)
    lp_bound = raw_lp.highs.getInfo().objective_function_value

    raw_mip, raw_build_mip_s = _timed(build_raw, p, True)
    raw_mip.highs.setOptionValue("time_limit", mip_time_limit_s)
    raw_mip.highs.setOptionValue("mip_rel_gap", mip_rel_gap)
    _, raw_mip_solve_s = _timed(raw_mip.highs.run)
    info = raw_mip.highs.getInfo()
    raw_status = raw_mip.highs.modelStatusToString(raw_mip.highs.getModelStatus())
    raw_mip_obj = info.objective_function_value if info.primal_solution_status == 2 else float("nan")

    # the two builds must describe the same model
    if abs(sol.bound_usd - lp_bound) > 1e-6 * max(1.0, abs(lp_bound)) and sol.method == "lp-rounding":
        raise AssertionError(f"LP bounds differ: Pyomo {sol.bound_usd} vs raw {lp_bound}")
    check = evaluate(p, sol.schedule)["objective_usd"]
    return {
        "size": f"{n_pools}x{steps}",
        "int_vars": sum(len(x.mode_names) for x in p.asic) * steps,
        "rows": raw_mip.n_rows,
        "pyomo_build_s": pyomo_build_s,
        "hashpivot_total_s": hashpivot_total_s,
        "hashpivot_method": sol.method,
        "persistent_resolve_s": resolve_s,
        "persistent_gap": resolved.gap,
        "hashpivot_gap": (lp_bound - check) / max(abs(lp_bound), 1.0),
        "raw_build_s": raw_build_mip_s,
        "raw_lp_solve_s": raw_lp_solve_s,
        "raw_mip_solve_s": raw_mip_solve_s,
        "raw_mip_status": raw_status,
        "raw_mip_gap": (lp_bound - raw_mip_obj) / max(abs(lp_bound), 1.0),
        "objective_usd": check,
        "lp_bound_usd": lp_bound,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=[f"{a}x{b}" for a, b in SIZES], help="POOLSxSTEPS, e.g. 100x96")
    parser.add_argument("--mip-time-limit", type=float, default=60.0, help="time limit of the raw branch-and-bound, s")
    args = parser.parse_args()
    print(f"HiGHS {new_highs().version()}, 1 thread, mip_rel_gap 1e-4; raw MIP time limit {args.mip_time_limit:g} s")
    header = (
        f"{'size':>8} {'int vars':>9} {'pyomo build':>12} {'hashpivot':>10} {'method':>16} {'gap':>9} {'re-solve':>9} "
        f"{'raw build':>10} {'raw LP':>8} {'raw MIP':>9} {'MIP status':>18} {'MIP gap':>9} "
        f"{'hp/LP':>7} {'build ratio':>11} {'MIP/hp':>8}"
    )
    print(header)
    for item in args.sizes:
        n, t = (int(x) for x in item.lower().split("x"))
        r = bench(n, t, args.mip_time_limit)
        print(
            f"{r['size']:>8} {r['int_vars']:>9,} {r['pyomo_build_s']:>11.3f}s {r['hashpivot_total_s']:>9.3f}s "
            f"{r['hashpivot_method']:>16} {r['hashpivot_gap']:>9.2e} {r['persistent_resolve_s']:>8.3f}s {r['raw_build_s']:>9.3f}s {r['raw_lp_solve_s']:>7.3f}s "
            f"{r['raw_mip_solve_s']:>8.2f}s {r['raw_mip_status']:>18} {r['raw_mip_gap']:>9.2e} "
            f"{r['hashpivot_total_s'] / r['raw_lp_solve_s']:>7.1f} {r['pyomo_build_s'] / r['raw_build_s']:>11.1f} "
            f"{r['raw_mip_solve_s'] / r['hashpivot_total_s']:>8.1f}",
            flush=True,
        )
    print(
        "re-solve = the next interval on a kept model (PersistentLP, prices +5 %); "
        "hp/LP = hashpivot total (Pyomo build + LP + rounding [+ MIP]) / raw LP solve;"
        " build ratio = Pyomo build / raw highspy build; MIP/hp = raw branch-and-bound / hashpivot total"
    )


if __name__ == "__main__":
    main()
