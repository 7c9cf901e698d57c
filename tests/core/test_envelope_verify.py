"""verify_envelope / open_verified / public_body: the split a router uses (validate, then open)."""

import pytest

from milagro_node.core.envelope import (
    EnvelopeError, ErrorCode, open_verified, public_body, seal, seal_public, verify_envelope,
)
from vectors.make_envelope_vectors import CREATED as NOW
from vectors.make_envelope_vectors import Party


@pytest.fixture(scope="module")
def alice() -> Party:
    return Party("alice")


@pytest.fixture(scope="module")
def bob() -> Party:
    return Party("bob")


def sealed(sender: Party, reader: Party, payload: bytes = b"share") -> bytes:
    return seal(payload, sign=sender.signer, suite="mx1", sender=sender.cid, kind="test/secret",
                recipients=[reader.key], created=NOW, expires=NOW + 3600, seq=7)


def test_verify_then_open_gives_the_payload(alice, bob):
    data = sealed(alice, bob)
    verified = verify_envelope(data, resolve_sender={alice.cid: alice.signer.public_key}.get, now=NOW + 1)
    assert verified.header.seq == 7 and verified.until == NOW + 3600 + 300
    assert verified.cid.startswith("bafyrei")
    opened = open_verified(verified, reader_kid=bob.cid, reader_keys=bob.reader)
    assert opened.payload == b"share" and opened.cid == verified.cid


def test_verify_uses_no_reader_key_and_checks_signature_and_time(alice, bob):
    data = sealed(alice, bob)
    with pytest.raises(EnvelopeError) as err:
        verify_envelope(data, resolve_sender=lambda _: bob.signer.public_key, now=NOW + 1)
    assert err.value.code == ErrorCode.BAD_SIGNATURE
    with pytest.raises(EnvelopeError) as err:
        verify_envelope(data, resolve_sender={alice.cid: alice.signer.public_key}.get, now=NOW + 3600 + 301)
    assert err.value.code == ErrorCode.EXPIRED
    with pytest.raises(EnvelopeError) as err:
        verify_envelope(data, resolve_sender=lambda _: None, now=NOW)
    assert err.value.code == ErrorCode.UNKNOWN_SENDER


def test_open_verified_refuses_a_non_recipient(alice, bob):
    verified = verify_envelope(sealed(alice, bob), resolve_sender=lambda _: alice.signer.public_key, now=NOW)
    with pytest.raises(EnvelopeError) as err:
        open_verified(verified, reader_kid=alice.cid, reader_keys=alice.reader)
    assert err.value.code == ErrorCode.NOT_A_RECIPIENT


def test_public_body_reads_a_public_envelope_only(alice, bob):
    data = seal_public(b"log bytes", sign=alice.signer, sender=alice.cid, kind="pki.announce",
                       created=NOW, expires=NOW + 60)
    assert public_body(data) == b"log bytes"
    with pytest.raises(EnvelopeError) as err:
        public_body(sealed(alice, bob))
    assert err.value.code == ErrorCode.MALFORMED
    with pytest.raises(EnvelopeError):
        public_body(b"\x00not an envelope")
