"""Generate tests/vectors/envelope-v1.json: byte-exact envelope v1 vectors from fixed seeds.

    .venv/bin/python tests/vectors/make_envelope_vectors.py           # (re)write the file
    .venv/bin/python tests/vectors/make_envelope_vectors.py --check   # exit 1 if it differs

Every random input of a seal is drawn from a seeded SHAKE256 stream (`SeededEntropy`): the
envelope id, the content key, each X25519 ephemeral key and each ML-KEM-768 encapsulation
message (encapsulated by `mlkem768_encaps`, a deterministic FIPS 203 implementation, since
OpenSSL's cannot be seeded). Ed25519 signatures are deterministic. So the same seeds always
give the same bytes, and tests/core/test_envelope_vectors.py regenerates the file in memory
and compares, besides re-opening every vector with the listed private keys.

Identities here are stand-ins until the identity-log core exists: an identity's CID is the
CID of a small DAG-CBOR map holding its name and public keys.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import dag_cbor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, when run as a script

from vectors.mlkem768_encaps import encapsulate  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from milagro_node.core.envelope import (  # noqa: E402
    Ed25519SecretKey, LocalReaderKeys, RecipientKey, envelope_cid, inspect_envelope, seal,
    seal_public,
)
from milagro_node.core.envelope._format import encode_header, to_be_signed  # noqa: E402
from milagro_node.core.ipld import cid_for  # noqa: E402
from milagro_node.secret_memory import SecretBytes  # noqa: E402

PATH = Path(__file__).resolve().parent / "envelope-v1.json"
MASTER_SEED = b"milagro envelope v1 test vectors"
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
EXPIRES = CREATED + 3600
NAMES = ("alice", "bob", "carol", "dave")


def _derive(label: str, n: int) -> bytes:
    return hashlib.shake_256(MASTER_SEED + b"/" + label.encode()).digest(n)


class SeededEntropy:
    """An `Entropy` drawing everything from SHAKE256(seed || counter), in call order."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def _next(self, n: int) -> bytes:
        self._counter += 1
        return hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(n)

    def random_bytes(self, n: int) -> bytes:
        return self._next(n)

    def secret_bytes(self, n: int) -> SecretBytes:
        return SecretBytes.copy_from(self._next(n))

    def x25519_ephemeral(self) -> SecretBytes:
        return SecretBytes.copy_from(self._next(32))

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[SecretBytes, bytes]:
        shared, ciphertext = encapsulate(public_key, self._next(32))
        return SecretBytes.copy_from(shared), ciphertext


def identity(name: str) -> dict[str, str]:
    """The fixed keys of one test identity, all as hex (private ones too: these are vectors)."""
    ed_seed = _derive(f"{name}/ed25519", 32)
    x_secret = _derive(f"{name}/x25519", 32)
    kem_seed = _derive(f"{name}/mlkem768", 64)
    ed_public = Ed25519PrivateKey.from_private_bytes(ed_seed).public_key().public_bytes_raw()
    x_public = X25519PrivateKey.from_private_bytes(x_secret).public_key().public_bytes_raw()
    kem_public = MLKEM768PrivateKey.from_seed_bytes(kem_seed).public_key().public_bytes_raw()
    doc = {"name": name, "ed25519": ed_public, "x25519": x_public, "mlkem768": kem_public}
    return {
        "cid": cid_for(dag_cbor.encode(doc), "dag-cbor"),
        "ed25519_seed": ed_seed.hex(),
        "ed25519_public": ed_public.hex(),
        "x25519_secret": x_secret.hex(),
        "x25519_public": x_public.hex(),
        "mlkem768_seed": kem_seed.hex(),
        "mlkem768_public": kem_public.hex(),
    }


def reader_keys(ident: dict[str, str]) -> LocalReaderKeys:
    return LocalReaderKeys(SecretBytes.copy_from(bytes.fromhex(ident["x25519_secret"])),
                           SecretBytes.copy_from(bytes.fromhex(ident["mlkem768_seed"])))


def recipient_key(ident: dict[str, str]) -> RecipientKey:
    return RecipientKey(ident["cid"], bytes.fromhex(ident["x25519_public"]),
                        bytes.fromhex(ident["mlkem768_public"]))


class Party:
    """A fixed test identity as objects: CID, signer, reader keys, public recipient key.

    The envelope tests use these, so every test runs on the vectors' keys.
    """

    def __init__(self, name: str) -> None:
        ident = identity(name)
        self.name = name
        self.cid = ident["cid"]
        self.signer = Ed25519SecretKey(SecretBytes.copy_from(bytes.fromhex(ident["ed25519_seed"])))
        self.reader = reader_keys(ident)
        self.key = recipient_key(ident)

    def __repr__(self) -> str:
        return f"<Party {self.name}>"


# name, suite (None: public), recipients, kind, seq, payload
CASES = [
    ("mx1-one-recipient", "mx1", ["bob"], "test/secret", 1, b"Beauty is truth, truth beauty"),
    ("mx1-three-recipients", "mx1", ["bob", "carol", "dave"], "test/secret", 2,
     b"that is all ye know on earth, and all ye need to know"),
    ("mx1-empty-payload", "mx1", ["carol"], "test/empty", None, b""),
    ("mx2-one-recipient", "mx2", ["bob"], "test/secret", 3, b"Beauty is truth, truth beauty"),
    ("mx2-three-recipients", "mx2", ["bob", "carol", "dave"], "test/secret", 4,
     b"that is all ye know on earth, and all ye need to know"),
    ("public-announcement", None, [], "pki/announce", 5, b'{"hello":"federation"}'),
]


def build_vectors() -> dict:
    identities = {name: identity(name) for name in NAMES}
    sender = identities["alice"]
    sign = Party("alice").signer
    vectors = []
    for name, suite, recipients, kind, seq, payload in CASES:
        entropy_seed = _derive(f"case/{name}", 32)
        common = dict(sign=sign, sender=sender["cid"], kind=kind, created=CREATED,
                      expires=EXPIRES, seq=seq, entropy=SeededEntropy(entropy_seed))
        if suite is None:
            data = seal_public(payload, **common)
        else:
            data = seal(payload, suite=suite,
                        recipients=[recipient_key(identities[r]) for r in recipients], **common)
        header = inspect_envelope(data)
        header_bytes = encode_header(header)
        body = dag_cbor.decode(data)
        vectors.append({
            "name": name,
            "suite": header.suite,
            "sender": "alice",
            "recipients": recipients,
            "kind": kind,
            "seq": seq,
            "created": CREATED,
            "expires": EXPIRES,
            "open_at": CREATED + 60,
            "entropy_seed": entropy_seed.hex(),
            "payload": payload.hex(),
            "id": header.id.hex(),
            "header": header_bytes.hex(),
            "to_be_signed_sha256": hashlib.sha256(
                to_be_signed(header_bytes, body["ct" if "ct" in body else "body"])).hexdigest(),
            "envelope": data.hex(),
            "cid": envelope_cid(data),
        })
    return {
        "description": "Milagro envelope v1 vectors (docs/envelope.md). Private keys are listed "
                       "on purpose: open each envelope as each recipient, at open_at.",
        "generator": "tests/vectors/make_envelope_vectors.py",
        "master_seed": MASTER_SEED.decode(),
        "identities": identities,
        "vectors": vectors,
    }


def render(vectors: dict) -> str:
    return json.dumps(vectors, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file, do not write")
    args = parser.parse_args()
    text = render(build_vectors())
    if args.check:
        same = PATH.exists() and PATH.read_text() == text
        print(f"{PATH.name}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    PATH.write_text(text)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
