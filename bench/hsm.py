"""HSM throughput through the hsm-worker actor against raw python-pkcs11, and loop stalls.

Both sides use one SoftHSM2 token made for the run (in a temp data dir) and the
same keys. The baseline is python-pkcs11 itself, called in a plain loop the way
the adapter calls it (AES-256-GCM under the KEK with 32-byte secrets and
associated data; Ed25519 signs). The actor side is `--callers` concurrent trio
tasks asking the hsm-worker. Rounds alternate the two sides; each figure is the
median of `--rounds` rounds, each ratio the median of the per-round ratios.

Stall: a trio task that sleeps 1 ms in a loop records how late it wakes while
a burst of 1,000 requests (wrap, unwrap and sign, issued by the caller pool)
goes through the actor; the worst lateness is the loop's worst stall.

    .venv/bin/python bench/hsm.py [--rounds 7] [--callers 64]

Lone: one Ed25519 signature at a time with the machine idle in between (an envelope's
or an assertion's case at low load), raw and through the actor in turn; p50 of each.

Prints a table and how much slower work runs after 5 ms idle on this machine (bench/machine.py
`responsiveness`); writes bench/results/hsm.json. Targets (issue 3): actor >= 0.8x
raw for each operation; worst stall <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pkcs11  # the baseline: the dependency itself, not our adapter
import trio

from actors.hsm_worker import HsmTarget, HsmWorker
from actors.hsm_worker.provision import SOFTHSM_MODULE, create_softhsm_token, softhsm_env
from actors.messages import HsmGenerateKey, HsmSign, HsmUnwrap, HsmWrap
from milagro_node.runtime.node import settle_heap, tune_interpreter
from milagro_node.runtime.supervisor import ActorSpec, Supervisor
from milagro_node.secret_memory import SecretBytes
from machine import describe_responsiveness, responsiveness  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
AAD = b"bench-key-id|bench-purpose"
OPS = {"wrap": 8000, "unwrap": 8000, "sign": 1000}
LONE_GAP_S = 0.005  # between lone signatures: the machine is idle in between, as at low load


def raw_session(target: HsmTarget) -> Any:
    lib = pkcs11.lib(str(target.module))
    token = lib.get_token(token_label=target.token_label)
    try:
        return token.open(user_pin=target.pin.reveal().decode(), rw=True)
    except pkcs11.UserAlreadyLoggedIn:  # the worker's session is: login is per token
        return token.open(rw=True)


def raw_rates(target: HsmTarget, wrapped: bytes) -> dict[str, float]:
    secret = os.urandom(32)
    with raw_session(target) as session:
        kek = session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label="bench-kek")
        signer = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="bench-ed25519")

        def wrap() -> None:
            params = pkcs11.GCMParams(os.urandom(12), AAD, 128)
            kek.encrypt(secret, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params)

        def unwrap() -> None:
            params = pkcs11.GCMParams(wrapped[:12], AAD, 128)
            kek.decrypt(wrapped[12:], mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params)

        def sign() -> None:
            signer.sign(b"m" * 32, mechanism=pkcs11.Mechanism.EDDSA)

        rates = {}
        for name, op in (("wrap", wrap), ("unwrap", unwrap), ("sign", sign)):
            started = time.perf_counter()
            for _ in range(OPS[name]):
                op()
            rates[name] = OPS[name] / (time.perf_counter() - started)
    return rates


def requests(secret: SecretBytes, wrapped: bytes) -> dict[str, object]:
    return {
        "wrap": HsmWrap("bench-kek", secret, AAD),
        "unwrap": HsmUnwrap("bench-kek", wrapped, AAD),
        "sign": HsmSign("bench-ed25519", b"m" * 32),
    }


async def actor_rates(sup: Supervisor, reqs: dict[str, object], callers: int) -> dict[str, float]:
    rates = {}
    for name, request in reqs.items():
        per_caller = OPS[name] // callers

        async def caller() -> None:
            for _ in range(per_caller):
                await sup.ask("hsm-worker", request)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(callers):
                nursery.start_soon(caller)
        rates[name] = per_caller * callers / (time.perf_counter() - started)
    return rates


async def lone_signs(sup: Supervisor, target: HsmTarget, count: int = 100) -> tuple[list[float], list[float]]:
    """Latency (s) of one signature at a time, `LONE_GAP_S` apart, as an envelope's or an
    assertion's at low load: (raw python-pkcs11, through the actor), taking turns."""
    raw, actor = [], []
    request = HsmSign("bench-ed25519", b"m" * 32)
    with raw_session(target) as session:
        signer = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="bench-ed25519")
        for _ in range(count):
            started = time.perf_counter()
            signer.sign(b"m" * 32, mechanism=pkcs11.Mechanism.EDDSA)
            raw.append(time.perf_counter() - started)
            await trio.sleep(LONE_GAP_S)
            started = time.perf_counter()
            await sup.ask("hsm-worker", request)
            actor.append(time.perf_counter() - started)
            await trio.sleep(LONE_GAP_S)
    return raw, actor


async def worst_stall(seconds: float | None = None, *, during: Any = None) -> tuple[float, float]:
    """(worst lateness of a 1 ms ticker, seconds it ran) while ``during()`` runs, or
    for ``seconds`` with nothing else running: the machine's own noise, the baseline."""
    worst = 0.0
    done = trio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await trio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.sleep(0.01)
        started = time.perf_counter()
        await (during() if during is not None else trio.sleep(seconds))
        elapsed = time.perf_counter() - started
        done.set()
    return worst, elapsed


def burst_of(sup: Supervisor, reqs: dict[str, object], callers: int, burst: int = 1000) -> Any:
    """`burst` requests (wrap, unwrap, sign in turn) through the actor.

    Issued by the caller pool (as a busy node's tasks would), not by spawning 1,000
    tasks in one go: that spawn loop alone stalls trio ~10 ms and would measure the
    benchmark, not the HSM.
    """
    kinds = list(reqs.values())
    issued = iter(range(burst))

    async def caller() -> None:
        for i in issued:
            await sup.ask("hsm-worker", kinds[i % len(kinds)], timeout=60)

    async def run() -> None:
        async with trio.open_nursery() as burst_nursery:
            for _ in range(callers):
                burst_nursery.start_soon(caller)

    return run


async def run_rounds(target: HsmTarget, secret: SecretBytes, wrapped: bytes, rounds: int, callers: int) -> tuple:
    """Each round: the actor's rates, then raw python-pkcs11's (the loop idle meanwhile),
    then a stall burst, so a slow spell of a shared machine hits both sides alike."""
    sup = Supervisor([ActorSpec("hsm-worker", lambda: HsmWorker(lambda: target))], mailbox_size=256)
    actor, raw, stalls, idle, lone_raw, lone_actor = [], [], [], [], [], []
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        settle_heap()  # as the node does once it is ready
        reqs = requests(secret, wrapped)
        for _ in range(rounds):
            actor.append(await actor_rates(sup, reqs, callers))
            raw.append(raw_rates(target, wrapped))  # the worker's thread is idle: one caller at a time
            stall, seconds = await worst_stall(during=burst_of(sup, reqs, callers))
            stalls.append(stall)
            idle.append((await worst_stall(seconds))[0])
            raw_s, actor_s = await lone_signs(sup, target)
            lone_raw += raw_s
            lone_actor += actor_s
        nursery.cancel_scope.cancel()
    return actor, raw, stalls, idle, lone_raw, lone_actor


def main() -> None:
    tune_interpreter()  # as the node does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--callers", type=int, default=64)
    args = parser.parse_args()

    facts = responsiveness()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        pin = SecretBytes.copy_from(os.urandom(16).hex().encode())
        create_softhsm_token(data, "bench", None, user_pin=pin)
        target = HsmTarget(SOFTHSM_MODULE, "bench", None, pin, softhsm_env(data))

        async def setup() -> bytes:
            sup = Supervisor([ActorSpec("hsm-worker", lambda: HsmWorker(lambda: target))])
            async with trio.open_nursery() as nursery:
                await nursery.start(sup.run)
                await sup.ask("hsm-worker", HsmGenerateKey("bench-kek", "aes-256"))
                await sup.ask("hsm-worker", HsmGenerateKey("bench-ed25519", "ed25519"))
                wrapped = await sup.ask("hsm-worker", HsmWrap("bench-kek", secret, AAD))
                nursery.cancel_scope.cancel()
            return wrapped

        secret = SecretBytes.random(32)
        wrapped = trio.run(setup)
        actor, raw, stalls, idle, lone_raw, lone_actor = trio.run(
            run_rounds, target, secret, wrapped, args.rounds, args.callers)

    results = {}
    print(f"{'operation':10} {'raw ops/s':>11} {'actor ops/s':>12} {'actor/raw':>10}   (medians of {args.rounds} "
          "rounds; the ratio: of the per-round ratios)")
    for name in OPS:
        raw_median = statistics.median(r[name] for r in raw)
        actor_median = statistics.median(r[name] for r in actor)
        ratio = statistics.median(a[name] / r[name] for a, r in zip(actor, raw))
        results[name] = {"raw_ops_s": round(raw_median), "actor_ops_s": round(actor_median),
                         "ratio": round(ratio, 3), "target_ratio": 0.8}
        print(f"{name:10} {raw_median:>11.0f} {actor_median:>12.0f} {ratio:>9.2f}x")
    results["stall_ms"] = {"worst": round(max(stalls) * 1000, 2), "median_of_round_worsts": round(
        statistics.median(stalls) * 1000, 2), "burst": 1000, "target_ms": 5,
        "idle_worst": round(max(idle) * 1000, 2), "idle_median_of_round_worsts": round(statistics.median(idle) * 1000, 2)}
    print(f"loop stall during a burst of 1000 requests: worst {max(stalls) * 1000:.2f} ms "
          f"(median of round worsts {statistics.median(stalls) * 1000:.2f} ms); the same ticker with "
          f"nothing else running: worst {max(idle) * 1000:.2f} ms (median {statistics.median(idle) * 1000:.2f} ms)")
    lone = {"raw_p50_ms": round(statistics.median(lone_raw) * 1000, 3),
            "actor_p50_ms": round(statistics.median(lone_actor) * 1000, 3), "gap_ms": LONE_GAP_S * 1000,
            "samples": len(lone_raw)}
    results["lone_sign"] = lone
    print(f"one signature at a time, {LONE_GAP_S * 1000:g} ms apart: p50 raw {lone['raw_p50_ms']:.3f} ms, "
          f"through the actor {lone['actor_p50_ms']:.3f} ms ({len(lone_raw)} each)")
    print(f"machine: {describe_responsiveness(facts)} (bench/machine.py: the lone case pays the first)")
    out = ROOT / "bench" / "results" / "hsm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "hsm", "callers": args.callers, "rounds": args.rounds,
                               "responsiveness": facts, "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
