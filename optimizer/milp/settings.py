"""How a solve runs (the site config's `[solver]` table) and loading a built model into HiGHS with them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyomo.environ as pyo

from hashpivot.models.config import SiteConfig
from hashpivot.optimizer.milp.highs_instance import HighsInstance

Strategy = Literal["auto", "mip"]


@dataclass
class SolveSettings:
    mip_rel_gap: float = 1e-4
    time_limit_s: float = 30.0
    threads: int = 1
    strategy: Strategy = "auto"

    @classmethod
    def from_config(cls, cfg: SiteConfig, strategy: Strategy = "auto") -> SolveSettings:
        """The site config's `[solver]` table."""
        return cls(cfg.solver.mip_rel_gap, cfg.solver.time_limit_s, cfg.solver.threads, strategy)


def load_highs(model: pyo.ConcreteModel, settings: SolveSettings) -> HighsInstance:
    return HighsInstance(model, threads=settings.threads, time_limit_s=settings.time_limit_s,
                         mip_rel_gap=settings.mip_rel_gap)
