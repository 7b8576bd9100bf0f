"""A loopback Vast.ai host API for tests and rehearsal: a real HTTP server (127.0.0.1, a free port) answering
the three calls hashpivot makes (`show machines`, `list machine` = create_asks, `unlist machine`) in the
format the official client sends and reads (docs/fleet-protocols.md), with state per machine (listed,
asking price, min_chunk, end_date) and injectable faults: HTTP 5xx, answers slower than the client's
timeout, a wrong key (401), and an account that accepts a listing but does not apply it (read-back fails).

    python -m hashpivot.feeds.fleet.vast_sim --machines 4 --gpus 8 --key-file vast.key   # rehearsal
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hashpivot.feeds.fleet.secrets import read_secret


@dataclass
class SimHost:
    """One hosted machine."""

    id: int
    num_gpus: int = 8
    gpu_name: str = "H100 SXM"
    listed: bool = False
    price_gpu: float | None = None
    min_chunk: int | None = None
    end_date: float | None = None
    rentals_running: int = 0

    def row(self) -> dict:
        return {"id": self.id, "num_gpus": self.num_gpus, "gpu_name": self.gpu_name, "hostname": f"sim-{self.id}",
                "listed": self.listed, "listed_gpu_cost": self.price_gpu if self.listed else None,
                "min_chunk": self.min_chunk, "end_date": self.end_date, "current_rentals_running": self.rentals_running,
                "reliability2": 0.99, "verification": "verified"}


@dataclass
class Faults:
    """What goes wrong, consumed request by request (lists pop from the front)."""

    statuses: list[int] = field(default_factory=list)  # answer the next requests with these HTTP statuses
    slow: int = 0  # the next N requests answer only after `slow_s`
    slow_s: float = 3.0
    only: str | None = None  # statuses and slow hit only requests of this method (e.g. "PUT")
    ignore_lists: set[int] = field(default_factory=set)  # machine ids whose listing is accepted but not applied


class VastSim:
    """The server and its state; `requests` records every request (method, path, query, body, key_ok)."""

    def __init__(self, machines: list[SimHost], api_key: str, host: str = "127.0.0.1", port: int = 0):
        self.machines = {m.id: m for m in machines}
        self._key = api_key
        self.faults = Faults()
        self.requests: list[tuple[str, str, dict, dict | None, bool]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "VastSim":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "VastSim":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def changes(self) -> list[tuple[str, str]]:
        """(method, path) of every request that could change state."""
        return [(m, p) for m, p, *_ in self.requests if m in ("PUT", "DELETE", "POST")]

    def listed(self) -> dict[int, float]:
        return {m.id: m.price_gpu for m in self.machines.values() if m.listed}

    def key_ok(self, headers, query: dict) -> bool | str:
        """True for the account's key, else the key given (which the 401 answer echoes)."""
        auth = headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else (query.get("api_key") or [""])[0]
        return True if hmac.compare_digest(given.encode(), self._key.encode()) else given

    def handle(self, method: str, path: str, query: dict, body: dict | None, key_ok: bool | str) -> tuple[int, dict]:
        with self._lock:
            self.requests.append((method, path, query, body, key_ok is True))
            hit = self.faults.only in (None, method)
            status = self.faults.statuses.pop(0) if hit and self.faults.statuses else None
            slow = hit and self.faults.slow > 0
            self.faults.slow -= 1 if slow else 0
        if slow:
            time.sleep(self.faults.slow_s)
        if status is not None:
            return status, {"success": False, "error": "server_error", "msg": "simulated failure"}
        if key_ok is not True:  # echoes the key it was given, as careless error pages do: the client must scrub it
            return 401, {"success": False, "error": "invalid_user_key", "msg": f"Invalid user key {key_ok}"}
        with self._lock:
            return self._route(method, path.rstrip("/"), query, body)

    def _route(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, dict]:
        parts = path.split("/")  # '', 'api', 'v0', 'machines', ...
        if parts[:4] != ["", "api", "v0", "machines"]:
            return 404, {"success": False, "error": "not_found", "msg": f"no route {path}"}
        if method == "GET" and len(parts) == 4:
            return 200, {"machines": [m.row() for m in self.machines.values()]}
        if method == "PUT" and parts[4:] == ["create_asks"]:
            return self._create_asks(body)
        if method == "DELETE" and len(parts) == 6 and parts[5] == "asks":
            m = self.machines.get(int(parts[4])) if parts[4].isdigit() else None
            if m is None:
                return 404, {"success": False, "error": "not_found", "msg": f"machine {parts[4]} is not yours"}
            m.listed, m.price_gpu = False, None
            return 200, {"success": True}
        return 405, {"success": False, "error": "method_not_allowed", "msg": f"{method} {path}"}

    def _create_asks(self, body: dict | None) -> tuple[int, dict]:
        if not isinstance(body, dict):
            return 400, {"success": False, "error": "invalid_args", "msg": "expected a JSON object"}
        m = self.machines.get(body.get("machine")) if isinstance(body.get("machine"), int) else None
        if m is None:
            return 200, {"success": False, "error": "not_found", "msg": f"machine {body.get('machine')!r} is not yours"}
        price, chunk, end = body.get("price_gpu"), body.get("min_chunk"), body.get("end_date")
        if not isinstance(price, (int, float)) or price <= 0:
            return 200, {"success": False, "error": "invalid_args", "msg": "price_gpu must be a positive number"}
        if chunk is not None and (not isinstance(chunk, int) or not 1 <= chunk <= m.num_gpus):
            return 200, {"success": False, "error": "invalid_args", "msg": f"min_chunk must be 1..{m.num_gpus}"}
        if end is not None and (not isinstance(end, (int, float)) or end <= time.time()):
            return 200, {"success": False, "error": "invalid_args", "msg": "end_date must be a future unix time"}
        if m.id not in self.faults.ignore_lists:
            m.listed, m.price_gpu, m.min_chunk, m.end_date = True, float(price), chunk, end
        return 200, {"success": True, "extended": 0}


def _handler(sim: VastSim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            query = parse_qs(parts.query)
            status, answer = sim.handle(self.command, parts.path, query, body, sim.key_ok(self.headers, query))
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout) before the answer
                pass

        do_GET = do_PUT = do_DELETE = do_POST = _serve

        def log_message(self, *args) -> None:  # the request log is `sim.requests`, not stderr
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Run a simulated account until Ctrl-C (rehearsal: point a vastai actuator's api_url at it)."""
    ap = argparse.ArgumentParser(prog="python -m hashpivot.feeds.fleet.vast_sim", description=main.__doc__)
    ap.add_argument("--machines", type=int, default=4, help="how many machines (ids 1001, 1002, ...)")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per machine")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    ap.add_argument("--key-env", default=None, help="the API key it accepts, from this environment variable")
    ap.add_argument("--key-file", default=None, help="... or from this file (mode 0600)")
    args = ap.parse_args(argv)
    key = read_secret(args.key_env, args.key_file, "vast_sim API key")
    if key is None:
        ap.error("give --key-env or --key-file (the key the simulated account accepts)")
    sim = VastSim([SimHost(1001 + i, args.gpus) for i in range(args.machines)], key, port=args.port).start()
    sys.stderr.write(f"simulated Vast.ai account: {args.machines} machines x {args.gpus} GPUs at {sim.url} "
                     f"(machine_ids = {list(sim.machines)}); Ctrl-C stops\n")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
