"""Hardware catalogue: nameplate figures of the ASICs and GPUs a site is likely to run, each with its source.

ASIC power-target modes (eco/stock/turbo) follow what aftermarket firmware (Braiins OS, LuxOS) offers:
underclocking cuts power faster than hashrate, overclocking the reverse. The default profiles below are a
stated rule of thumb (eco: 75 % power for 82 % hashrate; turbo: 118 % power for 110 % hashrate), derived from
published Braiins OS autotuning results for S19-class machines; a site should override them with its own
measured profiles in the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashpivot.models.errors import ConfigError

ECO_POWER_FRACTION = 0.75
ECO_HASHRATE_FRACTION = 0.82
TURBO_POWER_FRACTION = 1.18
TURBO_HASHRATE_FRACTION = 1.10


@dataclass(frozen=True)
class AsicModel:
    """One ASIC model at its stock setting."""

    name: str
    hashrate_th: float
    power_w: float
    source: str

    @property
    def efficiency_j_per_th(self) -> float:
        return self.power_w / self.hashrate_th

    def default_modes(self) -> list[tuple[str, float, float]]:
        """(mode name, power_w, hashrate_th) for eco, stock and turbo."""
        return [
            ("eco", self.power_w * ECO_POWER_FRACTION, self.hashrate_th * ECO_HASHRATE_FRACTION),
            ("stock", self.power_w, self.hashrate_th),
            ("turbo", self.power_w * TURBO_POWER_FRACTION, self.hashrate_th * TURBO_HASHRATE_FRACTION),
        ]


@dataclass(frozen=True)
class GpuModel:
    """One GPU model: board power and the typical share of its server's power (CPU, fans, NICs)."""

    name: str
    board_power_w: float
    server_share_w: float
    memory_gb: int
    source: str

    @property
    def full_power_w(self) -> float:
        return self.board_power_w + self.server_share_w


_BITMAIN = "Bitmain product page / spec sheet (nameplate at stock firmware)"
_MICROBT = "MicroBT product spec sheet (nameplate at stock firmware)"

ASIC_MODELS: dict[str, AsicModel] = {
    m.name: m
    for m in [
        AsicModel("Antminer S19j Pro", 100.0, 3050.0, _BITMAIN + "; S19j Pro 100T"),
        AsicModel("Antminer S19 Pro", 110.0, 3250.0, _BITMAIN + "; S19 Pro 110T"),
        AsicModel("Antminer S19k Pro", 120.0, 2760.0, _BITMAIN + "; S19k Pro 120T"),
        AsicModel("Antminer S19 XP", 140.0, 3010.0, _BITMAIN + "; S19 XP 140T"),
        AsicModel("Antminer S21", 200.0, 3500.0, _BITMAIN + "; S21 200T"),
        AsicModel("Whatsminer M30S++", 112.0, 3472.0, _MICROBT + "; M30S++ 112T"),
        AsicModel("Whatsminer M50S", 126.0, 3276.0, _MICROBT + "; M50S 126T"),
    ]
}

GPU_MODELS: dict[str, GpuModel] = {
    m.name: m
    for m in [
        GpuModel("A40", 300.0, 150.0, 48, "NVIDIA A40 datasheet (300 W max board power); server share: DESIGN.md"),
        GpuModel("RTX 4090", 450.0, 100.0, 24, "NVIDIA GeForce RTX 4090 specs (450 W TGP); server share: DESIGN.md"),
        GpuModel("A100 80GB SXM", 400.0, 400.0, 80, "NVIDIA A100 datasheet (400 W SXM TDP); server share: DGX A100 6.5 kW / 8 less boards"),
        GpuModel("H100 80GB SXM", 700.0, 575.0, 80, "NVIDIA H100 datasheet (700 W SXM TDP); server share: DGX H100 10.2 kW / 8 less boards"),
    ]
}


def asic_model(name: str) -> AsicModel:
    """Look up an ASIC by catalogue name; KeyError lists what exists."""
    try:
        return ASIC_MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown ASIC model {name!r}; known: {', '.join(ASIC_MODELS)}") from None


def gpu_model(name: str) -> GpuModel:
    """Look up a GPU by catalogue name; KeyError lists what exists."""
    try:
        return GPU_MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown GPU model {name!r}; known: {', '.join(GPU_MODELS)}") from None
