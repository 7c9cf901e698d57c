"""The pki-resolver actor on a real store and SoftHSM token: membership, rotation, revocation,
duplicity. Logs of other members are made here with the identity core and test keys."""

import attrs
import pytest
import trio

from actors.mailbox import ActorError
from actors.messages import ImportLog, ListIdentities, ResolveIdentity, ResolveMembers
from actors.node_identity import NodeIdentity
from actors.pki_resolver import PkiResolver
from hsmkit import MODULE, keystore_node, keystore_specs, soft_token  # noqa: F401  (soft_token is a fixture)
from milagro_node.core import identity as ident
from milagro_node.core.identity import verify_log
from milagro_node.runtime.supervisor import ActorSpec, Supervisor
from testkit import refused
from vectors.make_identity_vectors import peer_id, public, signing_key, x25519_public

pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="softhsm2 is installed by scripts/install.sh")

T0 = 1_767_225_600


@attrs.frozen
class Member:
    name: str
    identity: str
    peer_id: str
    roles: tuple = ("dta",)
    addrs: tuple = ()


class Party:
    """Another node's identity, with keys held by the test."""

    def __init__(self, name: str, peer: str | None = None) -> None:
        self.keys = [signing_key(f"{name}-{i}") for i in range(4)]
        self.peer = peer or peer_id(f"{name}-libp2p")
        event = ident.make_inception(self.keys[0].sign, sign_key=public(self.keys[0]), next_key=public(self.keys[1]),
                                     x25519=x25519_public(f"{name}-x"), peer_id=self.peer, created=T0)
        self.events = [event.bytes]
        self.identity = verify_log(self.events).identity

    def rotated(self, to: int = 1, **changes) -> list[bytes]:
        state = verify_log(self.events)
        event = ident.make_rotation(state, self.keys[to].sign, new_key=public(self.keys[to]),
                                    next_key=public(self.keys[to + 1]), created=T0 + 60, **changes)
        return [*self.events, event.bytes]

    def revoked(self) -> list[bytes]:
        state = verify_log(self.events)
        event = ident.make_revocation(state, self.keys[1].sign, next_key=public(self.keys[1]), created=T0 + 60)
        return [*self.events, event.bytes]


@pytest.fixture
async def resolver(tmp_path, soft_token):
    db = tmp_path / "node.db"
    async with keystore_node(db, soft_token) as (_, sup):
        await NodeIdentity(sup).create(roles=("dta",), addrs=())
    alice, bob, mallory = Party("alice"), Party("bob"), Party("mallory")
    members = [Member("alice", alice.identity, alice.peer), Member("bob", bob.identity, bob.peer),
               # pinned with another peer id than the one its log names
               Member("mallory", mallory.identity, peer_id("someone-else"))]
    specs = [*keystore_specs(db, soft_token), ActorSpec("pki-resolver", lambda: PkiResolver(members),
                                                        needs=("store", "keystore"))]
    async with trio.open_nursery() as nursery:
        sup = Supervisor(specs)
        await nursery.start(sup.run)
        yield sup, alice, bob, mallory
        nursery.cancel_scope.cancel()


async def test_members_resolve_and_rotations_replace_the_state(resolver):
    sup, alice, *_ = resolver
    await refused(sup.ask("pki-resolver", ResolveIdentity(alice.identity)), "unknown-identity")
    state = await sup.ask("pki-resolver", ImportLog(tuple(alice.events), "test"))
    assert state.seq == 0
    assert (await sup.ask("pki-resolver", ResolveIdentity(alice.identity))).sign_key == public(alice.keys[0])
    await sup.ask("pki-resolver", ImportLog(tuple(alice.rotated()), "test"))
    assert (await sup.ask("pki-resolver", ResolveIdentity(alice.identity))).sign_key == public(alice.keys[1])
    # an older view changes nothing
    assert (await sup.ask("pki-resolver", ImportLog(tuple(alice.events), "test"))).seq == 1


async def test_an_envelopes_recipients_resolve_in_one_request_in_order(resolver):
    sup, alice, bob, mallory = resolver
    for party in (alice, bob, mallory):
        await sup.ask("pki-resolver", ImportLog(tuple(party.events), "test"))
    states = await sup.ask("pki-resolver", ResolveMembers((bob.identity, alice.identity)))
    assert [s.identity for s in states] == [bob.identity, alice.identity]
    # one that does not resolve fails the whole request, as it would alone
    error = await refused(sup.ask("pki-resolver", ResolveMembers((alice.identity, mallory.identity))), "not-a-member")
    assert "mallory" in error.message


async def test_only_pinned_members_with_their_pinned_peer_id(resolver):
    sup, _, _, mallory = resolver
    stranger = Party("stranger")
    await refused(sup.ask("pki-resolver", ImportLog(tuple(stranger.events), "test")), "not-a-member")
    await sup.ask("pki-resolver", ImportLog(tuple(mallory.events), "test"))
    error = await refused(sup.ask("pki-resolver", ResolveIdentity(mallory.identity)), "not-a-member")
    assert "pins" in error.message
    # outside the federation's rules (envelope seal --to an imported log) it still resolves
    assert (await sup.ask("pki-resolver", ResolveIdentity(mallory.identity, members_only=False))).seq == 0


async def test_a_revoked_identity_stops_resolving(resolver):
    sup, _, bob, _ = resolver
    await sup.ask("pki-resolver", ImportLog(tuple(bob.events), "test"))
    await sup.ask("pki-resolver", ResolveIdentity(bob.identity))
    await sup.ask("pki-resolver", ImportLog(tuple(bob.revoked()), "test"))
    await refused(sup.ask("pki-resolver", ResolveIdentity(bob.identity)), "revoked")


async def test_a_fork_is_duplicity_and_never_resolves_again(resolver):
    sup, alice, _, _ = resolver
    await sup.ask("pki-resolver", ImportLog(tuple(alice.rotated(roles=["dta"])), "test"))
    assert (await sup.ask("pki-resolver", ResolveIdentity(alice.identity))).seq == 1
    await refused(sup.ask("pki-resolver", ImportLog(tuple(alice.rotated(roles=["mfa"])), "test")), "duplicity")
    await refused(sup.ask("pki-resolver", ResolveIdentity(alice.identity)), "duplicity")
    rows = {row["name"]: row for row in await sup.ask("pki-resolver", ListIdentities())}
    assert rows["alice"]["duplicity"]["seq"] == 1
    assert rows["bob"]["known"] is False and rows["(this node)"]["known"] is True
    with pytest.raises(ActorError):
        await sup.ask("pki-resolver", ImportLog((b"garbage",), "test"))
