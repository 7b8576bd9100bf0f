"""The fleet inventory: which machine (IP) belongs to which ASIC pool, hall and rack (`[fleet] inventory`),
and the addresses of `[[fleet.ranges]]`, where any machine that answers belongs to the range's pool."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from hashpivot.feeds.tables import read_table
from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import ConfigError, DataError


@dataclass(frozen=True)
class Machine:
    ip: str
    pool: str
    hall: str = ""
    rack: str = ""
    firmware: str = ""
    discovered: bool = False  # from fleet.ranges: a machine only once it has answered a scan


def fleet_machines(cfg: SiteConfig, inventory: Path | None = None) -> list[Machine]:
    """The inventory file's machines (`inventory`, default fleet.inventory), then every host address of
    fleet.ranges the file does not list, with the range's pool."""
    path = inventory if inventory is not None else (Path(cfg.fleet.inventory).expanduser() if cfg.fleet.inventory else None)
    machines = read_inventory(path, cfg) if path is not None else []
    listed = {m.ip for m in machines}
    for r in cfg.fleet.ranges:
        net = ipaddress.ip_network(r.cidr)
        for address in (net.hosts() if net.num_addresses > 2 else net):
            if str(address) not in listed:
                listed.add(str(address))
                machines.append(Machine(str(address), r.pool, r.hall, discovered=True))
    return machines


def in_fleet(telemetry, cfg: SiteConfig):
    """The telemetry rows of the machines the fleet has now (fleet.inventory and fleet.ranges): an address
    scanned once and since removed from the inventory is no longer counted or planned on. Unfiltered when no
    fleet is configured or the inventory cannot be read (the scan itself then says why)."""
    if not cfg.fleet.configured or telemetry.empty:
        return telemetry
    try:
        ips = {m.ip for m in fleet_machines(cfg)}
    except (ConfigError, DataError):
        return telemetry
    return telemetry[telemetry["ip"].isin(ips)]


def read_inventory(path: Path, cfg: SiteConfig) -> list[Machine]:
    """The inventory CSV (`ip,pool[,hall,rack,firmware]`); ConfigError naming the line of a bad IP, a pool
    the site config does not have, or an IP listed twice."""
    df = read_table(path, ["ip", "pool"], complete=False)  # written by hand
    pools = {p.name for p in cfg.asic_pools}
    halls = {h.name for h in cfg.site.halls}
    machines, seen = [], set()
    for line, row in enumerate(df.to_dict("records"), start=2):
        ip, pool = str(row["ip"]).strip(), str(row["pool"]).strip()
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise ConfigError(f"{path}: line {line}, column ip: {ip!r} is not an IP address") from None
        if address.version != 4:  # pyasic builds host:port addresses: an IPv6 one fails inside it, unreported
            raise ConfigError(f"{path}: line {line}, column ip: {ip} is IPv6; miners are reached by IPv4 address")
        if pool not in pools:
            raise ConfigError(f"{path}: line {line}, column pool: {pool!r} is not an ASIC pool of the site; "
                              f"pools: {', '.join(sorted(pools))}")
        hall = str(row.get("hall", "") or "").strip()
        if hall and hall not in halls:
            raise ConfigError(f"{path}: line {line}, column hall: {hall!r} is not a hall of the site; halls: "
                              f"{', '.join(sorted(halls))}")
        if ip in seen:
            raise ConfigError(f"{path}: line {line}, column ip: {ip} is listed twice")
        seen.add(ip)
        machines.append(Machine(ip, pool, *(str(row.get(k, "") or "").strip() for k in ("hall", "rack", "firmware"))))
    return machines
