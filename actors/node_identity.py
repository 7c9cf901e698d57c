"""The node's own identity: made at ``milagro-node init``, rotated, exported.

Actors layer: it talks to the store and the keystore by messages, so it runs
wherever those actors run — inside a node, or in the small offline node the
CLI starts for ``init`` and ``identity rotate`` (`milagro_node.runtime.offline`).

Where the keys are (key ids in the keystore; ``<n>`` counts signing keys):

    identity/sign/<n>      Ed25519, generated inside the HSM, non-extractable
    identity/sign/<n+1>    the pre-committed next signing key, also in the HSM
    identity/x25519/<n>    X25519 secret (wrapped under the KEK): envelopes to us
    identity/mlkem/<n>     ML-KEM-768 seed (wrapped): the post-quantum half
    identity/libp2p        Ed25519 seed (wrapped) of the libp2p host key; its
                           peer id is in the log. libp2p needs it in process.

The log: each event is a dag-cbor block in the store, and kv
``identity/log`` lists the event CIDs in order. The log is verified with
`milagro_node.core.identity.verify_log` every time it is read.

Crash safety: keys are created before the event that names them; the event's
block is stored before the log list names it, and the list is written in one
transaction. A crash leaves at worst unused keys, which the next attempt
replaces (`_fresh_key`).
"""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from milagro_node.core.identity import IdentityState, prepare_inception, prepare_rotation, verify_log
from milagro_node.core.multiaddr import ed25519_peer_id
from milagro_node.secret_memory import SecretBytes

from .keystore import KeystoreClient
from .known_logs import Asker, read_log, write_log
from .mailbox import ActorError
from .messages import AuditAppend

NAMESPACE, LOG_KEY = "identity", "log"


def sign_key_id(n: int) -> str:
    return f"identity/sign/{n}"


class NodeIdentity:
    def __init__(self, asker: Asker) -> None:
        self._ask = asker.ask
        self._keys = KeystoreClient(asker)

    async def events(self) -> list[bytes]:
        return await read_log(self._ask, NAMESPACE, LOG_KEY)

    async def state(self) -> IdentityState | None:
        events = await self.events()
        return verify_log(events) if events else None

    async def create(self, *, roles: tuple[str, ...], addrs: tuple[str, ...]) -> tuple[IdentityState, bool]:
        """The node's identity, made now if it has none. Returns (state, created)."""
        existing = await self.state()
        if existing is not None:
            return existing, False
        sign_key = await self._fresh_key(sign_key_id(0))
        next_key = await self._fresh_key(sign_key_id(1))
        x25519_public = await self._encryption_keys(0)
        draft = prepare_inception(
            sign_key=sign_key, next_key=next_key, x25519=x25519_public[0], mlkem768=x25519_public[1],
            peer_id=await self._libp2p_peer_id(), created=int(time.time()), roles=roles, addrs=addrs,
        )
        event = draft.finish(await self._keys.sign(sign_key_id(0), draft.to_be_signed))
        state = verify_log([event.bytes])
        await self._append([event.bytes], state, "identity.created")
        return state, True

    async def rotate(self) -> IdentityState:
        """Rotate to the pre-committed signing key, commit to a new next key, renew encryption keys."""
        events = await self.events()
        if not events:
            raise ActorError("identity-missing", "this node has no identity yet: run milagro-node init")
        state = verify_log(events)
        n = len(events)  # the signing key of event seq k is identity/sign/<k>
        new_key = await self._keys.public_key(sign_key_id(n))
        next_key = await self._fresh_key(sign_key_id(n + 1))
        x25519_public, mlkem_public = await self._encryption_keys(n)
        draft = prepare_rotation(state, new_key=new_key, next_key=next_key, created=int(time.time()),
                                 x25519=x25519_public, mlkem768=mlkem_public)
        event = draft.finish(await self._keys.sign(sign_key_id(n), draft.to_be_signed))
        new_state = verify_log([*events, event.bytes])
        await self._append([*events, event.bytes], new_state, "identity.rotated")
        # The old keys can no longer sign or decrypt for this identity.
        for key_id in (sign_key_id(n - 1), f"identity/x25519/{n - 1}", f"identity/mlkem/{n - 1}"):
            await self._discard(key_id)
        return new_state

    async def reader_keys(self) -> tuple[SecretBytes, SecretBytes]:
        """The current X25519 secret and ML-KEM-768 seed (the caller closes them)."""
        n = len(await self.events()) - 1
        return (await self._keys.get(f"identity/x25519/{n}", "identity-encryption"),
                await self._keys.get(f"identity/mlkem/{n}", "generic"))

    async def sign(self, data: bytes) -> bytes:
        """Sign with the current identity key (inside the HSM)."""
        return await self._keys.sign(sign_key_id(len(await self.events()) - 1), data)

    # -- internals -------------------------------------------------------------------

    async def _append(self, events: list[bytes], state: IdentityState, action: str) -> None:
        await write_log(self._ask, NAMESPACE, LOG_KEY, events)
        await self._ask("store", AuditAppend("identity", action, {"identity": state.identity, "seq": state.seq}))

    async def _fresh_key(self, key_id: str) -> bytes:
        """An Ed25519 key made inside the HSM now (one left by an interrupted attempt is replaced:
        no event names it yet, or we would not be making it)."""
        try:
            return await self._keys.create_in_hsm(key_id, "ed25519")
        except ActorError as exc:
            if exc.code != "keystore-exists":
                raise
        await self._discard(key_id)
        return await self._keys.create_in_hsm(key_id, "ed25519")

    async def _discard(self, key_id: str) -> None:
        try:
            await self._keys.delete(key_id)
        except ActorError as exc:
            if exc.code != "keystore-no-key":
                raise

    async def _encryption_keys(self, n: int) -> tuple[bytes, bytes]:
        x_id, m_id = f"identity/x25519/{n}", f"identity/mlkem/{n}"
        for key_id, kind, size in ((x_id, "identity-encryption", None), (m_id, "generic", 64)):
            await self._discard(key_id)  # left by an interrupted attempt: no event names it
            await self._keys.generate(key_id, kind, size)
        with await self._keys.get(x_id, "identity-encryption") as secret:
            x_public = x25519.X25519PrivateKey.from_private_bytes(secret.reveal()).public_key()
        with await self._keys.get(m_id, "generic") as seed:
            m_public = MLKEM768PrivateKey.from_seed_bytes(seed.reveal()).public_key()
        return (x_public.public_bytes(Encoding.Raw, PublicFormat.Raw), m_public.public_bytes_raw())

    async def _libp2p_peer_id(self) -> str:
        try:
            seed = await self._keys.get("identity/libp2p", "identity-signing")
        except ActorError as exc:
            if exc.code != "keystore-no-key":
                raise
            await self._keys.generate("identity/libp2p", "identity-signing")
            seed = await self._keys.get("identity/libp2p", "identity-signing")
        with seed:
            public = ed25519.Ed25519PrivateKey.from_private_bytes(seed.reveal()).public_key()
        return ed25519_peer_id(public.public_bytes(Encoding.Raw, PublicFormat.Raw))
