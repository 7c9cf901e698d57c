"""native/envcrypt.c (a recipient's key wrap in C) against the reference path it replaces.

The reference: `hpke.seal_secret` / `hpke.open_secret` and `_format.content_keys`, which the
RFC 9180 vectors check (tests/core/test_hpke.py). Both paths must give the same bytes and
the same error codes, on random inputs and on tampered ones.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milagro_node.core import hpke
from milagro_node.core.envelope import EnvelopeError, ErrorCode, LocalReaderKeys, RecipientKey, open_envelope, seal
from milagro_node.core.envelope import _suites
from milagro_node.core.envelope._format import content_keys
from milagro_node.core.envelope._keys import SystemEntropy
from milagro_node.core.ipld import cid_for
from milagro_node.secret_memory import SecretBytes
from vectors.make_envelope_vectors import CREATED as NOW
from vectors.make_envelope_vectors import SeededEntropy

pytestmark = pytest.mark.skipif(not _suites.NATIVE_WRAP, reason="no AES-NI: the C wrap is not used here")

READER = LocalReaderKeys.generate()
KID = cid_for(b"reader", "dag-cbor")
SUITE_NAMES = ("mx1", "mx2")


class ForeignReader:
    """READER's key operations without its key (as an HSM-held reader): for mx1 the C
    path then starts from the DH output, not from the key."""

    def __init__(self, reader: LocalReaderKeys) -> None:
        self.x25519_public, self.mlkem768_public = reader.x25519_public, reader.mlkem768_public
        self.x25519, self.mlkem768_decapsulate = reader.x25519, reader.mlkem768_decapsulate


READERS = {"local": READER, "foreign": ForeignReader(READER)}


@pytest.fixture
def reference_path(monkeypatch):
    monkeypatch.setattr(_suites, "NATIVE_WRAP", False)


def _wrap(suite_name: str, cek: bytes, info: bytes, seed: bytes, native: bool) -> tuple[bytes, bytes]:
    suite = _suites.SUITES[suite_name]
    saved, _suites.NATIVE_WRAP = _suites.NATIVE_WRAP, native
    try:
        with SecretBytes.copy_from(cek) as secret:
            return suite.wrap(READER.recipient_key(KID), secret, info, SeededEntropy(seed))
    finally:
        _suites.NATIVE_WRAP = saved


def _commitment(cek: bytes) -> bytes:
    with SecretBytes.copy_from(cek) as secret:
        payload_key, commitment = content_keys(secret)
    payload_key.close()
    return commitment


@settings(max_examples=60, deadline=None)
@given(suite_name=st.sampled_from(SUITE_NAMES), cek=st.binary(min_size=32, max_size=32),
       info=st.binary(max_size=200), seed=st.binary(min_size=8, max_size=8),
       reader=st.sampled_from(list(READERS.values())))
def test_the_c_wrap_makes_the_reference_bytes_and_each_path_opens_the_other(suite_name, cek, info, seed,
                                                                            reader):
    native = _wrap(suite_name, cek, info, seed, native=True)
    assert native == _wrap(suite_name, cek, info, seed, native=False)

    suite = _suites.SUITES[suite_name]
    with suite._unwrap(*native, READER, info) as back:  # the reference opens the C wrap
        assert back.reveal() == cek
    with SecretBytes.copy_from(cek) as secret:
        expected_key, commitment = content_keys(secret)
    with expected_key, suite.unwrap_payload_key(*native, reader, info, commitment) as payload_key:
        assert payload_key.reveal() == expected_key.reveal()


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_the_c_content_keys_are_the_reference_ones(cek):
    with SecretBytes.copy_from(cek) as secret:
        c_key, c_commitment = _suites.derive_content_keys(secret)
        key, commitment = content_keys(secret)
    with c_key, key:
        assert (c_key.reveal(), c_commitment) == (key.reveal(), commitment)


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
@pytest.mark.parametrize("native", [True, False], ids=["c", "reference"])
@pytest.mark.parametrize("reader", list(READERS.values()), ids=list(READERS))
def test_both_paths_refuse_alike(suite_name, native, reader, monkeypatch):
    monkeypatch.setattr(_suites, "NATIVE_WRAP", native)
    suite = _suites.SUITES[suite_name]
    cek, info = os.urandom(32), b"wrap info"
    enc, wck = _wrap(suite_name, cek, info, b"seed", native=True)
    commitment = _commitment(cek)

    def code(enc=enc, wck=wck, info=info, commitment=commitment):
        with pytest.raises(EnvelopeError) as caught:
            suite.unwrap_payload_key(enc, wck, reader, info, commitment)
        return caught.value.code

    flip = lambda b, i: b[:i] + bytes([b[i] ^ 1]) + b[i + 1:]  # noqa: E731
    assert code(wck=flip(wck, 0)) == ErrorCode.UNWRAP_FAILED
    assert code(wck=flip(wck, 47)) == ErrorCode.UNWRAP_FAILED  # the tag
    assert code(enc=flip(enc, len(enc) - 1)) == ErrorCode.UNWRAP_FAILED  # the X25519 half
    assert code(enc=enc[:-1]) == ErrorCode.UNWRAP_FAILED
    assert code(info=info + b"!") == ErrorCode.UNWRAP_FAILED
    assert code(wck=wck[:-1]) == ErrorCode.UNWRAP_FAILED
    assert code(commitment=flip(commitment, 31)) == ErrorCode.DECRYPT_FAILED
    assert code(commitment=commitment[:-1]) == ErrorCode.DECRYPT_FAILED
    if suite_name == "mx2":
        assert code(enc=flip(enc, 0)) == ErrorCode.UNWRAP_FAILED  # the ML-KEM half
    else:
        assert code(enc=bytes(32)) == ErrorCode.UNWRAP_FAILED  # a low-order point


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_envelopes_sealed_by_one_path_open_by_the_other(suite_name, reference_path):
    from milagro_node.core.envelope import Ed25519SecretKey, ReplayCache

    signer = Ed25519SecretKey.generate()
    sender = cid_for(b"sender", "dag-cbor")
    common = dict(suite=suite_name, sender=sender, kind="test/native", recipients=[READER.recipient_key(KID)],
                  created=NOW, expires=NOW + 60)
    by_reference = seal(b"from the reference", sign=signer, **common)
    _suites.NATIVE_WRAP = True  # the fixture restores it
    by_c = seal(b"from C", sign=signer, **common)

    def opened(data: bytes) -> bytes:
        return open_envelope(data, resolve_sender={sender: signer.public_key}.get, reader_kid=KID,
                             reader_keys=READER, now=NOW, replay=ReplayCache()).payload

    assert opened(by_reference) == b"from the reference"
    _suites.NATIVE_WRAP = False
    assert opened(by_c) == b"from C"


def test_hpke_reference_is_what_the_c_schedule_follows():
    # A guard on the constants envcrypt.c spells out: the mx1 suite is RFC 9180's 0x0020 /
    # HKDF-SHA256 / AES-256-GCM, the mx2 one the same with KEM 0xFF02.
    assert _suites.SUITES["mx1"].hpke_suite.suite_id == b"HPKE\x00\x20\x00\x01\x00\x02"
    assert _suites.SUITES["mx2"].hpke_suite.suite_id == b"HPKE\xff\x02\x00\x01\x00\x02"
    assert _suites.SUITES["mx1"].hpke_suite.kem is hpke.DHKEM_X25519


def test_openssl_hpke_opens_the_c_wrap_with_its_own_ephemeral_key():
    # The system path draws the ephemeral key in C: an independent HPKE must open the wrap.
    from cryptography.hazmat.primitives import hpke as openssl_hpke
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    reader = X25519PrivateKey.generate()
    recipient = RecipientKey(KID, reader.public_key().public_bytes_raw())
    cek, info = os.urandom(32), b"wrap info"
    openssl = openssl_hpke.Suite(openssl_hpke.KEM.X25519, openssl_hpke.KDF.HKDF_SHA256,
                                 openssl_hpke.AEAD.AES_256_GCM)
    encs = set()
    for _ in range(3):
        with SecretBytes.copy_from(cek) as secret:
            enc, wck = _suites.SUITES["mx1"].wrap(recipient, secret, info, SystemEntropy())
        assert openssl.decrypt(enc + wck, reader, info=info) == cek
        encs.add(enc)
    assert len(encs) == 3  # a fresh ephemeral key each time


def test_a_low_order_recipient_key_is_refused_by_the_c_wrap():
    for entropy in (SeededEntropy(b"seed"), SystemEntropy()):  # an ephemeral key given, or drawn in C
        with SecretBytes.random(32) as cek, pytest.raises(ValueError, match="low-order"):
            _suites.SUITES["mx1"].wrap(RecipientKey(KID, bytes(32)), cek, b"info", entropy)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=700))
def test_the_c_sha3_is_fips_202(data):
    # The mx2 combiner's hash in envcrypt.c against OpenSSL's (hashlib): every length class
    # of a 136-byte rate block shows up in 0..700 bytes.
    out = _suites._ffi.new("unsigned char[32]")
    _suites._lib.envc_sha3_256(data, len(data), out)
    assert bytes(out) == hashlib.sha3_256(data).digest()


def test_the_mx2_c_wrap_draws_a_fresh_x25519_key_and_the_reference_opens_it():
    suite = _suites.SUITES["mx2"]
    cek, info = os.urandom(32), b"wrap info"
    encs = set()
    for _ in range(3):
        with SecretBytes.copy_from(cek) as secret:
            enc, wck = suite.wrap(READER.recipient_key(KID), secret, info, SystemEntropy())
        with suite._unwrap(enc, wck, READER, info) as back:
            assert back.reveal() == cek
        encs.add(enc[-32:])
    assert len(encs) == 3


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
@pytest.mark.parametrize("size", [0, 1, _suites.NATIVE_PAYLOAD_MAX, _suites.NATIVE_PAYLOAD_MAX + 1],
                         ids=["empty", "one", "largest-in-c", "first-by-openssl"])
def test_payloads_decrypt_alike_in_the_unwrap_call_and_apart(suite_name, size, monkeypatch):
    # Up to NATIVE_PAYLOAD_MAX the payload is decrypted in the unwrap's C call; each path
    # opens the payload, and refuses it altered, with the same code as the reference.
    from milagro_node.core.envelope import DEFAULT_LIMITS, Ed25519SecretKey
    from milagro_node.core.envelope._format import COMMIT_SIZE, find_recipient, parse, wrap_info

    payload = os.urandom(size)
    sender = cid_for(b"sender", "dag-cbor")
    data = seal(payload, sign=Ed25519SecretKey.generate(), suite=suite_name, sender=sender, kind="test/native",
                recipients=[READER.recipient_key(KID)], created=NOW, expires=NOW + 60)
    parsed = parse(data, DEFAULT_LIMITS, _suites.SUITES)
    header, entry = parsed.header, find_recipient(parsed.header.recipients, KID)
    info = wrap_info(suite_name, header.id, header.sender, KID)
    suite = _suites.SUITES[suite_name]
    ct = bytes(parsed.payload)
    altered = ct[:COMMIT_SIZE] + bytes([ct[COMMIT_SIZE] ^ 1]) + ct[COMMIT_SIZE + 1:]
    for native in (True, False):
        monkeypatch.setattr(_suites, "NATIVE_WRAP", native)
        for reader in READERS.values():
            def opened(ct=ct, aad=parsed.header_bytes):
                return suite.open_payload(entry.enc, entry.wck, reader, info, memoryview(ct), aad)

            assert opened() == payload
            for bad in (dict(ct=altered), dict(aad=parsed.header_bytes + b"!")):
                with pytest.raises(EnvelopeError) as caught:
                    opened(**bad)
                assert caught.value.code == ErrorCode.DECRYPT_FAILED


@pytest.mark.parametrize("size", [0, 1, _suites.NATIVE_PAYLOAD_MAX, _suites.NATIVE_PAYLOAD_MAX + 1])
def test_the_c_payload_encryption_makes_the_reference_bytes(size, monkeypatch):
    payload, aad = os.urandom(size), b"the header"
    with SecretBytes.random(32) as cek:
        in_c = _suites.encrypt_payload(cek, payload, aad)
        monkeypatch.setattr(_suites, "NATIVE_WRAP", False)
        assert in_c == _suites.encrypt_payload(cek, payload, aad)
