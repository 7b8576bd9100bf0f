"""A simulated VNish machine for the loopback farm (`farm.Farm`), speaking what pyasic 0.79.0 sends to VNish
(docs/fleet-protocols.md, section 4): the HTTP JSON API on port 80 (`/api/v1/unlock` for a token, then
`summary`, `settings`, `autotune/presets`, `mining/stop|resume|…`, `settings` POST for the power preset) and
the BMMiner-style RPC on TCP 4028 (`version`, `stats`, `summary`, `pools`).

The state and faults are the LuxOS machine's (`farm.SimMachine`): a preset is a `Profile` named by its watts,
as VNish names them. With `error`, the RPC answers STATUS E, the web summary reports a failed hash chain and
every command answers HTTP 500; with `refuse_profile`, a preset is acknowledged but not applied (pyasic's own
note: VNish answers the same either way); with `reboot`, a state-changing POST drops its connection.

Identification is deterministic: the web page says `AnthillOS` and the `version` reply names VNish without
the word "Antminer" (real VNish puts "Antminer S19 XP (Vnish …)" there, which pyasic 0.79 reads as stock
Antminer whenever its socket probe beats its web probe; docs/fleet-protocols.md, section 1).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import h11

from hashpivot.feeds.fleet.farm import PORT, Profile, Rebooting, SimMachine

WEB_PORT = 80
VNISH_VERSION = "1.2.6"
RPC_COMMANDS = ("version", "stats", "summary", "pools")
PASSWORD = "admin"  # VNish's default web password, pyasic's `default_vnish_web_password`
# Antminer S19 XP on VNish: autotune presets named by their watts (the LuxOS farm's power targets)
S19XP_PRESETS = (Profile("1900", 1_900.0, 95.0), Profile("2700", 2_700.0, 125.0), Profile("3010", 3_010.0, 140.0))
HOME_PAGE = b"<!doctype html><html><head><title>AnthillOS</title></head><body><div id='app'></div></body></html>"


@dataclass
class VNishMachine(SimMachine):
    """A VNish machine: HTTP on port 80 and RPC on TCP 4028."""

    firmware = "vnish"
    profiles: tuple[Profile, ...] = S19XP_PRESETS
    led_on: bool = False
    password: str = PASSWORD  # what /api/v1/unlock accepts (pyasic sends its `default_vnish_web_password`)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.requests: list[str] = []  # every web request received ("POST /api/v1/mining/stop"), for tests

    @property
    def token(self) -> str:
        """The session token; a reboot makes a new one."""
        return f"t{abs(hash((self.ip, self.reboots))) % 10**12:012d}"

    def endpoints(self) -> list[tuple[int, object]]:
        return [(WEB_PORT, self.handle_http), (PORT, self.handle)]

    # --- RPC on 4028 (BMMiner) ---------------------------------------------------------------------------

    def _status(self, code: int, msg: str, ok: bool = True) -> list[dict]:
        return [{"STATUS": "S" if ok else "E", "When": int(time.time()), "Code": code, "Msg": msg,
                 "Description": "bmminer 1.0.0"}]

    def _cmd_version(self, _args) -> dict:
        return {"STATUS": self._status(22, "BMMiner versions"), "VERSION": [{
            "BMMiner": "1.0.0", "API": "3.1", "Miner": "uart_trans.1.3", "CompileTime": "Thu May 29 19:22:26 UTC 2025",
            "Type": f"{self.model.removeprefix('Antminer ')} (Vnish {VNISH_VERSION})"}], "id": 1}

    def _cmd_stats(self, _args) -> dict:
        per_board = self.hashrate_th * 1000.0 / 3
        chip, pcb = (35, 33) if self.sleeping else (66, 58)
        board = {"Elapsed": 7200, "total_rateideal": self._profile().hashrate_th * 1000.0, "rate_unit": "GH",
                 "fan_num": 4, **{f"fan{i}": 0 if self.sleeping else 5400 for i in (1, 2, 3, 4)}}
        for i in (1, 2, 3):
            board.update({f"chain_rate{i}": f"{per_board:.2f}", f"chain_acn{i}": 110, f"chain_acs{i}": " oooo oooo",
                          f"temp{i}": chip + i, f"temp2_{i}": pcb + i})
        return {"STATUS": self._status(70, "CGMiner stats"), "STATS": [
            {"BMMiner": "1.0.0", "Miner": "uart_trans.1.3", "Type": f"{self.model} (Vnish {VNISH_VERSION})"}, board], "id": 1}

    def _cmd_pools(self, _args) -> dict:
        return {"STATUS": self._status(7, "1 Pool(s)"), "POOLS": [{
            "POOL": 0, "URL": "stratum+tcp://pool.invalid:3333", "User": "site.worker", "Status": "Alive",
            "Stratum Active": True, "Accepted": 10, "Rejected": 0, "Get Failures": 0, "Remote Failures": 0}], "id": 1}

    def reply(self, command: str, parameter: str = "") -> dict:
        """As BMMiner answers: the LuxOS commands (session, curtail, profileset, power, …) are unknown here."""
        if "+" not in command and command not in RPC_COMMANDS and self.fault != "error":
            self.commands.append(command)
            return {"STATUS": self._status(14, "Invalid command", ok=False), "id": 1}
        return super().reply(command, parameter)

    # --- HTTP on port 80 ---------------------------------------------------------------------------------

    def _summary(self) -> dict:
        state = "failure" if self.fault == "error" else "stopped" if self.sleeping else "mining"
        watts = 0 if self.fault == "error" else round(self.watts)
        ghs = 0.0 if self.fault == "error" else self.hashrate_th * 1000.0
        last = int(self.ip.rsplit(".", 1)[1])
        chains = [{"id": i, "hashrate_rt": ghs / 3, "pcb_temp": {"min": 50, "max": 58 + i}, "chip_temp": {"min": 60, "max": 66 + i},
                   "status": {"state": "failure", "description": f"chain {i}: no chips found"} if self.fault == "error" and i == 2
                   else {"state": state, "description": ""}} for i in (1, 2, 3)]
        return {"miner": {"miner_status": {"miner_state": state, "miner_state_time": 7200},
                          "miner_type": f"{self.model} (Vnish {VNISH_VERSION})", "hr_realtime": ghs, "hr_average": ghs,
                          "hr_nominal": self._profile().hashrate_th * 1000.0, "power_usage": watts, "power_consumption": watts,
                          "power_efficiency": round(watts / (ghs / 1000.0), 1) if ghs else 0.0, "chains": chains},
                "system": {"network_status": {"mac": f"02:00:7F:03:{last // 256:02X}:{last % 256:02X}",
                                              "hostname": f"sim-{self.ip.replace('.', '-')}"}}}

    def _settings(self) -> dict:
        return {"miner": {"overclock": {"preset": self.profile, "globals": {"volt": 1300, "freq": 450}},
                          "cooling": {"mode": {"name": "auto", "param": 70}, "fan_min_count": 4, "fan_min_duty": 10},
                          "pools": [{"url": "stratum+tcp://pool.invalid:3333", "user": "site.worker", "pass": "x"}]},
                "misc": {"restart_temp": 95}}

    def _preset(self, p: Profile) -> dict:
        return {"name": p.name, "pretty": f"{p.name} watt ~ {p.hashrate_th:g} TH", "status": "tuned", "modded_psu_required": False}

    def _post_settings(self, body: dict) -> tuple[int, dict]:
        preset = str(((body.get("miner") or {}).get("overclock") or {}).get("preset", self.profile))
        if preset not in {p.name for p in self.profiles}:
            return 400, {"err": f"unknown preset {preset}"}
        self._state_change()
        if self.fault != "refuse_profile":  # refused: acknowledged all the same (pyasic's web/vnish.py says so)
            self.profile = preset
        return 200, {"restart_required": False, "reboot_required": False}

    def _mining(self, sleeping: bool) -> tuple[int, dict]:
        self._state_change()
        self.sleeping = sleeping
        return 200, {}

    def web_reply(self, method: str, target: str, authorization: str, body: bytes) -> tuple[int, bytes]:
        """The firmware's answer to one HTTP request: (status, body); pure apart from the machine's state."""
        path = target.split("?", 1)[0]
        self.requests.append(f"{method} {path}")
        if path == "/" and method == "GET":
            return 200, HOME_PAGE
        if not path.startswith("/api/v1/"):
            return 404, b"Not Found"
        command = path.removeprefix("/api/v1/")
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError:
            return 400, b'{"err":"invalid JSON body"}'
        if command == "unlock" and method == "POST":
            if data.get("pw") != self.password:
                return 401, b'{"err":"wrong password"}'
            return 200, json.dumps({"token": self.token}).encode()
        if command not in ("info", "status", "perf-summary") and authorization.removeprefix("Bearer ") != self.token:
            return 401, b'{"err":"unauthorized"}'
        status, reply = self._api(method, command, data)
        return status, json.dumps(reply).encode()

    def _api(self, method: str, command: str, data: dict) -> tuple[int, object]:
        if method == "GET":
            gets = {"summary": self._summary, "settings": self._settings,
                    "autotune/presets": lambda: [self._preset(p) for p in self.profiles],
                    "perf-summary": lambda: {"current_preset": self._preset(self._profile())},
                    "info": lambda: {"miner": self.model, "fw_name": "Vnish", "fw_version": VNISH_VERSION,
                                     "system": self._summary()["system"]},
                    "status": lambda: {"miner_state": self._summary()["miner"]["miner_status"]["miner_state"],
                                       "find_miner": self.led_on, "restart_required": False, "reboot_required": False}}
            return (200, gets[command]()) if command in gets else (404, {"err": "not found"})
        if self.fault == "error" and command != "find-miner":
            return 500, {"err": "CGMiner err: Cgminer error failed-to-activate-pause-mode"}
        if command == "mining/stop" or command == "mining/pause":
            return self._mining(sleeping=True)
        if command in ("mining/start", "mining/resume"):
            return self._mining(sleeping=False)
        if command == "mining/restart":
            return 200, {}
        if command == "settings":
            return self._post_settings(data)
        if command == "find-miner":
            self.led_on = not self.led_on
            return 200, {"on": self.led_on}
        if command == "system/reboot":
            self.reboot()
            return 200, {}
        return 404, {"err": "not found"}

    async def handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One HTTP/1.1 request per connection (h11 parses it), answered with `Connection: close`."""
        conn = h11.Connection(h11.SERVER)
        request, body = None, b""
        try:
            if self.down:
                return  # rebooting: the connection is dropped
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await asyncio.wait_for(reader.read(65536), timeout=10))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return  # the client closed before a whole request arrived
            if self.fault == "slow":
                await asyncio.sleep(self.slow_s)
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            status, payload = self.web_reply(request.method.decode(), request.target.decode(), headers.get("authorization", ""),
                                             body)
            content_type = "text/html" if payload.startswith(b"<") else "application/json"
            writer.write(conn.send(h11.Response(status_code=status, headers=[
                ("Content-Type", content_type), ("Content-Length", str(len(payload))), ("Connection", "close")])))
            writer.write(conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
        except Rebooting:
            pass  # rebooting mid-command: no answer
        except (h11.RemoteProtocolError, asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            pass  # a malformed request, or the client gave up (a cancelled identification probe)
        finally:
            writer.close()
