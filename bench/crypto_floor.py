"""The least an envelope costs in crypto, measured in the bench's own process: the floor
under bench/gossip.py's envelope latency.

A sample is what one envelope's trip must compute, in order, with nothing around it: the
sender seals (`prepare_seal`, suite mx1, to the case's N-1 recipients), signs
``to_be_signed`` with an Ed25519 key in a SoftHSM2 token (python-pkcs11 through the node's
own `Pkcs11Session`, in this thread) and finishes the envelope; one recipient verifies it
(`verify_envelope`, which takes its CID) and opens it (`open_verified`). No API, actors,
store, PKI, replay cache or gossip. Samples are `GAP_S` apart, so the machine idles in
between as it does at the bench's low latency rate (this VM signs in SoftHSM in ~0.2 ms
back to back, ~0.7 ms after an idle gap: bench/hsm.py, "one signature at a time").
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from actors.hsm_worker import HsmTarget
from actors.hsm_worker.provision import SOFTHSM_MODULE, create_softhsm_token, softhsm_env
from actors.hsm_worker.session import Pkcs11Session
from milagro_node.core.envelope import LocalReaderKeys, open_verified, prepare_seal, verify_envelope
from milagro_node.core.ipld import cid_for
from milagro_node.secret_memory import SecretBytes

GAP_S = 0.02
LABEL = "floor-ed25519"


class CryptoFloor:
    """A SoftHSM2 token made in `root` with a sender key, and in-process recipients."""

    def __init__(self, root: Path, recipients: int) -> None:
        pin = SecretBytes.copy_from(os.urandom(16).hex().encode())
        create_softhsm_token(root, "floor", None, user_pin=pin)
        self._session = Pkcs11Session.open(HsmTarget(SOFTHSM_MODULE, "floor", None, pin, softhsm_env(root)))
        self._sign_key = self._session.generate_key(LABEL, "ed25519")
        self._sender = cid_for(b"crypto floor sender", "dag-cbor")
        self._readers = []
        for n in range(recipients):
            cid = cid_for(f"crypto floor recipient {n}".encode(), "dag-cbor")
            keys = LocalReaderKeys(SecretBytes.random(32), SecretBytes.random(64))
            self._readers.append((cid, keys, keys.recipient_key(cid)))

    def samples_ms(self, size: int, recipients: int, count: int) -> list[float]:
        """`count` seal-sign-verify-open times (ms) of a `size`-byte payload to `recipients`."""
        payload = os.urandom(size)
        keys = [key for _, _, key in self._readers[:recipients]]
        reader_kid, reader_keys, _ = self._readers[0]
        out = []
        for _ in range(count):
            time.sleep(GAP_S)
            now = int(time.time())
            started = time.perf_counter()
            draft = prepare_seal(payload, suite="mx1", sender=self._sender, kind="bench.floor", recipients=keys,
                                 created=now, expires=now + 60)
            data = draft.finish(self._session.sign(LABEL, draft.to_be_signed))
            verified = verify_envelope(data, resolve_sender=lambda _: self._sign_key, now=now)
            opened = open_verified(verified, reader_kid=reader_kid, reader_keys=reader_keys)
            out.append((time.perf_counter() - started) * 1000)
            assert opened.payload == payload
        return out

    def close(self) -> None:
        self._session.close()
