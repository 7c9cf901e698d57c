"""Every tampering case is refused with its own error code, and no error carries plaintext.

Two kinds of attacker: one who changes bytes in transit (no signing key: the signature, or an
earlier check, must catch it), and one who re-signs what they changed — the sender itself
misbehaving, or another identity. The second kind reaches the checks after the signature,
so each of those (unwrap, decrypt, time, replay) is shown to hold on its own.

The signature is recomputed here from the spec's words (docs/envelope.md, "What is signed"),
not with the library's helper.
"""

import hashlib
import os

import dag_cbor
import pytest

from milagro_node.core.envelope import (
    DEFAULT_LIMITS, EnvelopeError, ErrorCode, Limits, ReplayCache, open_envelope, prepare_seal, seal,
    seal_public,
)
from milagro_node.core.envelope._cbor import read_envelope
from vectors.make_envelope_vectors import CREATED as NOW
from vectors.make_envelope_vectors import Party, SeededEntropy

MARKER = b"PLAINTEXT-MARKER-must-never-leak"
PAYLOAD = MARKER + b" the secret share"

# Codes an in-transit change can produce: everything up to and including the signature.
BEFORE_KEYS = {
    ErrorCode.TOO_LARGE, ErrorCode.MALFORMED, ErrorCode.NON_CANONICAL,
    ErrorCode.TOO_MANY_RECIPIENTS, ErrorCode.UNKNOWN_VERSION, ErrorCode.UNKNOWN_SUITE,
    ErrorCode.BAD_TIME_WINDOW, ErrorCode.UNKNOWN_SENDER, ErrorCode.BAD_SIGNATURE,
}


@pytest.fixture(scope="module")
def alice():
    return Party("alice")


@pytest.fixture(scope="module")
def bob():
    return Party("bob")


@pytest.fixture(scope="module")
def carol():
    return Party("carol")


@pytest.fixture(scope="module")
def mallory():
    return Party("mallory")


def sealed(payload: bytes, sender: Party, to: list[Party], suite: str, **kw) -> bytes:
    return seal(payload, sign=sender.signer, suite=suite, sender=sender.cid, kind="test/secret",
                recipients=[p.key for p in to], created=NOW, expires=NOW + 3600, **kw)


def resign(data: bytes, signer, **changes) -> bytes:
    """Change top-level fields (a value, or a function of the old one) and sign again."""
    value = dag_cbor.decode(data)
    for key, change in changes.items():
        value[key] = change(value[key]) if callable(change) else change
    payload = value["ct"] if "ct" in value else value["body"]
    header = dag_cbor.encode({k: v for k, v in value.items() if k not in ("ct", "body", "sig")})
    tbs = (b"milagro-envelope/v1/sig\x00" + len(header).to_bytes(8, "big") + header
           + hashlib.sha256(payload).digest())
    value["sig"] = signer(tbs)
    return dag_cbor.encode(value)


def refused(data: bytes, *, sender, reader, known=(), now: int = NOW + 10, replay=None,
            limits: Limits = DEFAULT_LIMITS) -> ErrorCode:
    """Open ``data``; it must fail with EnvelopeError and leak no plaintext. Returns the code."""
    keys = {p.cid: p.signer.public_key for p in (sender, *known)}
    with pytest.raises(EnvelopeError) as info:
        open_envelope(data, resolve_sender=keys.get, reader_kid=reader.cid if reader else None,
                      reader_keys=reader.reader if reader else None, now=now,
                      replay=replay if replay is not None else ReplayCache(), limits=limits)
    err = info.value
    chain = [err]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    for exc in chain:
        text = (str(exc) + repr(exc) + repr(exc.args)).encode("utf-8", "replace")
        assert MARKER not in text and MARKER.hex().encode() not in text
    assert not any(MARKER in a for a in err.args if isinstance(a, bytes))
    return err.code


def regions(data: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of each top-level value's *content* and of every enc/wck/kid content."""
    value, entries = read_envelope(data, DEFAULT_LIMITS)
    spans = {}
    for i, (key, start) in enumerate(entries):
        end = entries[i + 1][1] if i + 1 < len(entries) else len(data)
        spans[key] = (start, end)
    out = {}
    for key in ("id", "ct", "body", "sig"):
        if key in value:
            end = spans[key][1]
            out[key] = (end - len(value[key]), end)
    for n, r in enumerate(value.get("recipients", [])):
        for field in ("enc", "wck"):
            at = data.index(r[field])
            out[f"{field}{n}"] = (at, at + len(r[field]))
    return out


@pytest.fixture(scope="module", params=["mx1", "mx2"])
def small(request, alice, bob, carol):
    return request.param, sealed(PAYLOAD, alice, [bob, carol], request.param, seq=3)


def test_the_untampered_envelope_opens(small, alice, bob):
    suite, data = small
    opened = open_envelope(data, resolve_sender={alice.cid: alice.signer.public_key}.get,
                           reader_kid=bob.cid, reader_keys=bob.reader, now=NOW + 10,
                           replay=ReplayCache())
    assert opened.payload == PAYLOAD


# --- in transit: any changed byte ---------------------------------------------------------------


def test_every_byte_outside_the_ciphertext(small, alice, bob):
    """Each byte of header, recipients and signature, flipped two ways: refused before keys."""
    suite, data = small
    spans = regions(data)
    ct_start, ct_end = spans["ct"]
    signed_content = [spans[k] for k in spans if k != "ct"]
    for pos in [*range(ct_start), *range(ct_end, len(data))]:
        for mask in (0x01, 0x80):
            bad = data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1:]
            code = refused(bad, sender=alice, reader=bob)
            assert code in BEFORE_KEYS, (pos, code)
            if any(a <= pos < b for a, b in signed_content):  # inside id, enc, wck or sig bytes
                assert code == ErrorCode.BAD_SIGNATURE, (pos, code)


def test_ciphertext_bytes_sampled(alice, bob):
    data = sealed(os.urandom(4096) + PAYLOAD, alice, [bob], "mx1")
    start, end = regions(data)["ct"]
    positions = sorted({*range(start, start + 32), *range(end - 32, end), *range(start, end, 97)})
    for pos in positions:
        bad = data[:pos] + bytes([data[pos] ^ 0x04]) + data[pos + 1:]
        assert refused(bad, sender=alice, reader=bob) == ErrorCode.BAD_SIGNATURE


def test_every_truncation_and_an_extension(small, alice, bob):
    suite, data = small
    for cut in range(len(data)):
        assert refused(data[:cut], sender=alice, reader=bob) == ErrorCode.MALFORMED
    assert refused(data + b"\x00", sender=alice, reader=bob) == ErrorCode.MALFORMED


def test_sender_swapped(small, alice, bob, carol):
    suite, data = small
    value = dag_cbor.decode(data)
    value["sender"] = carol.cid  # carol is known to the reader, but did not sign this
    assert refused(dag_cbor.encode(value), sender=alice, reader=bob, known=[carol]) == ErrorCode.BAD_SIGNATURE
    value["sender"] = Party("nobody").cid
    assert refused(dag_cbor.encode(value), sender=alice, reader=bob) == ErrorCode.UNKNOWN_SENDER


def test_signature_from_another_envelope(small, alice, bob, carol):
    suite, data = small
    other = dag_cbor.decode(sealed(b"other", alice, [bob, carol], suite))
    value = dag_cbor.decode(data)
    value["sig"] = other["sig"]
    assert refused(dag_cbor.encode(value), sender=alice, reader=bob) == ErrorCode.BAD_SIGNATURE


def test_public_envelope_body_changed(alice):
    data = seal_public(b"announce: " + MARKER, sign=alice.signer, sender=alice.cid,
                       kind="pki/announce", created=NOW, expires=NOW + 60)
    start, end = regions(data)["body"]
    for pos in range(start, end):
        bad = data[:pos] + bytes([data[pos] ^ 0x20]) + data[pos + 1:]
        assert refused(bad, sender=alice, reader=None) == ErrorCode.BAD_SIGNATURE


def test_unknown_version_and_suite(small, alice, bob):
    suite, data = small
    # Refused before the signature is looked at: re-signing does not matter.
    assert refused(resign(data, alice.signer, v=2), sender=alice, reader=bob) == ErrorCode.UNKNOWN_VERSION
    assert refused(resign(data, alice.signer, suite="mx9"), sender=alice, reader=bob) == ErrorCode.UNKNOWN_SUITE
    value = dag_cbor.decode(data)
    value["suite"] = "zz1"
    assert refused(dag_cbor.encode(value), sender=alice, reader=bob) == ErrorCode.UNKNOWN_SUITE


def test_oversized(small, alice, bob, carol):
    suite, data = small
    assert refused(data, sender=alice, reader=bob,
                   limits=Limits(max_envelope_bytes=len(data) - 1)) == ErrorCode.TOO_LARGE
    assert refused(data, sender=alice, reader=bob,
                   limits=Limits(max_payload_bytes=len(PAYLOAD) - 1)) == ErrorCode.TOO_LARGE
    assert refused(data, sender=alice, reader=bob,
                   limits=Limits(max_recipients=1)) == ErrorCode.TOO_MANY_RECIPIENTS
    huge = b"\xa1\x62ct\x5a" + (1 << 30).to_bytes(4, "big")  # claims 1 GiB: refused from the head
    assert refused(huge, sender=alice, reader=bob) == ErrorCode.TOO_LARGE
    many = b"\xaa\x6arecipients\x99\xff\xff"  # a 65,535-item list, refused from the head
    assert refused(many, sender=alice, reader=bob) == ErrorCode.TOO_MANY_RECIPIENTS
    assert refused(b"\xa0" * (DEFAULT_LIMITS.max_envelope_bytes + 1), sender=alice, reader=bob) == ErrorCode.TOO_LARGE


def test_non_canonical_encodings(small, alice, bob):
    suite, data = small
    assert data[:3] == b"\xaa\x61v" or data[:3] == b"\xab\x61v"  # v is the first key
    entries = read_envelope(data, DEFAULT_LIMITS)[1]
    (k1, s1), (k2, s2), (k3, s3) = entries[:3]  # v, ct, id
    swapped = data[:1] + data[s2:s3] + data[s1:s2] + data[s3:]  # ct before v
    assert refused(swapped, sender=alice, reader=bob) == ErrorCode.NON_CANONICAL
    dup = bytes([data[0] + 1]) + data[s1:s2] + data[1:]  # v twice
    assert refused(dup, sender=alice, reader=bob) == ErrorCode.NON_CANONICAL
    assert data[s1:s1 + 3] == b"\x61v\x01"
    long_v = data[:s1] + b"\x61v\x18\x01" + data[s1 + 3:]  # 1 in a one-byte argument
    assert refused(long_v, sender=alice, reader=bob) == ErrorCode.NON_CANONICAL
    value = dag_cbor.decode(data)
    indefinite = data.replace(b"\x50" + value["id"], b"\x5f\x50" + value["id"] + b"\xff")
    assert refused(indefinite, sender=alice, reader=bob) == ErrorCode.NON_CANONICAL


def test_malformed_shapes(alice, bob):
    base = dag_cbor.decode(sealed(b"p", alice, [bob], "mx1"))
    cases = [
        {**base, "body": b"x"},  # ct and body
        {k: v for k, v in base.items() if k != "recipients"},  # ct without recipients
        {**base, "extra": 1},
        {**base, "id": b"short"},
        {**base, "created": -1},
        {**base, "kind": 7},
        {**base, "recipients": []},
        {**base, "recipients": [base["recipients"][0], base["recipients"][0]]},  # duplicate kid
        {**base, "recipients": [{**base["recipients"][0], "enc": b"\x00" * 31}]},
        {**base, "recipients": [base["recipients"]]},  # a list in the list: too deep
        {**base, "recipients": [{**base["recipients"][0], "x": 1}]},
        {**base, "sig": b"\x00" * 63},
        {**base, "sender": "Qm" + "1" * 44},
        {**base, "seq": True},
    ]
    for value in cases:
        assert refused(dag_cbor.encode(value), sender=alice, reader=bob) == ErrorCode.MALFORMED
    for blob in (b"", b"\x80", b"\xf6", b"\xc1\xa0", b"\xa1\x01\x02", b"\xa1\x61v\xf9\x3c\x00"):
        assert refused(blob, sender=alice, reader=bob) == ErrorCode.MALFORMED
    assert refused(dag_cbor.encode({**base, "expires": base["created"]}), sender=alice,
                   reader=bob) == ErrorCode.BAD_TIME_WINDOW


# --- re-signed: the checks after the signature, one by one --------------------------------------


def test_resigned_by_another_identity(small, alice, bob, mallory):
    suite, data = small
    # Keeping alice as sender: the signature does not verify under alice's key.
    assert refused(resign(data, mallory.signer), sender=alice, reader=bob) == ErrorCode.BAD_SIGNATURE
    # Claiming the envelope as mallory's own: the wrapped keys are bound to alice as sender.
    stolen = resign(data, mallory.signer, sender=mallory.cid)
    assert refused(stolen, sender=mallory, reader=bob) == ErrorCode.UNWRAP_FAILED


def test_time_replay_and_recipient(small, alice, bob, mallory):
    suite, data = small
    skew = DEFAULT_LIMITS.clock_skew
    assert refused(data, sender=alice, reader=bob, now=NOW + 3600 + skew) == ErrorCode.EXPIRED
    assert refused(data, sender=alice, reader=bob, now=NOW - skew - 1) == ErrorCode.NOT_YET_VALID
    replay = ReplayCache()
    open_envelope(data, resolve_sender={alice.cid: alice.signer.public_key}.get, reader_kid=bob.cid,
                  reader_keys=bob.reader, now=NOW + 10, replay=replay)
    assert refused(data, sender=alice, reader=bob, replay=replay) == ErrorCode.REPLAYED
    assert refused(data, sender=alice, reader=mallory) == ErrorCode.NOT_A_RECIPIENT


def test_listed_kid_with_the_wrong_keys(small, alice, bob, carol):
    suite, data = small

    class Impostor:  # claims bob's kid, holds carol's keys
        cid, reader = bob.cid, carol.reader

    assert refused(data, sender=alice, reader=Impostor) == ErrorCode.UNWRAP_FAILED


def _recipients(change):
    def apply(items):
        items = [dict(r) for r in items]
        change(items)
        return items
    return apply


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_enc_altered_and_resigned(small, alice, bob, where):
    suite, data = small
    n = len(dag_cbor.decode(data)["recipients"][0]["enc"])
    at = {"first": 0, "middle": n // 2, "last": n - 1}[where]
    bad = resign(data, alice.signer, recipients=_recipients(lambda rs: rs[0].update(enc=_flip(rs[0]["enc"], at))))
    assert refused(bad, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED


def test_hybrid_either_half_altered(alice, bob):
    data = sealed(PAYLOAD, alice, [bob], "mx2")
    for at in (0, 500, 1087):  # the ML-KEM-768 ciphertext (implicit rejection)
        bad = resign(data, alice.signer, recipients=_recipients(lambda rs: rs[0].update(enc=_flip(rs[0]["enc"], at))))
        assert refused(bad, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED
    for at in (1088, 1100, 1119):  # the X25519 ephemeral key
        bad = resign(data, alice.signer, recipients=_recipients(lambda rs: rs[0].update(enc=_flip(rs[0]["enc"], at))))
        assert refused(bad, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED
    # Each half replaced wholesale: zeros (X25519's zero point is low-order), or another
    # envelope's half for the same recipient.
    other = dag_cbor.decode(sealed(PAYLOAD, alice, [bob], "mx2"))["recipients"][0]["enc"]
    for swap in (lambda e: bytes(1088) + e[1088:], lambda e: e[:1088] + bytes(32),
                 lambda e: other[:1088] + e[1088:], lambda e: e[:1088] + other[1088:]):
        bad = resign(data, alice.signer, recipients=_recipients(lambda rs: rs[0].update(enc=swap(rs[0]["enc"]))))
        assert refused(bad, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED


def test_classical_low_order_enc(alice, bob):
    data = sealed(PAYLOAD, alice, [bob], "mx1")
    bad = resign(data, alice.signer, recipients=_recipients(lambda rs: rs[0].update(enc=bytes(32))))
    assert refused(bad, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED


def test_wck_altered_or_moved(small, alice, bob, carol):
    suite, data = small
    bad = resign(data, alice.signer, recipients=_recipients(lambda rs: rs[0].update(wck=_flip(rs[0]["wck"], 5))))
    assert refused(bad, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED
    # Carol's wrapped key under bob's kid: the HPKE info names the recipient.
    def swap(rs):
        rs[0]["enc"], rs[1]["enc"] = rs[1]["enc"], rs[0]["enc"]
        rs[0]["wck"], rs[1]["wck"] = rs[1]["wck"], rs[0]["wck"]
    assert refused(resign(data, alice.signer, recipients=_recipients(swap)), sender=alice,
                   reader=bob) == ErrorCode.UNWRAP_FAILED
    # Bob's entry from another envelope: the HPKE info names the envelope id.
    other = dag_cbor.decode(sealed(b"other", alice, [bob, carol], suite))["recipients"][0]
    moved = resign(data, alice.signer, recipients=_recipients(lambda rs: rs.__setitem__(0, other)))
    assert refused(moved, sender=alice, reader=bob) == ErrorCode.UNWRAP_FAILED


def test_ciphertext_or_header_altered_and_resigned(small, alice, bob, carol):
    suite, data = small
    for at in (0, 31, 32, 40, -1):  # the key commitment, then the AES-GCM ciphertext and tag
        assert refused(resign(data, alice.signer, ct=lambda ct: _flip(ct, at % len(ct))),
                       sender=alice, reader=bob) == ErrorCode.DECRYPT_FAILED
    assert refused(resign(data, alice.signer, ct=lambda ct: ct[:-1]), sender=alice,
                   reader=bob) == ErrorCode.DECRYPT_FAILED
    # The header is the payload's associated data: any header change the sender re-signs,
    # but that leaves the wrapped keys intact, still fails to decrypt.
    for change in (dict(kind="test/other"), dict(created=NOW + 1), dict(seq=4),
                   dict(recipients=lambda rs: rs[::-1]), dict(recipients=lambda rs: rs[:1])):
        assert refused(resign(data, alice.signer, **change), sender=alice,
                       reader=bob) == ErrorCode.DECRYPT_FAILED, change


def test_public_and_encrypted_shapes_do_not_mix(alice, bob):
    data = sealed(PAYLOAD, alice, [bob], "mx1")
    value = dag_cbor.decode(data)
    # Turning the ciphertext into a "public body" (re-signed) is malformed: body excludes recipients.
    value["body"] = value.pop("ct")
    assert refused(dag_cbor.encode(value), sender=alice, reader=bob) == ErrorCode.MALFORMED
    del value["recipients"]
    assert refused(dag_cbor.encode(value), sender=alice, reader=bob) == ErrorCode.BAD_SIGNATURE


def test_key_commitment_binds_every_recipient_to_one_content_key(alice, bob, carol):
    """A sender wrapping different content keys to different recipients is caught.

    AES-GCM alone is not key-committing (a ciphertext can be built to open under two keys),
    so without the commitment that starts ct, bob and carol could read different plaintexts
    under one envelope CID. Here carol's entry comes from another envelope with the same id,
    so it unwraps (same HPKE info) to another content key: the commitment refuses it before
    AES-GCM is tried.
    """
    data = sealed(PAYLOAD, alice, [bob, carol], "mx1")
    envelope_id = dag_cbor.decode(data)["id"]

    class SameId(SeededEntropy):
        def random_bytes(self, n):
            return envelope_id

    other = prepare_seal(b"x", suite="mx1", sender=alice.cid, kind="test/secret",
                         recipients=[bob.key, carol.key], created=NOW, expires=NOW + 3600,
                         entropy=SameId(b"seed"))
    carols_other_key = other.header.recipients[1]
    mixed = resign(data, alice.signer, recipients=lambda rs: [
        rs[0], {"kid": carol.cid, "enc": carols_other_key.enc, "wck": carols_other_key.wck}])
    keys = {alice.cid: alice.signer.public_key}
    with pytest.raises(EnvelopeError) as err:
        open_envelope(mixed, resolve_sender=keys.get, reader_kid=carol.cid, reader_keys=carol.reader,
                      now=NOW + 10, replay=ReplayCache())
    assert err.value.code == ErrorCode.DECRYPT_FAILED and "commitment" in err.value.message
