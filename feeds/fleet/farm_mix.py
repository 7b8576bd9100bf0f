"""A mixed simulated farm: the registry of simulated firmwares and which machine runs which, with which fault
(for `hashpivot fleet simulate`, tests and benchmarks)."""

from __future__ import annotations

import random

from hashpivot.feeds.fleet.farm import FAULTS, SimMachine, farm_ips
from hashpivot.feeds.fleet.farm_vnish import VNishMachine

FIRMWARES: dict[str, type[SimMachine]] = {"luxos": SimMachine, "vnish": VNishMachine}
LABELS = {"luxos": "LuxOS", "vnish": "VNish"}


def mixed_farm(n: int, first_ip: str, vnish_fraction: float = 0.0, faulty: float = 0.0, seed: int = 0,
               **machine) -> list[SimMachine]:
    """`n` machines from `first_ip` on: every machine is VNish with probability `vnish_fraction` (exactly
    round(n × fraction) of them, spread by `seed`), the rest LuxOS; a share `faulty` get a random fault."""
    rng = random.Random(seed)
    vnish = set(rng.sample(range(n), round(n * vnish_fraction)))
    return [FIRMWARES["vnish" if i in vnish else "luxos"](ip, fault=rng.choice(FAULTS) if rng.random() < faulty else None,
                                                           seed=seed, **machine)
            for i, ip in enumerate(farm_ips(n, first_ip))]
