"""Generate tests/vectors/identity-v1.json: identity-log test vectors from fixed seeds.

Run from the repository root:  .venv/bin/python tests/vectors/make_identity_vectors.py
The output is deterministic (Ed25519 signatures are deterministic and every key comes from a
seed below), and tests/core/test_identity_vectors.py checks that running this again gives
the file byte for byte, so a change to the encoding cannot slip in unnoticed.

What the file holds, for implementers in other languages:
- a controller's log: inception, two rotations (the second adds an ML-KEM-768 key and
  changes roles and addresses), and a revocation signed by the pre-committed key; each event
  with its bytes, CID, the bytes that were signed, and the state after it;
- a witness identity and its receipt of the controller's first rotation;
- invalid logs, each with the error code a verifier must report.

The valid events are made through the public API (prepare/finish); the invalid ones are
assembled here by hand from plain DAG-CBOR maps, so they do not depend on the drafting code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import dag_cbor
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from multiformats import CID

from milagro_node.core import identity as ident

OUT = Path(__file__).with_name("identity-v1.json")
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z; each later event adds a day


def seed(label: str, size: int = 32) -> bytes:
    """A fixed secret for ``label``: SHA-256 (or SHA-512 for 64 bytes) of a tagged label."""
    digest = hashlib.sha512 if size == 64 else hashlib.sha256
    return digest(b"milagro identity-v1 test vector: " + label.encode()).digest()[:size]


def signing_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed(label))


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def x25519_public(label: str) -> bytes:
    return X25519PrivateKey.from_private_bytes(seed(label)).public_key().public_bytes_raw()


def mlkem768_public(label: str) -> bytes:
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed(label, 64)).public_key().public_bytes_raw()


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_id(label: str) -> str:
    """The libp2p peer id (identity multihash of the protobuf Ed25519 key), base58btc."""
    raw = b"\x00\x24\x08\x01\x12\x20" + public(signing_key(label))
    number, text = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        text = _B58[digit] + text
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + text


def raw_event(fields: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """An event assembled by hand (links given as CID strings) and signed by ``key``."""
    value = {k: CID.decode(v) if k in ("prev", "identity") else v for k, v in fields.items()}
    value["sig"] = key.sign(ident.EVENT_DOMAIN + dag_cbor.encode(value))
    return dag_cbor.encode(value)


def fields_of(data: bytes) -> dict[str, Any]:
    """An event's map with links as strings, for editing into an invalid event."""
    value = dag_cbor.decode(data)
    del value["sig"]
    return {k: str(v.set(base="base32")) if isinstance(v, CID) else v for k, v in value.items()}


def controller_log() -> tuple[list[ident.Event], list[bytes]]:
    """The valid log; also the to-be-signed bytes of each event."""
    k = [signing_key(f"controller-{i}") for i in range(4)]
    peer = peer_id("controller-libp2p")
    events, signed = [], []

    def finish(draft: ident.EventDraft, key: Ed25519PrivateKey) -> ident.Event:
        signed.append(draft.to_be_signed)
        events.append(draft.finish(key.sign(draft.to_be_signed)))
        return events[-1]

    finish(
        ident.prepare_inception(
            sign_key=public(k[0]), next_key=public(k[1]), x25519=x25519_public("controller-x25519-0"),
            peer_id=peer, roles=["dta", "mfa"], created=CREATED,
            addrs=["/ip4/192.0.2.10/tcp/4001", "/dns/dta1.example.org/tcp/4001"],
        ),
        k[0],
    )
    state = ident.verify_log([e.bytes for e in events])
    finish(
        ident.prepare_rotation(
            state, new_key=public(k[1]), next_key=public(k[2]), x25519=x25519_public("controller-x25519-1"),
            created=CREATED + 86_400,
        ),
        k[1],
    )
    state = ident.verify_log([e.bytes for e in events])
    finish(
        ident.prepare_rotation(
            state, new_key=public(k[2]), next_key=public(k[3]),
            mlkem768=mlkem768_public("controller-mlkem768"), roles=["custody", "dta", "mfa"],
            addrs=[f"/ip4/192.0.2.11/udp/4001/quic-v1/p2p/{peer}"],
            created=CREATED + 2 * 86_400,
        ),
        k[2],
    )
    state = ident.verify_log([e.bytes for e in events])
    finish(ident.prepare_revocation(state, next_key=public(k[3]), created=CREATED + 3 * 86_400), k[3])
    return events, signed


def witness_inception() -> ident.Event:
    return ident.make_inception(
        signing_key("witness-0").sign, sign_key=public(signing_key("witness-0")),
        next_key=public(signing_key("witness-1")), x25519=x25519_public("witness-x25519"),
        peer_id=peer_id("witness-libp2p"), roles=["custody"], addrs=["/dns4/witness.example.net/tcp/4001/ws"],
        created=CREATED,
    )


def invalid_logs(log: list[ident.Event], witness: ident.Event) -> list[dict[str, Any]]:
    """Logs a verifier must refuse, each with its error code."""
    inc, rot1, rot2, rev = log
    k = [signing_key(f"controller-{i}") for i in range(4)]
    stranger = signing_key("stranger")
    day = 86_400

    def rotation_after(base: ident.Event, key: Ed25519PrivateKey, **changes: Any) -> bytes:
        fields = fields_of(rot1.bytes)
        fields.update(seq=base.seq + 1, prev=base.cid, sign_key=public(key), created=base.created + day)
        fields.update(changes)
        return raw_event(fields, key)

    flipped = bytearray(inc.bytes)
    flipped[-1] ^= 0x01  # the last byte of the signature
    weak = fields_of(inc.bytes)
    weak["sign_key"] = bytes(32)  # the encoding of a point of order 4
    reuse = fields_of(inc.bytes)
    reuse["next"] = ident.key_digest(public(k[0]))
    cases = [  # (name, expected code, log)
        ("rotation signed by a key that was not pre-committed", "not-pre-committed",
         [inc.bytes, rotation_after(inc, stranger)]),
        ("a second rotation at seq 1 (fork)", "duplicity",
         [inc.bytes, rot1.bytes, rotation_after(inc, k[1], created=CREATED + 7)]),
        ("an event after the revocation", "after-revocation",
         [e.bytes for e in log] + [rotation_after(rev, stranger)]),
        ("rotation at seq 2 linking to the inception", "broken-chain",
         [inc.bytes, rot1.bytes, rotation_after(rot1, k[2], prev=inc.cid)]),
        ("rotation skipping seq 1", "bad-sequence",
         [inc.bytes, rotation_after(inc, k[1], seq=2)]),
        ("rotation naming another identity", "identity-mismatch",
         [inc.bytes, rotation_after(inc, k[1], identity=witness.cid)]),
        ("a log starting with a rotation", "no-inception", [rot1.bytes, rot2.bytes]),
        ("inception with one bit of its signature flipped", "bad-signature", [bytes(flipped)]),
        ("inception whose next commits to its own key", "key-reuse", [raw_event(reuse, k[0])]),
        ("inception whose sign_key is a point of small order", "weak-key", [raw_event(weak, k[0])]),
    ]
    return [{"name": name, "log": [data.hex() for data in log], "code": code} for name, code, log in cases]


def event_vector(name: str, event: ident.Event, signed: bytes, signer: str) -> dict[str, Any]:
    return {
        "name": name, "cid": event.cid, "signer": signer,
        "to_be_signed": signed.hex(), "bytes": event.bytes.hex(),
    }


def state_vector(state: ident.IdentityState) -> dict[str, Any]:
    def hex_or_none(value: bytes | None) -> str | None:
        return None if value is None else value.hex()

    return {
        "identity": state.identity, "seq": state.seq, "head": state.head, "revoked": state.revoked,
        "sign_key": state.sign_key.hex(), "next_digest": hex_or_none(state.next_digest),
        "x25519": state.x25519.hex(), "mlkem768": hex_or_none(state.mlkem768),
        "roles": list(state.roles), "peer_id": state.peer_id, "addrs": list(state.addrs),
        "created": state.created,
    }


def build() -> dict[str, Any]:
    log, signed = controller_log()
    witness = witness_inception()
    witness_key = signing_key("witness-0")
    receipt = ident.make_receipt(
        witness_key.sign, log[1].cid, signer=witness.cid, signer_key=public(witness_key)
    )
    names = ["inception", "rotation-1", "rotation-2", "revocation"]
    signers = ["controller-0", "controller-1", "controller-2", "controller-3"]
    return {
        "description": "Milagro identity log v1 (docs/identity.md)",
        "generator": "tests/vectors/make_identity_vectors.py",
        "event_domain": ident.EVENT_DOMAIN.hex(),
        "receipt_domain": ident.RECEIPT_DOMAIN.hex(),
        "seeds": "seed(label) = SHA-256('milagro identity-v1 test vector: ' + label); ML-KEM: SHA-512",
        "keys": {
            label: {"seed": seed(label).hex(), "public": public(signing_key(label)).hex()}
            for label in [*signers, "witness-0", "witness-1", "stranger"]
        },
        "controller": {
            "identity": log[0].cid,
            "events": [event_vector(n, e, s, k) for n, e, s, k in zip(names, log, signed, signers)],
            "states": [state_vector(ident.verify_log([e.bytes for e in log[:n]])) for n in range(1, 5)],
        },
        "witness": {
            "identity": witness.cid,
            "events": [{"name": "inception", "cid": witness.cid, "bytes": witness.bytes.hex()}],
        },
        "receipts": [{
            "cid": receipt.cid, "bytes": receipt.bytes.hex(),
            "event": receipt.event, "signer": receipt.signer,
            "signer_key": public(witness_key).hex(),
        }],
        "invalid": invalid_logs(log, witness),
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
