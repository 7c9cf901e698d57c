"""The fast path: a batch of wraps, unwraps and Ed25519 signatures in one C call.

python-pkcs11 makes four or five PKCS#11 calls per AES-GCM operation, with a few
microseconds of Python between them, and takes the GIL back after each; each
time the HSM thread may wait for the trio loop, so the two took turns instead of
running at once. Here the trio thread lays a batch out in three flat buffers
(`FastPath.plan`: public inputs, public outputs, and one secret for plaintexts),
and the HSM thread makes one C call for all of it (`FastPath.run`,
native/p11batch.c) with the GIL released, in the session python-pkcs11 opened,
then takes the GIL once to cut the results out.

The session's own methods stay the reference and serve everything else: a batch
holding any other request, a request whose key handle is not known yet (it is
looked up for the next batch), fields of an unexpected type, and any operation
that fails in C, which is then run the ordinary way for its exact error (and to
notice a lost token). Plaintexts stay in secret memory; nonces come from
getrandom(2) in C.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from milagro_node.secret_memory import SecretBytes

from ..messages import HsmSign, HsmUnwrap, HsmWrap
from .session import Pkcs11Session

try:
    from milagro_node._p11batch import ffi, lib
except ImportError:  # an install older than the extension: the ordinary path only
    ffi = lib = None

_PURPOSE = {HsmWrap: "wrap", HsmUnwrap: "wrap", HsmSign: "sign"}  # the requests it serves
_ED25519_SIGNATURE = 64


class FastPath:
    """The C entry points of one loaded PKCS#11 module, or why there are none."""

    def __init__(self, module: Path) -> None:
        self.module = module
        self.unavailable: str | None = None
        self._module: Any = None
        if lib is None:
            self.unavailable = "the native extension milagro_node._p11batch is not built (scripts/install.sh)"
            return
        err = ffi.new("char[]", 256)
        handle = lib.p11b_open(str(module).encode(), err, len(err))
        if handle == ffi.NULL:
            self.unavailable = ffi.string(err).decode(errors="replace")
            return
        self._module = ffi.gc(handle, lib.p11b_close)

    def plan(self, session: Pkcs11Session, requests: list[Any]) -> Batch | None:
        """In the trio thread: the batch laid out for `run`, or None to go the ordinary way.

        Only a batch of nothing but wraps, unwraps and signatures: one that also made or
        destroyed keys could leave a key handle looked up here stale when its turn came.
        """
        if self._module is None or any(type(r) not in _PURPOSE for r in requests):
            return None
        return Batch(session, requests)

    def run(self, session: Pkcs11Session, batch: Batch, ordinary: Callable[[int], Any]) -> list[Any]:
        """In the HSM thread: every request's outcome; ``ordinary(i)`` serves request i
        the ordinary way. Frees the batch's secret memory, also when the trio side has
        given up waiting (it is the batch's own copy, never a caller's secret)."""
        with batch.secret:
            if batch.ops is not None:
                public_in, public_out = ffi.from_buffer(batch.public_in), ffi.from_buffer(batch.public_out)
                secret = batch.secret.pointer(ffi)
                lib.p11b_run(self._module, session.handle, batch.ops, len(batch.ops), public_in, public_out, secret)
                ffi.release(public_in)
                ffi.release(public_out)
            return [self._outcome(session, batch, i, ordinary) for i in range(len(batch.requests))]

    def _outcome(self, session: Pkcs11Session, batch: Batch, i: int, ordinary: Callable[[int], Any]) -> Any:
        slot = batch.slots[i]
        if slot is None:
            request = batch.requests[i]
            outcome = ordinary(i)
            key = request.label if type(request) is HsmSign else request.kek
            if isinstance(key, str):
                session.fast_key(key, _PURPOSE[type(request)])  # known for the next batch
            return outcome
        op = batch.ops[slot]
        if op.rv:
            return ordinary(i)  # for its exact error, or to notice a lost token
        if op.kind == lib.P11B_DECRYPT_GCM:
            return batch.secret.copy_out(op.out, op.out_len)
        return bytes(batch.public_out[op.out:op.out + op.out_len])


class Batch:
    """Requests laid out for the C side: `slots[i]` is request i's index in `ops`, or None."""

    def __init__(self, session: Pkcs11Session, requests: list[Any]) -> None:
        self.requests = requests
        self.slots: list[int | None] = []
        ops: list[tuple[int, ...]] = []
        public_in: list[bytes] = []
        secret: list[SecretBytes | int] = []
        at_in = at_out = at_secret = 0
        for request in requests:
            op = None
            match request:
                case HsmWrap(str() as kek, SecretBytes(closed=False) as plain, aad) if _is_aad(aad):
                    key = session.known_fast_key(kek, "wrap")
                    if key is not None:
                        aad = aad or b""
                        size = lib.P11B_GCM_NONCE + len(plain) + lib.P11B_GCM_TAG
                        op = (lib.P11B_ENCRYPT_GCM, key, at_secret, len(plain), at_in, len(aad), at_out, size)
                        public_in.append(aad)
                        secret.append(plain)
                        at_in, at_out, at_secret = at_in + len(aad), at_out + size, at_secret + len(plain)
                case HsmUnwrap(str() as kek, bytes() as wrapped, aad) if _is_aad(aad):
                    key = session.known_fast_key(kek, "wrap")
                    if key is not None and len(wrapped) >= lib.P11B_GCM_NONCE + lib.P11B_GCM_TAG:
                        aad = aad or b""
                        room = len(wrapped) - lib.P11B_GCM_NONCE  # modules ask for more or less than the plaintext
                        op = (lib.P11B_DECRYPT_GCM, key, at_in, len(wrapped), at_in + len(wrapped), len(aad),
                              at_secret, room)
                        public_in += (wrapped, aad)
                        secret.append(room)
                        at_in, at_secret = at_in + len(wrapped) + len(aad), at_secret + room
                case HsmSign(str() as label, bytes() as data):
                    key = session.known_fast_key(label, "sign")
                    if key is not None:
                        op = (lib.P11B_SIGN_EDDSA, key, at_in, len(data), 0, 0, at_out, _ED25519_SIGNATURE)
                        public_in.append(data)
                        at_in, at_out = at_in + len(data), at_out + _ED25519_SIGNATURE
            self.slots.append(None if op is None else len(ops))
            if op is not None:
                ops.append(op)
        self.ops = ffi.new("p11b_op[]", ops) if ops else None
        self.public_in = b"".join(public_in) or b"\0"  # never empty: from_buffer wants bytes to point at
        self.public_out = bytearray(max(1, at_out))
        self.secret = SecretBytes.gather(secret) if secret else SecretBytes(1)


def _is_aad(aad: Any) -> bool:
    return aad is None or type(aad) is bytes
