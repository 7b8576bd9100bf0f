"""The allocation MILP: problem data, the Pyomo model (one function per constraint family, one registry),
the HiGHS translation, the solve strategy, the independent schedule checker, explanations, diagnosis (pure)."""
