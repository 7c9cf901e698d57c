"""Identity logs of other nodes that this node knows: a small store of verified logs.

Actors layer: it talks to the store by messages, like `NodeIdentity`, so it runs inside a node
or in the offline node of a CLI command (``milagro-node identity import FILE``, ``envelope
seal --to CID``, ``envelope open``). Until the pki resolver gossips logs, this is how an
operator hands one node another's identity: export the log there, import it here.

Layout in the store (the same form as the node's own log):

    blocks                        each event, a dag-cbor block
    kv "pki"/<identity>           DAG-CBOR list of the event CIDs, inception first
    kv "pki-duplicity"/<identity> {seq, first, second}: the identity forked; both events are
                                  kept as blocks (the evidence), and it never resolves again

Rules (`merge_logs`): two verified logs of one identity either agree event for event up to
the shorter one's end (then the longer one is the newer view and replaces the stored one) or
differ at some sequence number: both events there are validly signed by the key entitled to
sign, so the controller (or a thief of its pre-committed key) signed two histories —
duplicity (docs/identity.md, §8). A log is verified every time it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import attrs

from milagro_node.core import ipld
from milagro_node.core.identity import IdentityError, IdentityState, verify_log

from .mailbox import ActorError
from .messages import AuditAppend, GetBlock, KvBatch, KvGet, PutBlock

NAMESPACE = "pki"
DUPLICITY_NAMESPACE = "pki-duplicity"


class Asker(Protocol):
    async def ask(self, actor: str, request: Any, *, timeout: float | None = None) -> Any: ...


@attrs.frozen
class Fork:
    """Where two logs of one identity diverge: two different events at ``seq``."""

    identity: str
    seq: int
    first: bytes = attrs.field(repr=False)  # the event of the first log given
    second: bytes = attrs.field(repr=False)

    def error(self, first_name: str = "one log", second_name: str = "the other") -> IdentityError:
        return IdentityError(
            "duplicity",
            f"{self.identity} has two events at seq {self.seq}: {ipld.cid_for(self.first, 'dag-cbor')} "
            f"({first_name}) and {ipld.cid_for(self.second, 'dag-cbor')} ({second_name})",
        )


def merge_logs(identity: str, first: Sequence[bytes], second: Sequence[bytes]) -> list[bytes] | Fork:
    """The longer of two verified logs of ``identity`` if one extends the other, else the `Fork`.

    Both must already be verified logs of ``identity`` (so event ``n`` has seq ``n``); bytes
    are canonical, so equal events are equal bytes.
    """
    for seq, (a, b) in enumerate(zip(first, second)):
        if a != b:
            return Fork(identity, seq, bytes(a), bytes(b))
    return list(first if len(first) >= len(second) else second)


@attrs.frozen
class Imported:
    """What `KnownLogs.add` did: ``before`` events were stored, now ``after`` (equal: nothing new)."""

    state: IdentityState
    before: int
    after: int


async def read_log(ask: Any, namespace: str, key: str) -> list[bytes]:
    """The event blocks of a log stored as a list of CIDs under kv ``namespace/key`` (empty if none)."""
    listing = await ask("store", KvGet(namespace, key))
    blocks = []
    for cid in ipld.decode(listing) if listing is not None else ():
        block = await ask("store", GetBlock(cid))
        if block is None:
            raise ActorError("log-broken", f"the log at {namespace}/{key} names event {cid}, which the store lacks")
        blocks.append(block)
    return blocks


async def write_log(ask: Any, namespace: str, key: str, events: Sequence[bytes]) -> None:
    """Store each event as a block, then the list of their CIDs in one write (blocks first:
    a crash in between leaves unused blocks, never a list naming a missing one)."""
    cids = [await ask("store", PutBlock(bytes(event), "dag-cbor")) for event in events]
    await ask("store", KvBatch(((namespace, key, ipld.encode(cids)),)))


class KnownLogs:
    def __init__(self, asker: Asker) -> None:
        self._ask = asker.ask

    async def events(self, identity: str) -> list[bytes]:
        """The stored log of ``identity`` (empty if none), not verified here."""
        return await read_log(self._ask, NAMESPACE, identity)

    async def fork(self, identity: str) -> dict[str, Any] | None:
        """The recorded duplicity of ``identity`` ({seq, first, second} CIDs), or None."""
        value = await self._ask("store", KvGet(DUPLICITY_NAMESPACE, identity))
        return None if value is None else ipld.decode(value)

    async def add(self, events: Sequence[bytes]) -> Imported:
        """Verify a log and store it if it is new or extends the stored one.

        A log that forks from the stored one is refused with IdentityError "duplicity", and the
        fork is recorded (both events kept): the identity will not resolve again.
        """
        state = verify_log(events)
        identity = state.identity
        known = await self.fork(identity)
        if known is not None:
            raise _forked(identity, known)
        stored = await self.events(identity)
        if stored:
            verify_log(stored, identity=identity)
        merged = merge_logs(identity, stored, events)
        if isinstance(merged, Fork):
            await self._record_fork(merged)
            raise merged.error("stored", "this log")
        if len(merged) > len(stored):
            await write_log(self._ask, NAMESPACE, identity, merged)
            await self._ask("store", AuditAppend("pki", "pki.log-imported",
                                                 {"identity": identity, "seq": len(merged) - 1}))
        return Imported(verify_log(merged, identity=identity), len(stored), len(merged))

    async def resolve(self, identity: str, *, own: Sequence[bytes] = (),
                      extra: Iterable[Sequence[bytes]] = ()) -> IdentityState:
        """The state to use for ``identity``: from the node's own log (``own``), the stored
        log, and logs given on the command line (``extra``, verified logs of any identity),
        merged — the newest view wins, disagreement is duplicity. Refuses an unknown,
        forked or revoked identity (IdentityError with that code).
        """
        known = await self.fork(identity)
        if known is not None:
            raise _forked(identity, known)
        sources: list[tuple[str, Sequence[bytes]]] = []
        if own and ipld.cid_for(bytes(own[0]), "dag-cbor") == identity:
            sources.append(("this node's log", own))
        stored = await self.events(identity)
        if stored:
            sources.append(("stored", stored))
        for log in extra:
            if log and ipld.cid_for(bytes(log[0]), "dag-cbor") == identity:
                sources.append(("given", log))
        if not sources:
            raise IdentityError("unknown-identity", f"no log of {identity} is known: "
                                "import it with `milagro-node identity import FILE`")
        name, merged = sources[0]
        merged = list(merged)
        for other_name, log in sources[1:]:
            result = merge_logs(identity, merged, log)
            if isinstance(result, Fork):
                raise result.error(name, other_name)
            merged = result
        state = verify_log(merged, identity=identity)
        if state.revoked:
            raise IdentityError("revoked", f"{identity} was revoked at seq {state.seq}")
        return state

    async def _record_fork(self, fork: Fork) -> None:
        first = await self._ask("store", PutBlock(fork.first, "dag-cbor"))
        second = await self._ask("store", PutBlock(fork.second, "dag-cbor"))
        detail = {"seq": fork.seq, "first": first, "second": second}
        await self._ask("store", KvBatch(((DUPLICITY_NAMESPACE, fork.identity, ipld.encode(detail)),)))
        await self._ask("store", AuditAppend("pki", "pki.duplicity", {"identity": fork.identity, **detail}))


def _forked(identity: str, known: dict[str, Any]) -> IdentityError:
    return IdentityError("duplicity", f"{identity} forked at seq {known['seq']} "
                         f"({known['first']} and {known['second']}); it is not trusted")
