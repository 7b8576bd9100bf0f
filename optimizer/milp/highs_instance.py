"""Load a built Pyomo model into a highspy `Highs` instance and read the results back.

Pyomo's appsi interface does this generically and incrementally (it tracks every expression for later
updates), at about 10 µs per nonzero: 1.1 s of the 2.1 s a cold 100-pool x 96-step solve took. The model here
is linear and its rows are flat `LinearExpression`s of (coefficient, variable) terms, so one walk over them
fills numpy arrays that go to HiGHS in one call (~1 µs per nonzero). The Pyomo model stays the definition.

Row bodies and coefficients are read once. Mutable Params may therefore appear only in row and column bounds
(a Param inside a body is refused): after Params change, `refresh_bounds` re-reads every bound, and
`set_objective` the objective, which is how a kept model becomes the next interval's.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from numbers import Number

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC
from pyomo.core.base.var import VarData
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.expr.visitor import identify_mutable_parameters
from pyomo.repn.standard_repn import generate_standard_repn

from hashpivot.models.errors import SolverError

_INF = highspy.kHighsInf
_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
}


_BANNER_LOCK = threading.Lock()
_banner_printed = False


def new_highs() -> highspy.Highs:
    """A silent `Highs`. HiGHS prints its banner to file descriptor 1 when the first instance of a process is
    made, which would corrupt `--format json` on stdout; that first construction writes to /dev/null."""
    global _banner_printed
    with _BANNER_LOCK:
        if _banner_printed:
            highs = highspy.Highs()
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                highs = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _banner_printed = True
    highs.setOptionValue("output_flag", False)
    return highs


@dataclass
class HighsResult:
    status: str  # "optimal", "infeasible", "unbounded", "time_limit" or HiGHS's own status name
    objective: float | None  # of the solution HiGHS returned (incl. the constant); None without one
    bound: float | None  # best bound on the optimum (LP: the objective; MIP: the dual bound)
    col_values: np.ndarray | None

    @property
    def has_solution(self) -> bool:
        return self.col_values is not None


def linear_terms(expr) -> tuple[float, list[tuple[float, VarData]]]:
    """(constant, [(coefficient, variable)]) of a linear Pyomo expression; flat sums take the fast path."""
    if type(expr) is LinearExpression:
        constant = 0.0
        terms = []
        for arg in expr.args:
            kind = type(arg)
            if kind is MonomialTermExpression:
                coef, var = arg.args
                if not isinstance(coef, Number):
                    return _general_terms(expr)
                terms.append((coef, var))
            elif isinstance(arg, VarData):
                terms.append((1.0, arg))
            elif isinstance(arg, Number):
                constant += arg
            else:
                return _general_terms(expr)
        return constant, terms
    if isinstance(expr, VarData):
        return 0.0, [(1.0, expr)]
    return _general_terms(expr)


def _general_terms(expr) -> tuple[float, list[tuple[float, VarData]]]:
    params = list(identify_mutable_parameters(expr))
    if params:
        raise SolverError(
            f"model error: mutable parameter {params[0].name} inside a row body or the objective; put it in a bound"
        )
    repn = generate_standard_repn(expr, compute_values=True, quadratic=False)
    if not repn.is_linear():
        raise SolverError(f"the allocation model must be linear; found a nonlinear expression: {expr}")
    return float(repn.constant), list(zip(repn.linear_coefs, repn.linear_vars))


class HighsInstance:
    """One Pyomo model as columns (every Var) and rows (every active Constraint) of a highspy `Highs`."""

    def __init__(self, model: pyo.ConcreteModel, threads: int = 1, time_limit_s: float | None = None,
                 mip_rel_gap: float | None = None):
        self.model = model
        self.highs = new_highs()
        self.highs.setOptionValue("threads", int(threads))
        self.highs.setOptionValue("random_seed", 0)
        self.time_limit_s = time_limit_s
        if mip_rel_gap is not None:
            self.highs.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        with PauseGC():  # the walk allocates many small objects; see optimizer.model.build_model
            self._add_columns()
            self._add_rows()
            self.set_objective()

    # ------------------------------------------------------------------ translation

    def _add_columns(self) -> None:
        self.vars: list[VarData] = []
        self._col_slices: dict[str, slice] = {}
        for comp in self.model.component_objects(pyo.Var, active=True, descend_into=True):
            start = len(self.vars)
            self.vars.extend(comp.values())
            self._col_slices[comp.name] = slice(start, len(self.vars))
        self.col_of = {id(v): i for i, v in enumerate(self.vars)}
        n = len(self.vars)
        self.col_integer = np.array([v.is_integer() for v in self.vars], dtype=bool)
        self._integer_now = np.zeros(n, dtype=bool)
        self._read_col_bounds()
        self.highs.addVars(n, self.col_lower, self.col_upper)
        if self.col_integer.any():
            cols = np.flatnonzero(self.col_integer).astype(np.int32)
            self._set_integrality(cols, np.ones(len(cols), dtype=bool))

    def _read_col_bounds(self) -> None:
        """Declared column bounds, mutable Params evaluated now."""
        n = len(self.vars)
        lower = np.empty(n)
        upper = np.empty(n)
        for i, v in enumerate(self.vars):
            if v.fixed:
                lower[i] = upper[i] = v.value
                continue
            lb, ub = v.bounds
            lower[i] = -_INF if lb is None else lb
            upper[i] = _INF if ub is None else ub
        self.col_lower, self.col_upper = lower, upper

    def _add_rows(self) -> None:
        col_of = self.col_of
        lower, upper, constants, starts, index, value = [], [], [], [], [], []
        self._row_slices: dict[str, slice] = {}
        self._rows: list = []
        for comp in self.model.component_objects(pyo.Constraint, active=True, descend_into=True):
            first = len(lower)
            for con in comp.values():
                if not con.active:
                    continue
                constant, terms = linear_terms(con.body)
                starts.append(len(index))
                for coef, var in terms:
                    index.append(col_of[id(var)])
                    value.append(coef)
                lb, ub = con.lb, con.ub
                lower.append(-_INF if lb is None else lb - constant)
                upper.append(_INF if ub is None else ub - constant)
                constants.append(constant)
                self._rows.append(con)
            self._row_slices[comp.name] = slice(first, len(lower))
        self._row_constants = np.asarray(constants, dtype=float)
        if lower:
            self.highs.addRows(
                len(lower), np.asarray(lower, float), np.asarray(upper, float), len(index),
                np.asarray(starts, np.int32), np.asarray(index, np.int32), np.asarray(value, float),
            )

    def set_objective(self) -> None:
        """(Re)load the model's single active objective: costs, constant and sense."""
        objectives = list(self.model.component_data_objects(pyo.Objective, active=True))
        if len(objectives) != 1:
            raise SolverError(f"the allocation model needs exactly one objective, found {len(objectives)}")
        obj = objectives[0]
        constant, terms = linear_terms(obj.expr)
        cost = np.zeros(len(self.vars))
        for coef, var in terms:
            cost[self.col_of[id(var)]] += coef
        self.highs.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        self.highs.changeObjectiveOffset(float(constant))
        sense = highspy.ObjSense.kMaximize if obj.sense == pyo.maximize else highspy.ObjSense.kMinimize
        self.highs.changeObjectiveSense(sense)

    # ------------------------------------------------------------------ lookups

    def cols(self, var) -> np.ndarray:
        """Column indices of an indexed Var component, in the order of its keys."""
        s = self._col_slices[var.name]
        return np.arange(s.start, s.stop, dtype=np.int32)

    def rows(self, con) -> np.ndarray:
        s = self._row_slices.get(con.name, slice(0, 0))
        return np.arange(s.start, s.stop, dtype=np.int32)

    # ------------------------------------------------------------------ changes between solves

    def set_col_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray, integer: bool | None = None) -> None:
        """Change bounds (and optionally integrality) of columns in HiGHS only; `reset_cols` restores them."""
        cols = np.asarray(cols, dtype=np.int32)
        self.highs.changeColsBounds(len(cols), cols, np.asarray(lower, float), np.asarray(upper, float))
        if integer is not None:
            self._set_integrality(cols, np.full(len(cols), integer))

    def reset_cols(self) -> None:
        """Every column's bounds (re-read, mutable Params evaluated now) and integrality as the Pyomo model
        declares them."""
        self._read_col_bounds()
        n = len(self.vars)
        cols = np.arange(n, dtype=np.int32)
        self.highs.changeColsBounds(n, cols, self.col_lower, self.col_upper)
        self._set_integrality(cols, self.col_integer)

    def _set_integrality(self, cols: np.ndarray, integer: np.ndarray) -> None:
        self._integer_now[cols] = integer
        kinds = np.where(integer, int(highspy.HighsVarType.kInteger.value), int(highspy.HighsVarType.kContinuous.value))
        self.highs.changeColsIntegrality(len(cols), cols, kinds.astype(np.uint8))

    def refresh_bounds(self) -> None:
        """Re-read every row's and column's bounds (after mutable Params changed); integrality as declared."""
        self.reset_cols()
        n = len(self._rows)
        if not n:
            return
        lower = np.empty(n)
        upper = np.empty(n)
        for i, (row, constant) in enumerate(zip(self._rows, self._row_constants)):
            lower[i] = -_INF if row.lb is None else row.lb - constant
            upper[i] = _INF if row.ub is None else row.ub - constant
        self.highs.changeRowsBounds(n, np.arange(n, dtype=np.int32), lower, upper)

    def clear_solver(self) -> None:
        """Forget the last basis and solution, so the next solve does not depend on the previous one."""
        self.highs.clearSolver()

    def set_start(self, col_values: np.ndarray) -> None:
        """A complete point as HiGHS's MIP start."""
        solution = highspy.HighsSolution()
        solution.col_value = np.asarray(col_values, dtype=float)
        solution.value_valid = True
        solution.dual_valid = False
        self.highs.setSolution(solution)

    def model_values(self) -> np.ndarray:
        """The Pyomo variables' current values as a column vector (unset values count as 0)."""
        return np.array([v.value or 0.0 for v in self.vars], dtype=float)

    # ------------------------------------------------------------------ solving

    def solve(self, time_limit_s: float | None = None) -> HighsResult:
        """Run HiGHS within `time_limit_s` (default: the instance's). HiGHS counts the limit two ways (measured on
        highspy 1.7.1, 1.11 and 1.16): the simplex against the instance's whole life (`getRunTime()`, which
        never resets), the MIP solver against this run alone. So an LP gets the time used so far plus the budget
        (a kept daemon model would otherwise run out of time after ~3,000 intervals), a MIP the budget itself
        (the sum let a kept model's MIP solves grow past the limit: 17 s on a 3 s limit hours into a backtest)."""
        budget = self.time_limit_s if time_limit_s is None else time_limit_s
        if budget is not None:
            spent = 0.0 if self._integer_now.any() else self.highs.getRunTime()
            self.highs.setOptionValue("time_limit", spent + max(float(budget), 0.0))
        self.highs.run()
        model_status = self.highs.getModelStatus()
        status = _STATUS.get(model_status, self.highs.modelStatusToString(model_status))
        info = self.highs.getInfo()
        solution = self.highs.getSolution()
        has_solution = status == "optimal" or (status == "time_limit" and solution.value_valid)
        if not has_solution:
            return HighsResult(status, None, None, None)
        objective = float(info.objective_function_value)
        bound = float(info.mip_dual_bound) if self._integer_now.any() else objective
        return HighsResult(status, objective, bound, np.asarray(solution.col_value, dtype=float))

    def row_duals(self, con) -> np.ndarray:
        """Duals of a constraint component's rows from the last LP solve, in the order of its keys."""
        return np.asarray(self.highs.getSolution().row_dual, dtype=float)[self.rows(con)]
