"""A simulated miner farm on loopback addresses, speaking each firmware's API as pyasic drives it (see
docs/fleet-protocols.md): for tests, drills and benchmarks, and for operators to rehearse against before
pointing hashpivot at a real site (`hashpivot fleet simulate`). This module holds the farm and the LuxOS
machine (TCP 4028); `farm_vnish` holds the VNish one (HTTP on port 80 and TCP 4028).

Each machine listens on its own address (127.x.y.z; pyasic's ports are fixed), answers one JSON command per
connection and closes it, as the firmware does. State: mining or sleeping (`curtail`), the power-target
profile (`profileset`), watts and TH/s per profile with noise, board temperatures. Faults: `unreachable`
(nothing listens), `slow` (answers after `slow_s`), `error` (every command answers STATUS E), `reboot` (a
state-changing command makes it drop the connection unanswered and every new one for `reboot_s`; it comes
back in its old state or, with `reboot_to="default"`, mining at its stock profile), `refuse_profile`
(profileset answers E).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

PORT = 4028
LUX_VERSION = "2024.5.1.155057-4b1b3b9"


@dataclass(frozen=True)
class Profile:
    name: str
    watts: float
    hashrate_th: float


# Antminer S19 XP on LuxOS: stock 140 TH/s at 3,010 W, and two lower power targets
S19XP_PROFILES = (Profile("290MHz", 1_900.0, 95.0), Profile("415MHz", 2_700.0, 125.0), Profile("default", 3_010.0, 140.0))


FAULTS = ("unreachable", "slow", "error", "reboot", "refuse_profile")
IDLE_W = 95.0  # wall power of a sleeping machine: control board and fans


class Rebooting(Exception):
    """Raised by a machine that reboots mid-command: its connection is dropped without an answer."""


@dataclass
class SimMachine:
    """A LuxOS machine (TCP 4028)."""

    firmware: ClassVar[str] = "luxos"
    ip: str
    model: str = "Antminer S19 XP"
    profiles: tuple[Profile, ...] = S19XP_PROFILES
    profile: str = ""  # "": the stock profile (the last of `profiles`)
    sleeping: bool = False
    fault: str | None = None  # None or one of FAULTS
    slow_s: float = 5.0
    reboot_s: float = 3.0  # how long a reboot drops connections
    reboot_to: str = "old"  # "old" | "default": the state it comes back in
    noise: float = 0.01  # relative noise on watts and TH/s
    seed: int = 0
    sid: str = ""
    commands: list[str] = field(default_factory=list)  # every command received, for tests
    reboots: int = 0  # how many times it rebooted
    down_until: float = 0.0  # time.monotonic() until which it is rebooting

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault {self.fault!r}: expected one of {', '.join(FAULTS)}")
        self.profile = self.profile or self.profiles[-1].name
        self.rng = random.Random(f"{self.ip}-{self.seed}")

    @property
    def down(self) -> bool:
        return time.monotonic() < self.down_until

    def _state_change(self) -> None:
        """Called before a command changes the machine's state: with the `reboot` fault it reboots instead."""
        if self.fault != "reboot":
            return
        self.reboot()
        raise Rebooting(self.ip)

    def reboot(self) -> None:
        """Drop every connection for `reboot_s`, then come back in the old or the default state; the
        session is lost."""
        self.reboots += 1
        self.down_until = time.monotonic() + self.reboot_s
        self.sid = ""
        if self.reboot_to == "default":
            self.sleeping, self.profile = False, self.profiles[-1].name

    def endpoints(self) -> list[tuple[int, object]]:
        """(port, connection handler) pairs the machine listens on."""
        return [(PORT, self.handle)]

    def _profile(self) -> Profile:
        return next(p for p in self.profiles if p.name == self.profile)

    @property
    def watts(self) -> float:
        """Wall power now: idle draw while sleeping or rebooting."""
        return IDLE_W if self.sleeping or self.down else self._profile().watts * (1 + self.rng.uniform(-self.noise, self.noise))

    @property
    def hashrate_th(self) -> float:
        return 0.0 if self.sleeping or self.down else self._profile().hashrate_th * (1 + self.rng.uniform(-self.noise, self.noise))

    def _status(self, code: int, msg: str, ok: bool = True) -> list[dict]:
        return [{"STATUS": "S" if ok else "E", "When": int(time.time()), "Code": code, "Msg": msg,
                 "Description": f"LUXminer {LUX_VERSION}"}]

    def reply(self, command: str, parameter: str = "") -> dict:
        """The firmware's answer to one command (pure apart from the machine's own state)."""
        self.commands.append(command if not parameter else f"{command} {parameter}")
        if self.fault == "error":
            return {"STATUS": self._status(45, "Internal error: hashboard communication failed", ok=False), "id": 1}
        if "+" in command:
            return {**{c: [self.reply(c)] for c in command.split("+")}, "id": 1}
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return {"STATUS": self._status(14, "Invalid command", ok=False), "id": 1}
        return handler(parameter.split(",") if parameter else [])

    def _cmd_version(self, _args) -> dict:
        return {"STATUS": self._status(22, "LUXminer versions"), "VERSION": [{
            "API": "3.7", "CompileTime": "Wed May 01 00:00:00 UTC 2024", "LUXminer": LUX_VERSION, "Miner": LUX_VERSION,
            "Type": self.model}], "id": 1}

    def _cmd_devdetails(self, _args) -> dict:
        # pyasic reads its version and devdetails answers for firmware names in a fixed order; a driver
        # named "bitmicro" (Whatsminer's) would make it a Whatsminer (docs/fleet-protocols.md, section 1)
        return {"STATUS": self._status(69, "Device Details"), "DEVDETAILS": [
            {"DEVDETAILS": i, "Name": "BC", "ID": i, "Driver": "luxminer", "Model": self.model} for i in range(3)], "id": 1}

    def _cmd_summary(self, _args) -> dict:
        ghs = self.hashrate_th * 1000.0
        return {"STATUS": self._status(11, "Summary"), "SUMMARY": [{"Elapsed": 3600, "GHS 5s": ghs, "GHS av": ghs}], "id": 1}

    def _cmd_stats(self, _args) -> dict:
        per_board = self.hashrate_th * 1000.0 / 3
        chip, pcb = ("0-0-0-0", "0-0-0-0") if self.sleeping else ("60-62-70-72", "48-50-58-60")
        board = {"Elapsed": 3600, "total_rateideal": self._profile().hashrate_th * 1000.0, "rate_unit": "GH"}
        for i in (1, 2, 3):
            board.update({f"chain_rate{i}": f"{per_board:.2f}", f"chain_acn{i}": 110, f"temp_chip{i}": chip, f"temp_pcb{i}": pcb})
        return {"STATUS": self._status(70, "LUXminer stats"), "STATS": [{"LUXminer": LUX_VERSION, "Type": self.model}, board],
                "id": 1}

    def _cmd_power(self, _args) -> dict:
        return {"STATUS": self._status(335, "Power"), "POWER": [{"PSU": True, "Watts": round(self.watts, 1)}], "id": 1}

    def _cmd_config(self, _args) -> dict:
        last = int(self.ip.rsplit(".", 1)[1])
        return {"STATUS": self._status(33, "LUXminer config"), "CONFIG": [{
            "MACAddr": f"02:00:7f:00:{last // 256:02x}:{last % 256:02x}", "RedLed": "off", "Profile": self.profile,
            "Hostname": f"sim-{self.ip.replace('.', '-')}", "IsAtmEnabled": True}], "id": 1}

    def _cmd_profiles(self, _args) -> dict:
        return {"STATUS": self._status(331, "Profiles"), "PROFILES": [
            {"Profile Name": p.name, "Watts": int(round(p.watts)), "Hashrate": p.hashrate_th, "IsTuned": False, "Frequency": 0,
             "Voltage": 0, "Step": "0"} for p in self.profiles], "id": 1}

    def _cmd_fans(self, _args) -> dict:
        rpm = 0 if self.sleeping else 5400
        return {"STATUS": self._status(202, "4 Fan(s)"), "FANS": [{"FAN": i, "ID": i, "RPM": rpm, "Speed": 60} for i in range(4)],
                "FANCTRL": [{"MinFans": 4}], "id": 1}

    def _cmd_tempctrl(self, _args) -> dict:
        return {"STATUS": self._status(200, "Temp control"), "TEMPCTRL": [{"Mode": "Auto", "Target": 75, "Hot": 85,
                                                                             "Dangerous": 95}], "id": 1}

    def _cmd_pools(self, _args) -> dict:
        return {"STATUS": self._status(7, "1 Pool(s)"), "POOLS": [{
            "POOL": 0, "URL": "stratum+tcp://pool.invalid:3333", "User": "site.worker", "Status": "Alive",
            "Stratum Active": True, "Accepted": 10, "Rejected": 0, "Get Failures": 0, "Remote Failures": 0, "GROUP": 0}], "id": 1}

    def _cmd_groups(self, _args) -> dict:
        return {"STATUS": self._status(8, "1 Group(s)"), "GROUPS": [{"GROUP": 0, "Name": "Default", "Quota": 1}], "id": 1}

    def _cmd_atm(self, _args) -> dict:
        return {"STATUS": self._status(339, "ATM configuration values"), "ATM": [{
            "Enabled": True, "MaxProfile": self.profiles[-1].name, "MinProfile": self.profiles[0].name}], "id": 1}

    def _cmd_session(self, _args) -> dict:
        return {"STATUS": self._status(36, "Session"), "SESSION": [{"SessionID": self.sid}], "id": 1}

    def _cmd_logon(self, _args) -> dict:
        if self.sid:
            return {"STATUS": self._status(402, "Another session is active", ok=False), "id": 1}
        self.sid = f"s{abs(hash(self.ip)) % 10**6:06d}"
        return {"STATUS": self._status(10, "Session created"), "SESSION": [{"SessionID": self.sid}], "id": 1}

    def _privileged(self, args: list[str]) -> dict | None:
        if not self.sid or not args or args[0] != self.sid:
            return {"STATUS": self._status(401, "Invalid session id", ok=False), "id": 1}
        return None

    def _cmd_curtail(self, args) -> dict:
        denied = self._privileged(args)
        if denied or len(args) < 2 or args[1] not in ("sleep", "wakeup"):
            return denied or {"STATUS": self._status(351, "curtail: expected sleep or wakeup", ok=False), "id": 1}
        self._state_change()
        self.sleeping = args[1] == "sleep"
        return {"STATUS": self._status(350, f"Curtail {args[1]}"), "id": 1}

    def _cmd_profileset(self, args) -> dict:
        denied = self._privileged(args)
        if denied:
            return denied
        if self.fault == "refuse_profile" or len(args) < 2 or args[1] not in {p.name for p in self.profiles}:
            return {"STATUS": self._status(333, "Profile not applied", ok=False), "id": 1}
        self._state_change()
        self.profile = args[1]
        return {"STATUS": self._status(332, "Profile set"), "PROFILE": [{"Profile": self.profile}], "id": 1}

    def _cmd_atmset(self, args) -> dict:
        return self._privileged(args) or {"STATUS": self._status(340, "ATM configuration updated"), "id": 1}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One command per connection: read a whole JSON object, answer, close (pyasic reads until EOF)."""
        buffer = b""
        try:
            if self.down:
                return  # rebooting: the connection is dropped
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=10)
                if not chunk:
                    return
                buffer += chunk
                try:
                    request = json.loads(buffer)
                    break
                except json.JSONDecodeError:
                    continue
            if self.fault == "slow":
                await asyncio.sleep(self.slow_s)
            writer.write(json.dumps(self.reply(str(request.get("command", "")), str(request.get("parameter", "")))).encode()
                         + b"\x00")
            await writer.drain()
        except Rebooting:
            pass  # rebooting mid-command: no answer
        except (asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            pass  # the client gave up (pyasic cancels the probe that lost its race): nothing to answer
        finally:
            writer.close()


def farm_ips(n: int, first: str = "127.0.1.1") -> list[str]:
    """`n` loopback addresses from `first` on (127.0.1.1, 127.0.1.2, … 127.0.1.254, 127.0.2.1, …)."""
    a, b, c, d = map(int, first.split("."))
    out = []
    while len(out) < n:
        if 1 <= d <= 254:
            out.append(f"{a}.{b}.{c}.{d}")
        d += 1
        if d > 254:
            c, d = c + 1, 1
    return out


class Farm:
    """Machines listening on loopback, started and stopped together (in one asyncio loop)."""

    def __init__(self, machines: list[SimMachine]):
        self.machines = {m.ip: m for m in machines}
        self.servers: list[asyncio.base_events.Server] = []
        self.handlers: set[asyncio.Task] = set()

    def _serve(self, handler):
        async def handle(reader, writer):
            task = asyncio.current_task()
            self.handlers.add(task)
            try:
                await handler(reader, writer)
            finally:
                self.handlers.discard(task)
        return handle

    async def start(self) -> Farm:
        """Listen on every machine's ports (an OSError names the address and port that failed)."""
        for m in self.machines.values():
            if m.fault != "unreachable":
                for port, handler in m.endpoints():
                    try:
                        self.servers.append(await asyncio.start_server(self._serve(handler), m.ip, port))
                    except OSError as exc:
                        reason = os.strerror(exc.errno) if exc.errno else str(exc)
                        raise OSError(exc.errno, f"{m.ip} port {port} ({reason})") from None
        return self

    async def stop(self) -> None:
        """Stop listening and end the connections still open (a slow machine's sleeping answers)."""
        for server in self.servers:
            server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        for server in self.servers:
            await server.wait_closed()
        self.servers = []

    def site_power_kw(self) -> float:
        """What the site meter reads: every machine that is powered (an unreachable one is off)."""
        return sum(m.watts for m in self.machines.values() if m.fault != "unreachable") / 1000.0


def write_inventory(machines: list[SimMachine], path: Path, pool: str, hall: str) -> Path:
    """The farm as an inventory CSV (`ip,pool,hall,rack,firmware`) for `[fleet] inventory`."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ip", "pool", "hall", "rack", "firmware"])
        for i, m in enumerate(machines):
            writer.writerow([m.ip, pool, hall, f"r{i // 40 + 1:02d}", m.firmware])
    return path
