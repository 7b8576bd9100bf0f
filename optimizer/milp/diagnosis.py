"""Why a model has no feasible allocation: a deletion filter over the constraint families names a minimal set
that conflicts, with each family's meaning and the numbers behind the conflict."""

from __future__ import annotations

from hashpivot.models.errors import InfeasibleError
from hashpivot.optimizer.milp.families import BY_NAME, FAMILIES, build_model
from hashpivot.optimizer.milp.problem import Problem
from hashpivot.optimizer.milp.settings import SolveSettings, load_highs


def _feasible(problem: Problem, exclude: frozenset[str], relax: bool, settings: SolveSettings) -> bool:
    return load_highs(build_model(problem, relax=relax, exclude=exclude), settings).solve().status != "infeasible"


def conflicting_groups(problem: Problem, settings: SolveSettings | None = None, relax: bool = True) -> list[str]:
    """A minimal set of constraint families that cannot hold together (deletion filter over families).

    Variable bounds (units available) always stay; a result of only `contract_floors`, say, means the floor
    conflicts with the bounds alone.
    """
    settings = settings or SolveSettings()
    excluded: set[str] = set()
    for family in FAMILIES:
        trial = frozenset(excluded | {family.name})
        if not _feasible(problem, trial, relax, settings):
            excluded.add(family.name)  # still infeasible without it: not needed to explain the conflict
    return [f.name for f in FAMILIES if f.name not in excluded]


def diagnose_infeasibility(problem: Problem, settings: SolveSettings | None = None, relax: bool = True) -> InfeasibleError:
    """One line (an operator's `error:` line, a daemon log line): the figures that conflict first, where a group
    can give them, then every conflicting group with what it means."""
    groups = conflicting_groups(problem, settings, relax)
    meanings = "; ".join(f"{g} ({BY_NAME[g].meaning})" for g in groups)
    details = [d for g in groups if BY_NAME[g].conflict for d in BY_NAME[g].conflict(problem, groups)]
    lead = "; ".join(details) + "; " if details else ""
    return InfeasibleError(f"no feasible allocation: {lead}these constraint groups conflict: {meanings}", groups)
