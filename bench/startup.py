"""Startup cost of a node: time from `milagro-node run` to ready, and idle RSS.

Baseline measured in the same run: a bare Python process that imports trio and
trio-websocket and listens on a websocket (the floor any trio node pays).
Median of N runs each (default 5). Prints a table; writes bench/results/startup.json.

    .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BARE = """
import trio, trio_websocket
async def main():
    async with trio.open_nursery() as n:
        await n.start(trio_websocket.serve_websocket, lambda r: None, "127.0.0.1", 0, None)
        print("ready", flush=True)
        await trio.sleep_forever()
trio.run(main)
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def measure(argv: list[str], env: dict[str, str], idle_s: float) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = proc.stdout.readline()
        ready = time.perf_counter() - started
        if "ready" not in line:
            raise RuntimeError(f"{argv[0]} did not become ready: {line!r}")
        time.sleep(idle_s)
        return ready, rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=1.0, help="seconds idle before reading RSS")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("MILAGRO_")}
    env["MILAGRO_API_LISTEN"] = "127.0.0.1:0"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "node"
        subprocess.run([BIN / "milagro-node", "init", "--data-dir", data], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        cases = {
            "bare trio + websocket": [sys.executable, "-c", BARE],
            "milagro-node run": [str(BIN / "milagro-node"), "run", "--data-dir", str(data)],
        }
        samples = {name: [measure(argv, env, args.idle) for _ in range(args.runs)] for name, argv in cases.items()}

    results = {
        name: {
            "ready_ms_median": round(statistics.median(s[0] for s in runs) * 1000, 1),
            "idle_rss_mib_median": round(statistics.median(s[1] for s in runs) / 1024, 1),
            "runs": args.runs,
        }
        for name, runs in samples.items()
    }
    node, bare = results["milagro-node run"], results["bare trio + websocket"]
    print(f"{'case':24} {'ready ms (median)':>18} {'idle RSS MiB':>13}")
    for name, r in results.items():
        print(f"{name:24} {r['ready_ms_median']:>18} {r['idle_rss_mib_median']:>13}")
    print(f"node / bare: ready {node['ready_ms_median'] / bare['ready_ms_median']:.2f}x, "
          f"RSS {node['idle_rss_mib_median'] / bare['idle_rss_mib_median']:.2f}x")
    out = ROOT / "bench" / "results" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "startup", "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
