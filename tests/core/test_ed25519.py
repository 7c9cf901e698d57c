"""core/ed25519.verify (libsodium's detached verification, through native/envcrypt.c) gives
the answer of PyNaCl's `crypto_sign_open`, which it replaced, on good and bad signatures."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

from milagro_node.core import ed25519

L = 2**252 + 27742317777372353535851937790883648493  # the group order: S must be below it
SMALL_ORDER_KEYS = [bytes(32), b"\x01" + bytes(31), bytes(31) + b"\x80"]  # identity, and malformed


def _pynacl(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        sodium.crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=9000),
       tamper=st.sampled_from(["none", "message", "signature", "r", "s-plus-l", "key"]))
def test_verify_agrees_with_crypto_sign_open(seed, message, tamper):
    public_key, secret_key = sodium.crypto_sign_seed_keypair(seed)
    signature = sodium.crypto_sign(message, secret_key)[:64]
    if tamper == "message":
        message = message + b"!"
    elif tamper == "signature":
        signature = signature[:40] + bytes([signature[40] ^ 4]) + signature[41:]
    elif tamper == "r":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    elif tamper == "s-plus-l":  # the same signature with a non-canonical S: refused
        s = int.from_bytes(signature[32:], "little") + L
        if s < 2**256:
            signature = signature[:32] + s.to_bytes(32, "little")
    elif tamper == "key":
        public_key = SMALL_ORDER_KEYS[len(message) % len(SMALL_ORDER_KEYS)]
    assert ed25519.verify(public_key, signature, message) == _pynacl(public_key, signature, message)
    assert ed25519.verify(public_key, signature, memoryview(message)) == _pynacl(public_key, signature, message)
    if tamper == "none":
        assert ed25519.verify(public_key, signature, message)


def test_wrong_sizes_are_refused():
    public_key, secret_key = sodium.crypto_sign_seed_keypair(bytes(32))
    signature = sodium.crypto_sign(b"m", secret_key)[:64]
    assert ed25519.verify(public_key, signature, b"m")
    assert not ed25519.verify(public_key[:31], signature, b"m")
    assert not ed25519.verify(public_key, signature[:63], b"m")
