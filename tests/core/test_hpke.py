"""milagro_node.core.hpke against RFC 9180's test vectors and against OpenSSL's HPKE.

The vector files (tests/vectors/rfc9180_*.json) hold Appendix A.1 (AES-128-GCM) and A.2
(ChaCha20Poly1305) base-mode values for DHKEM(X25519, HKDF-SHA256); their provenance note
says how they were checked. Interop: `cryptography`'s HPKE (OpenSSL) must open what we seal
and we must open what it seals, with and without associated data.
"""

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke as ossl_hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from milagro_node.core import hpke
from milagro_node.secret_memory import SecretBytes

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
RFC_FILES = sorted(VECTORS.glob("rfc9180_*.json"))
AEADS = {1: hpke.AES_128_GCM, 2: hpke.AES_256_GCM, 3: hpke.CHACHA20_POLY1305}
OSSL_AEADS = {1: ossl_hpke.AEAD.AES_128_GCM, 2: ossl_hpke.AEAD.AES_256_GCM,
              3: ossl_hpke.AEAD.CHACHA20_POLY1305}
H = bytes.fromhex


def secret(hex_text: str) -> SecretBytes:
    return SecretBytes.copy_from(H(hex_text))


@pytest.fixture(params=RFC_FILES, ids=lambda p: p.stem)
def vector(request) -> dict:
    return json.loads(request.param.read_text())


def test_both_appendix_files_are_present():
    assert [p.name for p in RFC_FILES] == [
        "rfc9180_a1_x25519_sha256_aes128gcm.json",
        "rfc9180_a2_x25519_sha256_chacha20poly1305.json",
    ]


def test_rfc9180_derive_key_pair(vector):
    kem = hpke.DHKEM_X25519
    for who in "ER":
        sk, pk = kem.derive_key_pair(H(vector[f"ikm{who}"]))
        assert sk == H(vector[f"sk{who}m"])  # SecretBytes compares in constant time
        assert pk == H(vector[f"pk{who}m"])


def test_rfc9180_encap_and_key_schedule(vector):
    assert (vector["mode"], vector["kem_id"], vector["kdf_id"]) == (0, 0x20, 1)
    suite = hpke.Suite(hpke.DHKEM_X25519, AEADS[vector["aead_id"]])
    shared, enc = hpke.DHKEM_X25519.encap(H(vector["pkRm"]), secret(vector["skEm"]))
    assert enc == H(vector["enc"]) == H(vector["pkEm"])
    assert shared == H(vector["shared_secret"])
    info = H(vector["info"])
    if "key_schedule_context" in vector:
        assert hpke.key_schedule_context(suite, info) == H(vector["key_schedule_context"])
    assert hpke.labeled_extract(suite.suite_id, shared.reveal(), b"secret", b"") == H(vector["secret"])
    schedule = hpke.key_schedule(suite, shared, info)
    assert schedule.key == H(vector["key"])
    assert schedule.base_nonce == H(vector["base_nonce"])
    assert schedule.exporter_secret == H(vector["exporter_secret"])


def test_rfc9180_decap(vector):
    recipient = hpke.X25519SecretKey(secret(vector["skRm"]))
    assert recipient.x25519_public == H(vector["pkRm"])
    assert hpke.DHKEM_X25519.decap(H(vector["enc"]), recipient) == H(vector["shared_secret"])


def test_rfc9180_sealed_messages_and_exports(vector):
    suite = hpke.Suite(hpke.DHKEM_X25519, AEADS[vector["aead_id"]])
    info = H(vector["info"])
    enc, sender = hpke.setup_base_sender(suite, H(vector["pkRm"]), info,
                                         ephemeral=secret(vector["skEm"]))
    receiver = hpke.setup_base_recipient(suite, enc, hpke.X25519SecretKey(secret(vector["skRm"])), info)
    for item in sorted(vector["encryptions"], key=lambda e: e["sequence_number"]):
        # The file lists sequence numbers 0, 1, 2... without gaps, so the contexts stay aligned.
        assert sender.seq == receiver.seq == item["sequence_number"]
        ct = sender.seal(H(item["aad"]), H(item["pt"]))
        assert ct == H(item["ct"])
        assert receiver.open(H(item["aad"]), ct) == H(item["pt"])
    for item in vector["exports"]:
        expected = H(item["exported_value"])
        assert sender.export(H(item["exporter_context"]), item["L"]) == expected
        assert receiver.export(H(item["exporter_context"]), item["L"]) == expected


def test_rfc9180_first_ciphertext_opens_in_openssl(vector):
    """The vector file itself, checked by an independent implementation."""
    first = vector["encryptions"][0]
    assert first["sequence_number"] == 0
    suite = ossl_hpke.Suite(ossl_hpke.KEM.X25519, ossl_hpke.KDF.HKDF_SHA256, OSSL_AEADS[vector["aead_id"]])
    sk = X25519PrivateKey.from_private_bytes(H(vector["skRm"]))
    decrypt = _ossl_with_aad()[1]
    assert decrypt(suite, H(vector["enc"]) + H(first["ct"]), sk, info=H(vector["info"]),
                   aad=H(first["aad"])) == H(first["pt"])


# --- interoperability with OpenSSL's HPKE --------------------------------------------------


def _ossl_with_aad():
    # cryptography's public HPKE API has no AAD; its Rust binding exposes these for tests.
    from cryptography.hazmat.bindings._rust import openssl as rust_openssl

    if not hasattr(rust_openssl.hpke, "_encrypt_with_aad"):
        pytest.skip("this cryptography build has no HPKE-with-AAD test hooks")
    return rust_openssl.hpke._encrypt_with_aad, rust_openssl.hpke._decrypt_with_aad


@pytest.mark.parametrize("aead_id", [1, 2, 3])
@pytest.mark.parametrize("aad", [b"", b"header bytes"])
@pytest.mark.parametrize("size", [0, 1, 32, 4096])
def test_interop_with_openssl_both_directions(aead_id, aad, size):
    ours = hpke.Suite(hpke.DHKEM_X25519, AEADS[aead_id])
    theirs = ossl_hpke.Suite(ossl_hpke.KEM.X25519, ossl_hpke.KDF.HKDF_SHA256, OSSL_AEADS[aead_id])
    encrypt, decrypt = _ossl_with_aad()
    recipient = hpke.X25519SecretKey.generate()
    ossl_sk = X25519PrivateKey.from_private_bytes(recipient.secret.reveal())
    info, plaintext = os.urandom(20), os.urandom(size)

    enc, ct = hpke.seal_base(ours, recipient.x25519_public, info, aad, plaintext)
    assert decrypt(theirs, enc + ct, ossl_sk, info=info, aad=aad) == plaintext
    if not aad:
        assert theirs.decrypt(enc + ct, ossl_sk, info=info) == plaintext

    blob = encrypt(theirs, plaintext, ossl_sk.public_key(), info=info, aad=aad)
    assert hpke.open_base(ours, blob[:32], recipient, info, aad, blob[32:]) == plaintext
    if not aad:
        blob = theirs.encrypt(plaintext, ossl_sk.public_key(), info=info)
        assert hpke.open_base(ours, blob[:32], recipient, info, aad, blob[32:]) == plaintext


# --- failures ------------------------------------------------------------------------------


def _sealed(aead=hpke.AES_256_GCM):
    suite = hpke.Suite(hpke.DHKEM_X25519, aead)
    recipient = hpke.X25519SecretKey.generate()
    enc, ct = hpke.seal_base(suite, recipient.x25519_public, b"info", b"aad", b"the plaintext")
    return suite, recipient, enc, ct


def test_open_refuses_every_alteration():
    suite, recipient, enc, ct = _sealed()
    assert hpke.open_base(suite, enc, recipient, b"info", b"aad", ct) == b"the plaintext"
    flipped_enc = bytes([enc[0] ^ 1]) + enc[1:]
    flipped_ct = ct[:-1] + bytes([ct[-1] ^ 0x80])
    cases = [
        (enc, hpke.X25519SecretKey.generate(), b"info", b"aad", ct),  # another key
        (flipped_enc, recipient, b"info", b"aad", ct),
        (enc, recipient, b"other", b"aad", ct),
        (enc, recipient, b"info", b"AAD", ct),
        (enc, recipient, b"info", b"aad", flipped_ct),
        (enc, recipient, b"info", b"aad", ct[:-1]),
        (bytes(32), recipient, b"info", b"aad", ct),  # low-order point: all-zero DH
        (enc[:31], recipient, b"info", b"aad", ct),  # wrong length
    ]
    for case in cases:
        with pytest.raises(hpke.HpkeError) as err:
            hpke.open_base(suite, *case)
        assert b"the plaintext" not in str(err.value).encode()


def test_failed_open_does_not_advance_the_sequence():
    suite = hpke.Suite(hpke.DHKEM_X25519, hpke.CHACHA20_POLY1305)
    recipient = hpke.X25519SecretKey.generate()
    enc, sender = hpke.setup_base_sender(suite, recipient.x25519_public, b"")
    receiver = hpke.setup_base_recipient(suite, enc, recipient, b"")
    first, second = sender.seal(b"", b"one"), sender.seal(b"", b"two")
    with pytest.raises(hpke.HpkeError):
        receiver.open(b"", second)  # out of order
    assert receiver.seq == 0
    assert receiver.open(b"", first) == b"one" and receiver.open(b"", second) == b"two"


def test_encap_refuses_bad_public_keys():
    with pytest.raises(hpke.HpkeError):
        hpke.DHKEM_X25519.encap(bytes(32))  # low-order
    with pytest.raises(hpke.HpkeError):
        hpke.DHKEM_X25519.encap(b"short")


def test_secrets_are_secret_bytes_and_injected_ephemeral_is_not_closed():
    recipient = hpke.X25519SecretKey.generate()
    eph = SecretBytes.random(32)
    shared, enc = hpke.DHKEM_X25519.encap(recipient.x25519_public, eph)
    assert isinstance(shared, SecretBytes) and not eph.closed  # the caller owns what it passes
    assert hpke.DHKEM_X25519.decap(enc, recipient) == shared
    with pytest.raises(TypeError):
        bytes(shared)


def test_labeled_expand_bounds():
    with pytest.raises(ValueError):
        hpke.labeled_expand(b"x", bytes(32), b"l", b"", 255 * 32 + 1)
    assert len(hpke.labeled_expand(b"x", bytes(32), b"l", b"", 255 * 32)) == 255 * 32


def test_secret_key_dh_equals_openssl_and_refuses_bad_points():
    # X25519SecretKey computes its DH with libsodium: the same function as OpenSSL's.
    recipient = hpke.X25519SecretKey.generate()
    ours = X25519PrivateKey.from_private_bytes(recipient.secret.reveal())
    for _ in range(20):
        peer = X25519PrivateKey.generate().public_key()
        with recipient.x25519(peer.public_bytes_raw()) as shared:
            assert shared == ours.exchange(peer)
    low_order = H("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
    for bad in (bytes(32), low_order, bytes(31), bytes(33)):
        with pytest.raises(ValueError):
            recipient.x25519(bad)


@pytest.mark.parametrize("aead", [hpke.AES_128_GCM, hpke.AES_256_GCM, hpke.CHACHA20_POLY1305],
                         ids=lambda a: a.name)
def test_single_shot_secret_functions_are_base_mode_with_empty_aad(aead):
    suite = hpke.Suite(hpke.DHKEM_X25519, aead)
    recipient = hpke.X25519SecretKey.generate()
    plaintext = SecretBytes.random(32)
    ephemeral = SecretBytes.random(32)
    enc, ct = hpke.seal_secret(suite, recipient.x25519_public, b"info", plaintext, ephemeral=ephemeral)
    assert (enc, ct) == hpke.seal_base(suite, recipient.x25519_public, b"info", b"", plaintext.reveal(),
                                       ephemeral=ephemeral)
    with hpke.open_secret(suite, enc, recipient, b"info", ct) as opened:
        assert isinstance(opened, SecretBytes) and opened == plaintext
    with pytest.raises(hpke.HpkeError):
        hpke.open_secret(suite, enc, recipient, b"other info", ct)
    with pytest.raises(hpke.HpkeError):
        hpke.open_secret(suite, enc, recipient, b"info", ct[:-1] + bytes([ct[-1] ^ 1]))
