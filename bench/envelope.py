"""Envelope v1 seal and open time against the bare primitives, for both suites.

Cases: suite mx1 / mx2 x payload 1 KiB / 64 KiB / 1 MiB x recipients 1 / 10 / 50.

"Envelope" is `milagro_node.core.envelope` as a node uses it: `seal` with an Ed25519 key and
`open_envelope` as the first recipient, private keys held in `SecretBytes` (`LocalReaderKeys`,
`Ed25519SecretKey`), in a process locked in RAM as `milagro-node run` locks itself
(`secret_memory.lock_process_memory`; the table says if it was refused): there the reader
keeps its ML-KEM-768 key as OpenSSL's key object, elsewhere it rebuilds it from its seed at
each open. "Envelope, key objects" is the same code with every private key held as a key
object or plain bytes, to show what secret-memory key storage costs apart from the envelope.
(Such a reader's X25519 DH runs in OpenSSL, outside the envelope's C call: with the key in
secret memory the DH runs inside it, so this variant now opens slower than the envelope.)

"Bare" is the least a sender and reader must do with the same primitives, each from the
faster of the two libraries here, keys ready for use: Ed25519 from libsodium (PyNaCl), which
signs and verifies in about half OpenSSL's time (the envelope uses it too); HPKE and AES-GCM
from `cryptography` (OpenSSL), with key objects:
  seal: a random 32-byte key; HPKE base mode per recipient with OpenSSL's own HPKE
        (mx1: DHKEM(X25519), mx2: its ML-KEM-768+X25519 hybrid KEM; HKDF-SHA256,
        AES-256-GCM); AES-256-GCM of the payload; Ed25519 over the wrapped keys and
        SHA-256 of the ciphertext (the same signed volume as an envelope); the results
        concatenated into the one byte string to send.
  open: the parts read back at fixed offsets without copying; Ed25519 verify of the same;
        HPKE open of the first wrapped key; AES-256-GCM decrypt.
No field names, time window, ids, limits, replay cache or CID. (OpenSSL's HPKE is the one
complete HPKE here; the envelope's own wrap makes X25519 keys with libsodium's faster fixed-base
multiplication, so a seal to many recipients can take less than this baseline.)

Each time is the median over `--rounds` rounds of the mean time of one operation (a round
runs a ~2 ms batch of each variant, interleaved); each ratio is the median of the per-round
ratios, so outside load on a shared machine hits both sides alike. Batches are short and
rounds many because this VM's speed drifts within tens of milliseconds (the same open took
155 and 240 us a second apart): a variant's batch and the bare one must run close enough
together to share the machine's speed. Target (issue 4):
envelope / bare <= 1.3x.

    .venv/bin/python bench/envelope.py [--rounds 61] [--quick]

Prints a table and the machine's steal share of CPU time (bench/machine.py); writes
bench/results/envelope.json (steal, idle and busy shares per case).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

from cryptography.hazmat.primitives import hpke as ossl_hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nacl import bindings as sodium

from milagro_node.core.envelope import (
    Ed25519SecretKey, LocalReaderKeys, RecipientKey, ReplayCache, open_envelope, seal,
)
from milagro_node.core.ipld import cid_for
from milagro_node.secret_memory import SecretBytes, lock_process_memory

from machine import CpuShares  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"1 KiB": 1 << 10, "64 KiB": 64 << 10, "1 MiB": 1 << 20}
COUNTS = (1, 10, 50)
NOW = 1_767_225_600
TARGET = 1.3
BATCH_S = 0.002  # one variant's batch in a round


class Identity:
    """One party's keys in every form the cases need."""

    def __init__(self, n: int) -> None:
        self.cid = cid_for(f"bench identity {n}".encode(), "dag-cbor")
        x_secret, kem_seed, ed_seed = os.urandom(32), os.urandom(64), os.urandom(32)
        # Envelope: secrets in secret memory.
        self.reader = LocalReaderKeys(SecretBytes.copy_from(x_secret), SecretBytes.copy_from(kem_seed))
        self.signer = Ed25519SecretKey(SecretBytes.copy_from(ed_seed))
        self.key = self.reader.recipient_key(self.cid)
        # Key objects (bare primitives, and the "key objects" variant).
        self.x_sk = X25519PrivateKey.from_private_bytes(x_secret)
        self.kem_sk = MLKEM768PrivateKey.from_seed_bytes(kem_seed)
        self.ed_sk = Ed25519PrivateKey.from_private_bytes(ed_seed)
        self.ed_public, self.ed_secret = sodium.crypto_sign_seed_keypair(ed_seed)  # libsodium's form
        self.object_reader = ObjectReaderKeys(self.x_sk, self.kem_sk)
        self.hybrid_sk = ossl_hpke.MLKEM768X25519PrivateKey(self.kem_sk, self.x_sk)


class ObjectReaderKeys:
    """`ReaderKeys` over `cryptography` key objects (no secret memory): bench variant only."""

    def __init__(self, x_sk: X25519PrivateKey, kem_sk: MLKEM768PrivateKey) -> None:
        self._x, self._kem = x_sk, kem_sk
        self.x25519_public = x_sk.public_key().public_bytes_raw()
        self.mlkem768_public = kem_sk.public_key().public_bytes_raw()

    def x25519(self, peer_public: bytes) -> SecretBytes:
        return SecretBytes.copy_from(self._x.exchange(X25519PublicKey.from_public_bytes(peer_public)))

    def mlkem768_decapsulate(self, ciphertext: bytes) -> SecretBytes:
        return SecretBytes.copy_from(self._kem.decapsulate(ciphertext))


# --- the bare primitives -----------------------------------------------------------------------

_OSSL_SUITES = {
    "mx1": ossl_hpke.Suite(ossl_hpke.KEM.X25519, ossl_hpke.KDF.HKDF_SHA256, ossl_hpke.AEAD.AES_256_GCM),
    "mx2": ossl_hpke.Suite(ossl_hpke.KEM.MLKEM768_X25519, ossl_hpke.KDF.HKDF_SHA256,
                           ossl_hpke.AEAD.AES_256_GCM),
}
_NONCE = bytes(12)


def _bare_public_key(suite: str, key: RecipientKey):
    # From bytes, as a sender holding identity-log keys would, like the envelope's seal.
    x = X25519PublicKey.from_public_bytes(key.x25519)
    if suite == "mx1":
        return x
    return ossl_hpke.MLKEM768X25519PublicKey(MLKEM768PublicKey.from_public_bytes(key.mlkem768), x)


def bare_seal(suite: str, payload: bytes, sender: Identity, recipients: list[RecipientKey]) -> bytes:
    cek = os.urandom(32)
    hpke_suite = _OSSL_SUITES[suite]
    wrapped = [hpke_suite.encrypt(cek, _bare_public_key(suite, r), info=r.kid.encode()) for r in recipients]
    ct = AESGCM(cek).encrypt(_NONCE, payload, None)
    sig = sodium.crypto_sign(b"".join(wrapped) + hashlib.sha256(ct).digest(), sender.ed_secret)[:64]
    return b"".join([*wrapped, sig, ct])  # the bytes to send, in the least framing possible


def bare_open(suite: str, message: bytes, count: int, sender_public: bytes, reader: Identity) -> bytes:
    # Fixed offsets, zero-copy views: no parsing at all.
    size = len(message) - _OSSL_WRAP_SIZES[suite] * count - 64
    view = memoryview(message)
    wrapped, sig, ct = view[:-size - 64], view[-size - 64:-size], view[-size:]
    sodium.crypto_sign_open(bytes(sig) + bytes(wrapped) + hashlib.sha256(ct).digest(), sender_public)
    private = reader.x_sk if suite == "mx1" else reader.hybrid_sk
    first = wrapped[:_OSSL_WRAP_SIZES[suite]]
    cek = _OSSL_SUITES[suite].decrypt(first, private, info=reader.cid.encode())
    return AESGCM(cek).decrypt(_NONCE, ct, None)


_OSSL_WRAP_SIZES = {"mx1": 32 + 48, "mx2": 1120 + 48}


# --- timing --------------------------------------------------------------------------------------


def _reps(fn) -> int:
    """How many calls make a ~2 ms batch (after a warm-up call)."""
    fn()
    started = time.perf_counter()
    fn()
    return max(1, int(BATCH_S / max(time.perf_counter() - started, 1e-6)))


def compare(variants: dict[str, object], rounds: int) -> dict[str, float]:
    """Seconds per call of each variant: median over rounds, the variants interleaved.

    The machine may be shared: batches of all variants alternate within each round, so a
    burst of outside load hits them alike, and ratios are taken per round (``ratio:<name>``
    against the variant named "bare"), then their median.
    """
    reps = {name: _reps(fn) for name, fn in variants.items()}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(rounds):
        order = list(variants) if round_no % 2 == 0 else list(variants)[::-1]
        for name in order:
            fn, n = variants[name], reps[name]
            started = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - started) / n)
    out = {name: statistics.median(times) for name, times in samples.items()}
    for name in variants:
        if name != "bare":
            out[f"ratio:{name}"] = statistics.median(
                a / b for a, b in zip(samples[name], samples["bare"]))
    return out


def run_case(suite: str, size: int, count: int, sender: Identity, readers: list[Identity],
             rounds: int) -> dict[str, float]:
    payload = os.urandom(size)
    keys = [r.key for r in readers[:count]]
    reader = readers[0]
    common = dict(suite=suite, sender=sender.cid, kind="bench/payload", recipients=keys,
                  created=NOW, expires=NOW + 3600)
    data = seal(payload, sign=sender.signer, **common)
    resolve = {sender.cid: sender.ed_public}.get

    def envelope_open(reader_keys):
        return lambda: open_envelope(data, resolve_sender=resolve, reader_kid=reader.cid,
                                     reader_keys=reader_keys, now=NOW, replay=ReplayCache())

    sealed_bare = bare_seal(suite, payload, sender, keys)
    sender_public = sender.ed_public
    assert envelope_open(reader.reader)().payload == payload
    assert bare_open(suite, sealed_bare, count, sender_public, reader) == payload
    sealing = compare({
        "envelope": lambda: seal(payload, sign=sender.signer, **common),
        "key_objects": lambda: seal(payload, sign=lambda m: sodium.crypto_sign(m, sender.ed_secret)[:64],
                                    **common),
        "bare": lambda: bare_seal(suite, payload, sender, keys),
    }, rounds)
    opening = compare({
        "envelope": envelope_open(reader.reader),
        "key_objects": envelope_open(reader.object_reader),
        "bare": lambda: bare_open(suite, sealed_bare, count, sender_public, reader),
    }, rounds)
    return {"seal": sealing, "open": opening, "envelope_bytes": len(data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("--quick", action="store_true", help="1 KiB and 1 MiB, 1 and 50 recipients")
    args = parser.parse_args()
    sizes = {k: v for k, v in SIZES.items() if not args.quick or k != "64 KiB"}
    counts = tuple(c for c in COUNTS if not args.quick or c != 10)

    unlocked = lock_process_memory()  # before any key is made, as the node does
    sender = Identity(0)
    readers = [Identity(n) for n in range(1, max(counts) + 1)]
    results = []
    header = (f"{'suite':5} {'payload':>7} {'rcpt':>4} | {'seal ms':>8} {'bare':>7} {'ratio':>6} "
              f"{'keyobj':>6} | {'open ms':>8} {'bare':>7} {'ratio':>6} {'keyobj':>6}")
    print(header)
    print("-" * len(header))
    for suite in ("mx1", "mx2"):
        for label, size in sizes.items():
            for count in counts:
                with CpuShares() as shares:
                    r = run_case(suite, size, count, sender, readers, args.rounds)
                row = {
                    "suite": suite, "payload": label, "payload_bytes": size, "recipients": count,
                    "envelope_bytes": r["envelope_bytes"], "machine": shares.result,
                }
                for op in ("seal", "open"):
                    m = r[op]
                    row.update({
                        f"{op}_ms": round(m["envelope"] * 1e3, 3),
                        f"{op}_key_objects_ms": round(m["key_objects"] * 1e3, 3),
                        f"{op}_bare_ms": round(m["bare"] * 1e3, 3),
                        f"{op}_ratio": round(m["ratio:envelope"], 2),
                        f"{op}_ratio_key_objects": round(m["ratio:key_objects"], 2),
                    })
                results.append(row)
                print(f"{suite:5} {label:>7} {count:>4} | {row['seal_ms']:>8.3f} {row['seal_bare_ms']:>7.3f} "
                      f"{row['seal_ratio']:>5.2f}x {row['seal_ratio_key_objects']:>5.2f}x | "
                      f"{row['open_ms']:>8.3f} {row['open_bare_ms']:>7.3f} {row['open_ratio']:>5.2f}x "
                      f"{row['open_ratio_key_objects']:>5.2f}x", flush=True)
    over = [r for r in results if max(r["seal_ratio"], r["open_ratio"]) > TARGET]
    print(f"ratio = envelope / bare primitives (median of {args.rounds} rounds); keyobj: private keys "
          f"as key objects instead of SecretBytes. Target <= {TARGET}x: "
          f"{len(results) - len(over)}/{len(results)} cases meet it.")
    print("process memory: " + ("locked (the reader keeps its ML-KEM key object)" if unlocked is None
                                else f"NOT locked ({unlocked}): the reader rebuilds its ML-KEM key at each open"))
    steal = [r["machine"]["steal"] for r in results if r["machine"]]
    if steal:
        print(f"machine: steal {min(steal):.0%}..{max(steal):.0%} of CPU time per case "
              f"(median {statistics.median(steal):.0%}); per case in the JSON")
    out = ROOT / "bench" / "results" / "envelope.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "envelope", "rounds": args.rounds, "target_ratio": TARGET,
                               "process_memory_locked": unlocked is None, "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
