"""Soak test of `hashpivot run` on an accelerated schedule against a loopback feed server.

    python -m benchmarks.soak --minutes 30

Starts a local HTTP server with the recorded feed payloads (tests/fixtures), runs the daemon as a subprocess
deciding every second and collecting every 1–5 s, samples its resident memory and open file descriptors every
30 s, then stops it with SIGTERM and prints decisions made, memory and descriptor growth and any errors logged.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_httpserver import HTTPServer

from hashpivot.feeds.store import Store
from tests.feeds_support import loopback_config, serve_all

ROOT = Path(__file__).resolve().parents[1]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=30.0)
    args = parser.parse_args()

    server = HTTPServer(threaded=True)
    server.start()
    serve_all(server)
    work = Path(tempfile.mkdtemp(prefix="hashpivot-soak-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, sets = loopback_config(server.url_for("/"), retries=0)
    sets += [f"daemon.publish_dir='{work / 'out'}'", f"daemon.metrics_port={port}", "daemon.decision_cron.second='*'",
             "daemon.feed_crons.btc.second='*'", "daemon.feed_crons.power_rt.second='*/2'",
             "daemon.feed_crons.network.second='*/5'", "daemon.feed_crons.gpu.second='*/5'", "daemon.keep_published=500"]
    cmd = [sys.executable, "-m", "hashpivot.optimizer.cli", "run", "--db", str(work / "store.sqlite")] + [x for s in sets for x in ("--set", s)]
    log_path = work / "daemon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    samples = []
    t_end = time.monotonic() + args.minutes * 60
    try:
        time.sleep(min(20.0, args.minutes * 60))
        while time.monotonic() < t_end and proc.poll() is None:
            samples.append((time.monotonic(), _rss_kb(proc.pid), _fds(proc.pid)))
            print(f"t={samples[-1][0] - samples[0][0]:7.0f}s rss={samples[-1][1] / 1024:7.1f} MiB fds={samples[-1][2]}", flush=True)
            time.sleep(args.sample_s)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        server.stop()
    with Store(work / "store.sqlite") as store:
        decisions = store.decisions(limit=10**9)
    text = log_path.read_text()
    errors = [line for line in text.splitlines() if "level=ERROR" in line or "Traceback" in line]
    first, last = samples[0], samples[-1]
    print(f"exit code {code}; {len(decisions)} decisions ({decisions['status'].value_counts().to_dict()})")
    print(f"memory {first[1] / 1024:.1f} -> {last[1] / 1024:.1f} MiB (after warm-up), max {max(s[1] for s in samples) / 1024:.1f} MiB")
    print(f"file descriptors {first[2]} -> {last[2]}, max {max(s[2] for s in samples)}")
    print(f"errors logged: {len(errors)}" + ("".join(f"\n  {e}" for e in errors[:10])))
    print(f"work dir {work}")


if __name__ == "__main__":
    main()
