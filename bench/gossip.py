"""Seal-to-open latency and throughput of envelopes over a devnet, against bare py-libp2p gossipsub.

Cases: 3 / 5 / 10 nodes (`--nodes`) x payload 1 KiB / 64 KiB. Every node and every bare
peer is its own process on 127.0.0.1; for each node count both federations run side by side
(idle between their turns) and the measurements alternate between them, round by round
(`--rounds`), so outside load on a shared machine hits both alike.

"Envelope": a `milagro_node.runtime.devnet` of N nodes (one peers.toml, full mesh by the
routers' own dialing; API rate limits lifted as in tests/devnetkit.py). Node-1's admin API
gets ``envelope.send`` to all N-1 others (suite mx1); the latency of an envelope at a
recipient is that recipient's inbox ``received_ms`` (taken when the router has validated,
opened and stored the envelope) minus the bench's wall clock just before the
``envelope.send`` call, on one machine clock: API, sealing, HSM signing, store, gossip,
validation (PKI, signature, replay) and opening are all in it. One sample per
(envelope, recipient), so "every recipient" is N-1 samples per envelope.

"Bare": N bench/gossip_peer.py processes, each py-libp2p gossipsub through the node's own
adapter (`open_p2p_host`, same `GossipSettings`: Noise, yamux, heartbeat 1 s, degree
6/4/12, scoring, back-pressured publish), peer i dialing peers 1..i-1 (full mesh). Peer 1
publishes messages of the payload size with its send time inside; the latency at each of
the N-1 others is its receive time (same clock, same ms truncation) minus that. No
validator, no envelope, no API, no store.

Each round, first throughput: a burst of ``--burst`` messages from node-1 to node-2
(envelopes over ``--connections`` API connections in parallel; bare: back to back), rate =
burst / (last arrival at node-2 - first send); the median over rounds. Envelopes of a burst
not at node-2 within DEADLINE_S are counted (``BURST LOST`` in the table, ``burst_lost`` in
the JSON) and the rate counts only those that arrived; the run goes on. Then latency: the
case's ``--count`` messages split over the rounds, sent on a fixed schedule (+-20% jitter)
every ``--load`` / (the slower side's median burst rate so far) seconds, at least
``--interval``, the same spacing for both sides: a steady low rate, so queueing does not
dominate (with 10 processes per side on a small machine, CPU does anyway: see the rates);
p50 / p99 over all samples. "send ms" is the p50 duration of the ``envelope.send`` call
itself (the sender's share of the latency).

Memory: VmRSS of every node / bare peer process at the end of the case, median over
processes (and the peak VmHWM in the JSON). Before measuring, each side waits until every
process is connected to every other and a warm-up message has reached every recipient.

"Crypto floor": bench/crypto_floor.py in this process after each round's latency phase
(`FLOOR_SAMPLES` envelopes to the case's N-1 recipients, each sealed, signed in a SoftHSM2
token, verified and opened with nothing else around it); "floor" = (bare p50 + crypto
p50) / bare p50, the least ratio a node doing this crypto could reach over bare gossip.

Target (issue 5): envelope p50 latency <= 1.2x bare. Ratios are envelope / bare.

    .venv/bin/python bench/gossip.py [--nodes 3,5,10] [--rounds 3] [--quick]

Prints a table, the machine's steal share of CPU time per case, and at the start and the
end how much slower work runs after 5 ms idle and what a wake-up across vCPUs costs
(bench/machine.py `responsiveness`: a latency message arrives at idle nodes); writes
bench/results/gossip.json. Every process started is stopped (and the temporary directories
removed) on exit, Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from milagro_node.api_client import NodeApi, connect  # noqa: E402
from milagro_node.runtime import devnet  # noqa: E402
from crypto_floor import CryptoFloor  # noqa: E402  (bench/crypto_floor.py)
from machine import CpuShares, describe_responsiveness, gc_paused, responsiveness  # noqa: E402

SIZES = {"1 KiB": 1 << 10, "64 KiB": 64 << 10}
TARGET = 1.2
# As tests/devnetkit.TEST_SETTINGS (bursts over one connection), and room for 64 KiB payloads.
SETTINGS = {("api", "requests_per_second"): 100000.0, ("api", "burst"): 100000,
            ("api", "max_message_bytes"): 4 << 20}
PEER = ROOT / "bench" / "gossip_peer.py"
KIND = "bench.gossip"
DEADLINE_S = 120.0
FLOOR_SAMPLES = 50  # crypto-floor samples per round


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MILAGRO_")}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def schedule(count: int, interval: float, seed: int) -> list[float]:
    """Send offsets (s) on a fixed grid with +-20% jitter, the same for both sides."""
    rng = random.Random(seed)
    return [max(0.0, i * interval + rng.uniform(-0.2, 0.2) * interval) for i in range(count)]


# --- bare gossipsub peers ------------------------------------------------------------------------


class BarePeers:
    """N bench/gossip_peer.py processes in a full mesh."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            self.processes.append(subprocess.Popen(
                [sys.executable, str(PEER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, env=clean_env(), start_new_session=True))
        self.info = [self._read(i, "ready") for i in range(count)]
        for i in range(1, count):
            self.ask(i, "dialed", cmd="dial", peers=[[p["peer_id"], p["addr"]] for p in self.info[:i]])
        deadline = time.monotonic() + 60
        while True:
            status = [self.ask(i, "status", cmd="status") for i in range(count)]
            if all(s["connected"] == count - 1 and s["topic_peers"] == count - 1 and s["mesh"] >= min(count - 1, 4)
                   for s in status):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"bare peers did not form a mesh: {status}")
            time.sleep(0.2)
        self._tag = 0
        self.latency(1, 1 << 10, 0.0)  # warm-up, discarded

    def _read(self, i: int, event: str) -> dict[str, Any]:
        line = self.processes[i].stdout.readline()
        if not line:
            raise RuntimeError(f"bare peer {i + 1} exited (status {self.processes[i].poll()})")
        reply = json.loads(line)
        if reply["event"] != event:
            raise RuntimeError(f"bare peer {i + 1}: expected {event}, got {reply}")
        return reply

    def ask(self, i: int, event: str, **cmd: Any) -> dict[str, Any]:
        self.processes[i].stdin.write(json.dumps(cmd) + "\n")
        self.processes[i].stdin.flush()
        return self._read(i, event)

    def _publish(self, count: int, size: int, interval: float, receivers: range) -> tuple[dict, list[list]]:
        self._tag += 1
        sent = self.ask(0, "published", cmd="publish", tag=self._tag, count=count, size=size, interval=interval)
        deadline = time.monotonic() + DEADLINE_S
        got: dict[int, list] = {i: [] for i in receivers}
        while True:
            for i in receivers:
                got[i] += self.ask(i, "report", cmd="report", tag=self._tag)["recv"]
            if all(len(rows) >= count for rows in got.values()) or time.monotonic() > deadline:
                return sent, got
            time.sleep(0.1)

    def latency(self, count: int, size: int, interval: float) -> list[float]:
        _, got = self._publish(count, size, interval, range(1, len(self.processes)))
        return [recv - sent for rows in got.values() for _, sent, recv in rows]

    def throughput(self, count: int, size: int) -> float:
        sent, got = self._publish(count, size, 0.0, range(1, 2))
        rows = got[1]
        if len(rows) < count:
            raise RuntimeError(f"bare burst: {len(rows)}/{count} arrived")
        return count / (max(r[2] for r in rows) - sent["first_ms"]) * 1000

    def memory(self) -> list[tuple[int, int]]:
        return [memory_kib(p.pid) for p in self.processes]

    def close(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.processes:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# --- envelope devnet ---------------------------------------------------------------------------


class EnvelopeNet:
    """A devnet of N node processes; node-1 sends."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self._batch = 0

    def start(self, root: Path, count: int) -> None:
        self.nodes = devnet.prepare(root, count, settings=SETTINGS)
        for node in self.nodes:
            self.processes.append(devnet.start(node, env=clean_env()))
        self.tokens = [n.admin_token_file.read_text().strip() for n in self.nodes]

    def api(self, i: int):
        return connect(self.nodes[i].api_url, token=self.tokens[i])

    async def ready(self) -> None:
        names = {n.name for n in self.nodes}
        with trio.fail_after(DEADLINE_S):
            for i, node in enumerate(self.nodes):
                async with self.api(i) as api:
                    while True:
                        rows = await api.call("peers.list")
                        up = {r["name"] for r in rows if r["connected"]}
                        if names - {node.name} <= up:
                            break
                        await trio.sleep(0.25)
            await self._settled()
            while True:  # the sender must resolve every recipient before the warm-up goes out
                try:
                    await self.latency(1, 1 << 10, 0.0)
                    return
                except Exception as exc:  # ApiCallError while identities are still spreading
                    if "unknown" not in str(exc) and "identity" not in str(exc):
                        raise
                    await trio.sleep(0.5)

    async def _settled(self) -> None:
        """Until the nodes' own start-up traffic is over: every node's M-Pin role has its
        server secret (the D-TAs' share envelopes, n x n of them) and node-1's outbox is
        empty. At 10 nodes this takes 30-45 s after they connect; measuring during it
        measured the start-up, not the federation."""
        for i in range(len(self.nodes)):
            async with self.api(i) as api:
                while not (await api.call("mfa.info"))["ready"]:
                    await trio.sleep(0.5)
        async with self.api(0) as api:
            with trio.move_on_after(60):
                while (await api.call("envelope.counters"))["pending"]:
                    await trio.sleep(0.5)

    async def _received(self, recipients: list[int]) -> list[int]:
        counts = []
        for i in recipients:
            async with self.api(i) as api:
                counts.append((await api.call("envelope.counters"))["received"])
        return counts

    async def _wait_rows(self, i: int, after: int, cids: set[str]) -> dict[str, int]:
        """received_ms of ``cids`` at node i (those that arrived within the deadline).

        The inbox is read on from ``after`` once its count says enough arrived, and again
        (from where the last read ended) until every one of ``cids`` is found: the count also
        grows with the nodes' own envelopes (M-Pin shares), so it alone would stop the wait
        before the last of ``cids``."""
        found: dict[str, int] = {}
        n = after
        deadline = trio.current_time() + DEADLINE_S
        async with self.api(i) as api:
            while trio.current_time() < deadline:
                if (await api.call("envelope.counters"))["received"] >= after + len(cids):
                    n = await self._read_rows(api, n, cids, found)
                    if len(found) == len(cids):
                        return found
                await trio.sleep(0.1)
            await self._read_rows(api, n, cids, found)  # what did arrive, for the report
        return found

    @staticmethod
    async def _read_rows(api: NodeApi, n: int, cids: set[str], found: dict[str, int]) -> int:
        """Add the rows of ``cids`` from inbox row ``n`` on to ``found``; the next row to read."""
        page = 500  # the fields alone (payload=False): nothing opened, small replies
        while True:
            rows = await api.call("envelope.inbox", after=n, count=page, payload=False)
            for row in rows:
                if row["cid"] in cids:
                    found[row["cid"]] = row["received_ms"]
            if rows:
                n = rows[-1]["n"] + 1
            if len(rows) < page:
                return n

    async def _send(self, api: NodeApi, to: list[str], payload: str) -> tuple[str, float, float]:
        t0 = time.time() * 1000
        sent = await api.call("envelope.send", to=to, kind=KIND, payload=payload)
        return sent["cid"], t0, time.time() * 1000

    async def latency(self, count: int, size: int, interval: float) -> tuple[list[float], list[float], int]:
        """(latency samples ms, send-call durations ms, lost) for node-1 -> all others."""
        self._batch += 1
        recipients = list(range(1, len(self.nodes)))
        to = [self.nodes[i].identity for i in recipients]
        payload = base64.b64encode(os.urandom(size)).decode()
        before = await self._received(recipients)
        sends = []
        async with self.api(0) as api:
            start = trio.current_time()
            for offset in schedule(count, interval, self._batch):
                await trio.sleep_until(start + offset)
                sends.append(await self._send(api, to, payload))
        t0 = {cid: t for cid, t, _ in sends}
        samples, lost = [], 0
        for i, after in zip(recipients, before):
            got = await self._wait_rows(i, after, set(t0))
            lost += len(t0) - len(got)
            samples += [ms - t0[cid] for cid, ms in got.items()]
        return samples, [t1 - t for _, t, t1 in sends], lost

    async def throughput(self, count: int, size: int, connections: int) -> tuple[float, float, int]:
        """(envelopes/s arrived at node-2, envelopes/s accepted by node-1's API, how many of
        the burst had not arrived by the deadline: the rate counts only those that did)."""
        to = [self.nodes[1].identity]
        payload = base64.b64encode(os.urandom(size)).decode()
        (before,) = await self._received([1])
        cids: list[str] = []

        async def sender(n: int) -> None:
            async with self.api(0) as api:
                for _ in range(n):
                    cids.append((await self._send(api, to, payload))[0])

        start = time.time() * 1000
        async with trio.open_nursery() as nursery:
            for c in range(connections):
                nursery.start_soon(sender, count // connections + (c < count % connections))
        sent_s = (time.time() * 1000 - start) / 1000
        got = await self._wait_rows(1, before, set(cids))
        rate = len(got) / (max(got.values()) - start) * 1000 if got else 0.0
        return rate, count / sent_s, count - len(got)

    async def envelope_bytes(self, size: int) -> int:
        async with self.api(0) as api:
            sent = await api.call("envelope.send", to=[n.identity for n in self.nodes[1:]], kind=KIND,
                                  payload=base64.b64encode(os.urandom(size)).decode())
        return sent["bytes"]

    def memory(self) -> list[tuple[int, int]]:
        return [memory_kib(p.pid) for p in self.processes]

    def close(self) -> None:
        devnet.stop(self.processes)


# --- the run -------------------------------------------------------------------------------------


def measure_case(bare: BarePeers, net: EnvelopeNet, floor: CryptoFloor, size: int,
                 args: argparse.Namespace) -> dict[str, Any]:
    """One case's rounds, both sides alternating: rates, latencies and per-round p50 ratios;
    each round ends with the crypto floor's samples."""
    per_round = max(1, args.count // args.rounds)
    m: dict[str, Any] = {key: [] for key in ("env_lat", "bare_lat", "send_ms", "env_rate", "bare_rate",
                                             "accept_rate", "round_ratio", "intervals", "floor")}
    m["lost"] = m["burst_lost"] = 0
    for r in range(args.rounds):
        # Alternate which side goes first, so drift in outside load hits both alike.
        sides = ("bare", "env") if r % 2 == 0 else ("env", "bare")
        for side in sides:
            if side == "bare":
                m["bare_rate"].append(bare.throughput(args.burst, size))
            else:
                rate, accepted, missing = trio.run(net.throughput, args.burst, size, args.connections)
                m["env_rate"].append(rate)
                m["accept_rate"].append(accepted)
                m["burst_lost"] += missing
        # Latency at a steady low rate: 1/--load of the slower side's burst capacity.
        slower = min(statistics.median(m["env_rate"]), statistics.median(m["bare_rate"]))
        interval = max(args.interval, args.load / slower) if slower > 0 else args.interval
        m["intervals"].append(interval)
        for side in sides:
            if side == "bare":
                b = bare.latency(per_round, size, interval)
                m["bare_lat"] += b
            else:
                e, sends, missing = trio.run(net.latency, per_round, size, interval)
                m["env_lat"] += e
                m["send_ms"] += sends
                m["lost"] += missing
        m["round_ratio"].append(percentile(e, 0.5) / percentile(b, 0.5))
        m["floor"] += floor.samples_ms(size, len(net.nodes) - 1, FLOOR_SAMPLES)
    return m


def run_nodes(n: int, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    started = time.monotonic()
    bare, net = BarePeers(), EnvelopeNet()
    (tmp / f"floor-{n}").mkdir()
    floor = CryptoFloor(tmp / f"floor-{n}", n - 1)
    try:
        net.start(tmp / f"devnet-{n}", n)
        bare.start(n)
        trio.run(net.ready)
        print(f"  [{n} nodes up and meshed in {time.monotonic() - started:.0f}s]", flush=True)
        rows = []
        for label, size in SIZES.items():
            with gc_paused(), CpuShares() as shares:
                m = measure_case(bare, net, floor, size, args)
            env_lat, bare_lat, send_ms = m["env_lat"], m["bare_lat"], m["send_ms"]
            env_rate, bare_rate, accept_rate = m["env_rate"], m["bare_rate"], m["accept_rate"]
            lost, round_ratio, intervals = m["lost"], m["round_ratio"], m["intervals"]
            env_mem, bare_mem = net.memory(), bare.memory()
            row = {
                "nodes": n, "payload": label, "payload_bytes": size,
                "envelope_bytes": trio.run(net.envelope_bytes, size),
                "latency_interval_s": [round(x, 3) for x in intervals],
                "samples": len(env_lat), "bare_samples": len(bare_lat),
                "lost": lost, "burst_lost": m["burst_lost"],
                "p50_ms": round(percentile(env_lat, 0.5), 2), "p99_ms": round(percentile(env_lat, 0.99), 2),
                "bare_p50_ms": round(percentile(bare_lat, 0.5), 2),
                "bare_p99_ms": round(percentile(bare_lat, 0.99), 2),
                "crypto_floor_p50_ms": round(percentile(m["floor"], 0.5), 3),
                "send_call_p50_ms": round(percentile(send_ms, 0.5), 2),
                "send_call_p99_ms": round(percentile(send_ms, 0.99), 2),
                "round_p50_ratios": [round(x, 2) for x in round_ratio],
                "envelopes_per_s": round(statistics.median(env_rate), 1),
                "api_accepted_per_s": round(statistics.median(accept_rate), 1),
                "bare_msgs_per_s": round(statistics.median(bare_rate), 1),
                "rss_mib": round(statistics.median(m[0] for m in env_mem) / 1024, 1),
                "peak_rss_mib": round(max(m[1] for m in env_mem) / 1024, 1),
                "bare_rss_mib": round(statistics.median(m[0] for m in bare_mem) / 1024, 1),
                "bare_peak_rss_mib": round(max(m[1] for m in bare_mem) / 1024, 1),
                "machine": shares.result,
            }
            row["p50_ratio"] = round(row["p50_ms"] / row["bare_p50_ms"], 2)
            # The best ratio a node could reach over this gossip with this crypto.
            row["floor_ratio"] = round((row["bare_p50_ms"] + row["crypto_floor_p50_ms"]) / row["bare_p50_ms"], 2)
            row["p99_ratio"] = round(row["p99_ms"] / row["bare_p99_ms"], 2)
            row["rate_ratio"] = round(row["envelopes_per_s"] / row["bare_msgs_per_s"], 2)
            rows.append(row)
            print_row(row)
        return rows
    finally:
        bare.close()
        net.close()
        floor.close()


HEADER = (f"{'nodes':>5} {'payload':>7} | {'p50 ms':>7} {'bare':>6} {'ratio':>6} | {'p99 ms':>7} {'bare':>6} "
          f"{'ratio':>6} | {'crypto':>6} {'floor':>6} | {'send':>5} | {'env/s':>6} {'bare/s':>6} {'ratio':>6} | "
          f"{'RSS MiB':>7} {'bare':>5}")


def print_row(r: dict[str, Any]) -> None:
    print(f"{r['nodes']:>5} {r['payload']:>7} | {r['p50_ms']:>7.1f} {r['bare_p50_ms']:>6.1f} {r['p50_ratio']:>5.2f}x | "
          f"{r['p99_ms']:>7.1f} {r['bare_p99_ms']:>6.1f} {r['p99_ratio']:>5.2f}x | "
          f"{r['crypto_floor_p50_ms']:>6.2f} {r['floor_ratio']:>5.2f}x | {r['send_call_p50_ms']:>5.1f} | "
          f"{r['envelopes_per_s']:>6.0f} {r['bare_msgs_per_s']:>6.0f} {r['rate_ratio']:>5.2f}x | "
          f"{r['rss_mib']:>7.1f} {r['bare_rss_mib']:>5.1f}" + (f"  LOST {r['lost']}" if r["lost"] else "")
          + (f"  BURST LOST {r['burst_lost']}" if r["burst_lost"] else ""),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="3,5,10", help="comma-separated node counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=200, help="latency messages per case (all rounds)")
    parser.add_argument("--burst", type=int, default=100, help="throughput burst per round")
    parser.add_argument("--interval", type=float, default=0.1, help="least seconds between latency messages")
    parser.add_argument("--load", type=float, default=3.0,
                        help="latency messages are spaced at least this many times the slower side's "
                             "burst time per message")
    parser.add_argument("--connections", type=int, default=4, help="API connections for the envelope burst")
    parser.add_argument("--quick", action="store_true", help="30 messages, bursts of 30, one round")
    args = parser.parse_args()
    if args.quick:
        args.count, args.burst, args.rounds = 30, 30, 1
    counts = [int(x) for x in args.nodes.split(",")]

    def terminated(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminated)

    facts = {"start": responsiveness()}
    print(HEADER)
    print("-" * len(HEADER), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="milagro-bench-gossip-") as tmp:
        for n in counts:
            results += run_nodes(n, args, Path(tmp))
    facts["end"] = responsiveness()
    met = [r for r in results if r["p50_ratio"] <= TARGET]
    print(f"ratio = envelope / bare gossipsub; latency = seal (API call) to opened at each of the N-1 "
          f"recipients, p50/p99 over {args.count} messages x recipients; crypto = the crypto floor's p50 ms "
          f"(seal, HSM sign, verify, open in the bench process, nothing else: bench/crypto_floor.py), "
          f"floor = (bare + crypto) / bare, the least ratio this crypto allows; send = envelope.send call p50 ms; "
          f"env/s and bare/s: burst of {args.burst} node-1 -> node-2, median of {args.rounds} rounds; "
          f"RSS median per process. Target p50 <= {TARGET}x: {len(met)}/{len(results)} cases meet it.")
    steal = [r["machine"]["steal"] for r in results if r["machine"]]
    if steal:
        print(f"machine: steal {min(steal):.0%}..{max(steal):.0%} of CPU time per case (bench/machine.py; "
              f"per case in the JSON)")
    print(f"machine at the start: {describe_responsiveness(facts['start'])}; at the end: "
          f"{describe_responsiveness(facts['end'])} (bench/machine.py; latency messages are "
          f"{args.interval * 1000:g} ms or more apart, so each pays the first)")
    out = ROOT / "bench" / "results" / "gossip.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "gossip", "target_ratio": TARGET, "rounds": args.rounds,
                               "count": args.count, "burst": args.burst, "interval_s": args.interval,
                               "connections": args.connections, "responsiveness": facts,
                               "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
