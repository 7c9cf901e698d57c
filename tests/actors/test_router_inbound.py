"""The router's inbound checks: replays refused, an envelope lost between gossip validation
and the router's inbox re-delivered directly (not refused as its own replay), and an
announcement that repeats a log already imported not imported again."""

import logging
import time

import attrs
import pytest

from actors.envelope_router.inbound import Inbound, Rejected
from milagro_node.core import identity as ident
from milagro_node.core.envelope import ReplayCache, SystemEntropy, seal, seal_public
from milagro_node.core.federation_wire import ANNOUNCE_KIND
from vectors.make_envelope_vectors import Party
from vectors.make_identity_vectors import peer_id, public, signing_key, x25519_public

T0 = 1_767_225_600

ALICE, BOB = Party("alice"), Party("bob")


@attrs.frozen
class _Known:
    sign_key: bytes


async def _resolve(actor, request, timeout=None):  # the pki-resolver's answer for a member
    assert actor == "pki-resolver" and request.identity == ALICE.cid
    return _Known(ALICE.signer.public_key)


class _ChosenId(SystemEntropy):
    def __init__(self, envelope_id: bytes) -> None:
        self.envelope_id = envelope_id

    def random_bytes(self, n: int) -> bytes:
        return self.envelope_id


def _envelope(payload: bytes, envelope_id: bytes | None = None) -> bytes:
    now = int(time.time())
    return seal(payload, sign=ALICE.signer, suite="mx1", sender=ALICE.cid, kind="test/x",
                recipients=[BOB.key], created=now, expires=now + 600,
                entropy=None if envelope_id is None else _ChosenId(envelope_id))


@pytest.fixture
def inbound():
    return Inbound(_resolve, logging.getLogger("test"), replay=ReplayCache())


async def test_gossip_replay_is_refused(inbound):
    data = _envelope(b"once")
    await inbound.check(data, forwarder="peer-a", via="gossip")
    with pytest.raises(Rejected) as err:
        await inbound.check(data, forwarder="peer-b", via="gossip")
    assert err.value.code == "replayed"


async def test_direct_redelivery_of_an_envelope_lost_after_validation_is_taken(inbound):
    data = _envelope(b"lost after validation")
    await inbound.check(data, forwarder="peer-a", via="gossip")
    assert inbound.take(data) is not None  # ... and then lost before the router kept it
    verified = await inbound.check(data, forwarder="sender", via="direct")
    assert verified.data == data


async def test_another_envelope_under_a_remembered_id_is_still_a_replay(inbound):
    envelope_id = bytes(range(16))
    first = _envelope(b"first", envelope_id)
    await inbound.check(first, forwarder="peer-a", via="gossip")
    second = _envelope(b"second, same id", envelope_id)
    for via in ("direct", "gossip"):
        with pytest.raises(Rejected) as err:
            await inbound.check(second, forwarder="sender", via=via)
        assert err.value.code == "replayed"


class _Announcer:
    """A member whose announcements carry its identity log; the pki-resolver's side is
    played here and records what it was asked."""

    def __init__(self) -> None:
        self.key = signing_key("announcer-0")
        event = ident.make_inception(self.key.sign, sign_key=public(self.key), next_key=public(signing_key("announcer-1")),
                                     x25519=x25519_public("announcer-x"), peer_id=peer_id("announcer"), created=T0)
        self.events = [event.bytes]
        self.state = ident.verify_log(self.events)
        self.asked: list[str] = []

    async def ask(self, actor, request, timeout=None):
        self.asked.append(type(request).__name__)
        return self.state

    def announcement(self) -> bytes:
        now = int(time.time())
        return seal_public(ident.export_log(self.events), sign=self.key.sign, sender=self.state.identity,
                           kind=ANNOUNCE_KIND, created=now, expires=now + 600)


async def test_an_unchanged_announced_log_is_imported_once():
    announcer = _Announcer()
    inbound = Inbound(announcer.ask, logging.getLogger("test"), replay=ReplayCache())
    for _ in range(3):
        await inbound.check(announcer.announcement(), forwarder="peer-a", via="gossip")
    # The first announcement's log is imported; the same log again only resolves the sender.
    assert announcer.asked == ["ImportLog", "ResolveIdentity", "ResolveIdentity"]
    announcer.events = [*announcer.events]  # the same log in a new list: still the same bytes
    await inbound.check(announcer.announcement(), forwarder="peer-b", via="gossip")
    assert announcer.asked[-1] == "ResolveIdentity"
