"""Envelope v1: round trips, the two-step (HSM) sealing API, public envelopes, limits, replay cache.

Tampering lives in test_envelope_tamper.py, fuzzing in test_envelope_fuzz.py and the fixed
vectors in test_envelope_vectors.py. Identities come from the vector generator (fixed seeds),
so every test runs on the same keys.
"""

import os

import dag_cbor
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from milagro_node.core.envelope import (
    DEFAULT_LIMITS, Ed25519SecretKey, EnvelopeError, ErrorCode, Limits, LocalReaderKeys,
    OpenedEnvelope, RecipientKey, ReplayCache, SealDraft, envelope_cid, inspect_envelope,
    open_envelope, prepare_public, prepare_seal, seal, seal_public,
)
from milagro_node.core.envelope._format import encode_header
from milagro_node.core.ipld import cid_for
from milagro_node.secret_memory import SecretBytes
from vectors.make_envelope_vectors import CREATED as NOW
from vectors.make_envelope_vectors import Party

SIZES = [0, 1, 1024, 64 * 1024, 1 << 20]
COUNTS = [1, 2, 10, 50]


@pytest.fixture(scope="module")
def alice() -> Party:
    return Party("alice")


@pytest.fixture(scope="module")
def readers() -> list[Party]:
    return [Party(f"reader-{i}") for i in range(max(COUNTS))]


def resolver(*parties: Party):
    keys = {p.cid: p.signer.public_key for p in parties}
    return keys.get


def open_as(data: bytes, sender: Party, reader: Party | None, *, now: int = NOW + 10,
            replay: ReplayCache | None = None, limits: Limits = DEFAULT_LIMITS) -> OpenedEnvelope:
    return open_envelope(
        data, resolve_sender=resolver(sender), reader_kid=reader.cid if reader else None,
        reader_keys=reader.reader if reader else None, now=now,
        replay=replay if replay is not None else ReplayCache(), limits=limits,
    )


def sealed(payload: bytes, sender: Party, to: list[Party], suite: str = "mx1", **kw) -> bytes:
    args = dict(sign=sender.signer, suite=suite, sender=sender.cid, kind="test/secret",
                recipients=[p.key for p in to], created=NOW, expires=NOW + 3600)
    args.update(kw)
    return seal(payload, **args)


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ["mx1", "mx2"])
@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_round_trip(suite, count, size, alice, readers):
    payload = os.urandom(size)
    to = readers[:count]
    data = sealed(payload, alice, to, suite, seq=count)
    header = inspect_envelope(data)
    assert (header.suite, header.sender, header.seq, header.kind) == (suite, alice.cid, count, "test/secret")
    assert [r.kid for r in header.recipients] == [p.cid for p in to]
    assert header.payload_size == size + 48 and not header.public
    # Every recipient opens it; a large payload is opened by a sample to keep the suite fast.
    openers = to if size <= 64 * 1024 else to[:: max(1, count // 3)]
    for reader in openers:
        opened = open_as(data, alice, reader)
        assert opened.payload == payload
        assert opened.header == header
        assert opened.cid == cid_for(data, "dag-cbor") == envelope_cid(data)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_public_round_trip(size, alice, readers):
    body = os.urandom(size)
    data = seal_public(body, sign=alice.signer, sender=alice.cid, kind="pki/announce",
                       created=NOW, expires=NOW + 60, seq=9)
    header = inspect_envelope(data)
    assert header.public and header.recipients == () and header.payload_size == size
    assert dag_cbor.decode(data)["body"] == body  # in clear, by design
    # Anyone opens it, with or without reader keys.
    assert open_as(data, alice, None).payload == body
    assert open_as(data, alice, readers[0]).payload == body


def test_one_seal_many_readers_same_bytes(alice, readers):
    data = sealed(b"x" * 100, alice, readers[:3], "mx2")
    cids = {open_as(data, alice, r).cid for r in readers[:3]}
    assert cids == {envelope_cid(data)}


def test_seals_are_randomised(alice, readers):
    a = sealed(b"same", alice, readers[:1])
    b = sealed(b"same", alice, readers[:1])
    assert a != b and inspect_envelope(a).id != inspect_envelope(b).id


# --- the two-step (HSM) API ------------------------------------------------------------------


def test_prepare_then_finish_with_an_external_signature(alice, readers):
    draft = prepare_seal(b"hsm signed", suite="mx2", sender=alice.cid, kind="dta/share",
                         recipients=[readers[0].key], created=NOW, expires=NOW + 60, seq=0)
    assert isinstance(draft, SealDraft) and isinstance(draft.to_be_signed, bytes)
    assert draft.to_be_signed.startswith(b"milagro-envelope/v1/sig\x00")
    assert b"hsm signed" not in draft.to_be_signed and b"hsm signed" not in repr(draft).encode()
    signature = alice.signer(draft.to_be_signed)  # stands in for the HSM worker
    data = draft.finish(signature, verify_with=alice.signer.public_key)
    assert open_as(data, alice, readers[0]).payload == b"hsm signed"
    assert draft.finish(signature) == data  # finishing is deterministic


def test_finish_refuses_bad_signatures(alice, readers):
    draft = prepare_public(b"x", sender=alice.cid, kind="k", created=NOW, expires=NOW + 1)
    with pytest.raises(EnvelopeError) as err:
        draft.finish(b"\x00" * 63)
    assert err.value.code == ErrorCode.MALFORMED
    with pytest.raises(EnvelopeError) as err:
        draft.finish(readers[0].signer(draft.to_be_signed), verify_with=alice.signer.public_key)
    assert err.value.code == ErrorCode.BAD_SIGNATURE


def test_header_bytes_are_the_canonical_header(alice, readers):
    draft = prepare_seal(b"p", suite="mx1", sender=alice.cid, kind="k", recipients=[readers[0].key],
                         created=NOW, expires=NOW + 1)
    assert draft.header_bytes == encode_header(draft.header)
    value = dag_cbor.decode(draft.finish(alice.signer(draft.to_be_signed)))
    del value["ct"], value["sig"]
    assert dag_cbor.encode(value) == draft.header_bytes


# --- seal refuses what open would refuse, with the same code --------------------------------


@pytest.mark.parametrize("change, code", [
    (dict(suite="mx9"), ErrorCode.UNKNOWN_SUITE),
    (dict(kind=""), ErrorCode.MALFORMED),
    (dict(kind="bad kind!"), ErrorCode.MALFORMED),
    (dict(kind="k" * 65), ErrorCode.TOO_LARGE),
    (dict(expires=NOW), ErrorCode.BAD_TIME_WINDOW),
    (dict(expires=NOW + 8 * 86400), ErrorCode.BAD_TIME_WINDOW),
    (dict(seq=-1), ErrorCode.MALFORMED),
    (dict(sender="not-a-cid"), ErrorCode.MALFORMED),
    (dict(recipients=[]), ErrorCode.MALFORMED),
    (dict(payload=b"x" * ((1 << 20) + 1)), ErrorCode.TOO_LARGE),
])
def test_seal_input_errors(change, code, alice, readers):
    args = dict(payload=b"p", suite="mx1", sender=alice.cid, kind="k",
                recipients=[readers[0].key], created=NOW, expires=NOW + 60)
    args.update(change)
    with pytest.raises(EnvelopeError) as err:
        prepare_seal(args.pop("payload"), **args)
    assert err.value.code == code


def test_seal_refuses_duplicate_and_too_many_recipients(alice, readers):
    with pytest.raises(EnvelopeError) as err:
        sealed(b"p", alice, [readers[0], readers[0]])
    assert err.value.code == ErrorCode.MALFORMED
    with pytest.raises(EnvelopeError) as err:
        sealed(b"p", alice, readers[:3], limits=Limits(max_recipients=2))
    assert err.value.code == ErrorCode.TOO_MANY_RECIPIENTS


def test_seal_refuses_unusable_recipient_keys(alice, readers):
    classical_only = RecipientKey(readers[0].cid, readers[0].key.x25519)
    assert open_as(sealed(b"p", alice, [readers[0]]), alice, readers[0]).payload == b"p"
    with pytest.raises(ValueError):
        seal(b"p", sign=alice.signer, suite="mx2", sender=alice.cid, kind="k",
             recipients=[classical_only], created=NOW, expires=NOW + 1)
    low_order = RecipientKey(readers[0].cid, bytes(32))
    with pytest.raises(ValueError):
        seal(b"p", sign=alice.signer, suite="mx1", sender=alice.cid, kind="k",
             recipients=[low_order], created=NOW, expires=NOW + 1)


def test_mx1_works_for_a_reader_without_a_post_quantum_key(alice):
    reader = LocalReaderKeys.generate(post_quantum=False)
    kid = readers_kid = cid_for(b"\xa1anbpq", "dag-cbor")
    data = seal(b"classic", sign=alice.signer, suite="mx1", sender=alice.cid, kind="k",
                recipients=[reader.recipient_key(kid)], created=NOW, expires=NOW + 60)
    opened = open_envelope(data, resolve_sender=resolver(alice), reader_kid=readers_kid,
                           reader_keys=reader, now=NOW, replay=ReplayCache())
    assert opened.payload == b"classic"


# --- time window, replay ------------------------------------------------------------------------


def test_time_window_edges(alice, readers):
    data = sealed(b"p", alice, readers[:1], created=NOW, expires=NOW + 100)
    skew = DEFAULT_LIMITS.clock_skew
    for now in (NOW - skew, NOW, NOW + 100 + skew - 1):
        assert open_as(data, alice, readers[0], now=now).payload == b"p"
    for now, code in ((NOW - skew - 1, ErrorCode.NOT_YET_VALID), (NOW + 100 + skew, ErrorCode.EXPIRED)):
        with pytest.raises(EnvelopeError) as err:
            open_as(data, alice, readers[0], now=now)
        assert err.value.code == code


def test_replay_cache_in_open(alice, readers):
    replay = ReplayCache()
    data = sealed(b"p", alice, readers[:2])
    open_as(data, alice, readers[0], replay=replay)
    with pytest.raises(EnvelopeError) as err:
        open_as(data, alice, readers[1], replay=replay)
    assert err.value.code == ErrorCode.REPLAYED
    # A failed open does not burn the id: a reader that was not a recipient, then one that is.
    other = sealed(b"q", alice, readers[:1])
    with pytest.raises(EnvelopeError):
        open_as(other, alice, readers[1], replay=replay)
    assert open_as(other, alice, readers[0], replay=replay).payload == b"q"


def test_replay_cache_expiry_bound_and_floor():
    cache = ReplayCache(max_entries=3)
    for i in range(3):
        cache.remember("s", bytes([i]), until=100 + i, now=0)
    assert cache.is_replay("s", b"\x00", 100, now=50) and not cache.is_replay("t", b"\x00", 100, now=50)
    # Full and nothing expired: the soonest entry goes and the floor rises to its expiry.
    cache.remember("s", b"\x03", until=200, now=50)
    assert len(cache) == 3 and cache.floor == 100
    assert cache.is_replay("s", b"\x00", 100, now=50)  # forgotten, but below the floor: refused
    assert not cache.is_replay("s", b"\x09", 150, now=50)
    # Once entries expire they are all dropped first (\x01, \x02 here) and the floor stays.
    cache.remember("s", b"\x04", until=300, now=150)
    assert len(cache) == 2 and cache.floor == 100
    assert not cache.is_replay("s", b"\x01", 101, now=150)  # expired: the opener refuses it anyway


def test_replay_cache_snapshot_restore():
    cache = ReplayCache(max_entries=10)
    cache.remember("s", b"a" * 16, until=500, now=0)
    cache.remember("s", b"b" * 16, until=50, now=0)
    restored = ReplayCache.restore(cache.snapshot(), now=100)
    assert len(restored) == 1 and restored.is_replay("s", b"a" * 16, 500, now=100)


def test_replay_cache_remembers_which_envelope():
    cache = ReplayCache(max_entries=2)
    cache.remember("s", b"a" * 16, until=500, now=0, cid="bafy-a")
    cache.remember("s", b"a" * 16, until=600, now=0, cid="bafy-other")  # the first one stays
    cache.remember("s", b"b" * 16, until=50, now=0)
    assert cache.cid_of("s", b"a" * 16) == "bafy-a" and cache.cid_of("s", b"b" * 16) is None
    restored = ReplayCache.restore(cache.snapshot(), now=10)
    assert restored.cid_of("s", b"a" * 16) == "bafy-a" and restored.is_replay("s", b"b" * 16, 50, now=10)
    # Snapshots from before CIDs were kept (three fields an entry) still restore.
    old = {"max_entries": 2, "floor": -1, "entries": [["s", b"c" * 16, 500]]}
    assert ReplayCache.restore(old, now=10).is_replay("s", b"c" * 16, 500, now=10)
    # An evicted entry forgets its CID with it.
    cache.remember("s", b"d" * 16, until=700, now=60, cid="bafy-d")
    cache.remember("s", b"e" * 16, until=800, now=60)
    assert cache.cid_of("s", b"a" * 16) is None and cache.cid_of("s", b"d" * 16) == "bafy-d"


# --- keys and secrets ----------------------------------------------------------------------------


def test_reader_keys_live_in_secret_memory():
    reader = LocalReaderKeys.generate()
    assert isinstance(reader.x25519(reader.x25519_public), SecretBytes)
    assert "SecretBytes" not in repr(reader.recipient_key("b"))
    reader.close()
    with pytest.raises(ValueError):
        reader.x25519(os.urandom(32))


def test_signer_gives_openssl_signatures_from_secret_memory():
    # Ed25519SecretKey signs with libsodium; RFC 8032 is deterministic, so OpenSSL's
    # signature under the same seed must be the very same bytes.
    seed = SecretBytes.random(32)
    signer = Ed25519SecretKey(seed)
    reference = Ed25519PrivateKey.from_private_bytes(seed.reveal())
    assert signer.public_key == reference.public_key().public_bytes_raw()
    for size in (0, 1, 100, 70_000):
        message = os.urandom(size)
        assert signer(message) == reference.sign(message)
    signer.close()
    assert seed.closed
    other_seed = SecretBytes.random(32)
    other = Ed25519SecretKey(other_seed)
    other_seed.close()  # closing the seed it was given disables the signer
    with pytest.raises(ValueError):
        other(b"message")


def test_error_type():
    err = EnvelopeError("bad-signature", "nope")
    assert err.code == ErrorCode.BAD_SIGNATURE == "bad-signature"
    assert str(err) == "bad-signature: nope" and isinstance(err, Exception)
    with pytest.raises(ValueError):
        EnvelopeError("no-such-code", "x")


def _ipld_says_identity_cid(text: str) -> bool:
    """The reference: ipld's canonical spelling, and a codec ipld makes."""
    from milagro_node.core.ipld import SUPPORTED_CODECS, IpldError, normalize_cid, parse_cid

    try:
        return normalize_cid(text) == text and parse_cid(text).codec.name in SUPPORTED_CODECS
    except IpldError:
        return False


def test_canonical_cid_check_agrees_with_ipld():
    from multiformats import CID, multihash

    from milagro_node.core.envelope._format import is_canonical_cid

    good = cid_for(b"x", "dag-cbor")
    digest = multihash.digest(b"x", "sha2-256")
    texts = [
        good, cid_for(b"x", "raw"), good.upper(), good[:-1], good + "a", "b", "",
        good[:-1] + "b",  # non-zero trailing bits
        str(CID("base32", 1, "dag-pb", digest)), str(CID("base32", 1, "dag-json", digest)),
        str(CID("base58btc", 1, "dag-cbor", digest)), str(CID("base58btc", 0, "dag-pb", digest)),
        str(CID("base32", 1, "dag-cbor", multihash.digest(b"x", "sha2-512"))),
        str(CID("base32", 1, "dag-cbor", multihash.digest(b"x", "identity"))),
        "Qm" + "1" * 44, "bafyrei" + "a" * 52, "b" + "a" * 127, "b" + "a" * 200,
    ]
    for text in texts:
        assert is_canonical_cid(text) == _ipld_says_identity_cid(text), text


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 58), st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"), st.binary(max_size=3))
def test_canonical_cid_check_agrees_with_ipld_on_mutations(at, char, data):
    from milagro_node.core.envelope._format import is_canonical_cid

    good = cid_for(data, "dag-cbor")
    text = good[:at] + char + good[at + 1:]
    assert is_canonical_cid(text) == _ipld_says_identity_cid(text)
