"""Serving the console with uvicorn: the token from config, file or environment; the refusal to bind beyond
loopback without one; the socket bound up front (so a port in use is one clear error and port 0 reports the
port it got); blocking (`hashpivot serve`) or in a thread beside the daemon (`hashpivot run`)."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from hashpivot.models.config import ConsoleConfig, SiteConfig
from hashpivot.models.errors import ConfigError
from hashpivot.optimizer.console.app import Console

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(console: ConsoleConfig, environ=os.environ) -> str | None:
    """console.token, else the first line of console.token_file, else $console.token_env; None when unset."""
    if console.token is not None:
        return console.token
    if console.token_file is not None:
        path = Path(console.token_file).expanduser()
        try:
            mode = path.stat().st_mode & 0o777
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"console.token_file {path}: cannot read it ({exc.strerror})") from None
        if mode & 0o077:
            raise ConfigError(f"console.token_file {path}: readable by others (mode {mode:04o}); chmod 600 {path}")
        if len(token) < 16:
            raise ConfigError(f"console.token_file {path}: the token must be at least 16 characters")
        return token
    token = environ.get(console.token_env, "").strip()
    if token and len(token) < 16:
        raise ConfigError(f"${console.token_env}: the console token must be at least 16 characters")
    return token or None


def check_bind(host: str, token: str | None, allow_actions: bool, token_env: str) -> None:
    """ConfigError (one line) for a bind beyond loopback without a token, or actions without a token."""
    how = f"set console.token_file, or the environment variable {token_env}"
    if token is None and not is_loopback(host):
        raise ConfigError(f"console: refusing to serve on {host} (beyond this machine) without a token: {how}, "
                          "or bind console.host = \"127.0.0.1\"")
    if token is None and allow_actions:
        raise ConfigError(f"console.allow_actions = true needs a token (actions are POSTs behind it): {how}")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"console: cannot listen on {host}:{port} ({exc.strerror}); choose another --port / "
                          "console.port (0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class Served:
    server: uvicorn.Server
    sock: socket.socket
    url: str
    thread: threading.Thread | None = None

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout_s)


def prepare(cfg: SiteConfig, db: Path, host: str | None = None, port: int | None = None) -> Served:
    """Check the token and bind; the server is ready to run (nothing is served yet)."""
    host = host or cfg.console.host
    port = cfg.console.port if port is None else port
    token = resolve_token(cfg.console)
    check_bind(host, token, cfg.console.allow_actions, cfg.console.token_env)
    sock = bind(host, port)
    console = Console(cfg, db, token)
    config = uvicorn.Config(console.app, log_level="warning", access_log=False, server_header=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if sock.family == socket.AF_INET6 else bound[0]
    url = f"http://{shown}:{bound[1]}/"
    log.info("console listening on %s store=%s token=%s actions=%s", url, db, "set" if token else "none", console.actions)
    if not is_loopback(host):
        log.warning("console is served on %s, beyond this machine: put it behind TLS (a reverse proxy) so the token "
                    "is not sent in clear", host)
    return Served(uvicorn.Server(config), sock, url)


def serve(served: Served) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers, in the main thread)."""
    served.server.run(sockets=[served.sock])


def serve_in_thread(served: Served) -> Served:
    """Serve from a daemon thread (uvicorn leaves signals to the main thread); `served.stop()` ends it."""
    served.thread = threading.Thread(target=served.server.run, kwargs={"sockets": [served.sock]}, name="console",
                                     daemon=True)
    served.thread.start()
    return served
