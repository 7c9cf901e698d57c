"""``milagro-node devnet``: run a local federation of N nodes until Ctrl-C.

Each node is a separate ``milagro-node run`` process with its own data dir under ``--dir``
(kept between runs: a second run reuses the identities, tokens and ports).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from milagro_node.runtime import devnet


def run(root: Path, count: int) -> int:
    print(f"preparing {count} nodes in {root} ...", flush=True)
    nodes = devnet.prepare(root, count)
    processes = []
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        for node in nodes:
            processes.append(devnet.start(node))
        print(f"{'NODE':8} {'API':24} {'P2P':26} ADMIN TOKEN")
        for node in nodes:
            print(f"{node.name:8} {node.api_url:24} {node.p2p_addr:26} {node.admin_token_file}")
        print("logs: <node dir>/node.log; Ctrl-C stops every node", flush=True)
        while not stopping:
            for node, process in zip(nodes, processes):
                if process.poll() is not None:
                    print(f"{node.name} exited with status {process.returncode}; see {node.data_dir}/node.log",
                          flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        devnet.stop(processes)
    print("devnet stopped")
    return 0
