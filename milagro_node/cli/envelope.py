"""``milagro-node envelope seal|open|inspect``: envelopes as files, before the network exists.

- ``seal``: this node is the sender. The payload is encrypted with the envelope core
  (`prepare_seal`), the bytes to sign go to the node's identity key inside the HSM
  (`NodeIdentity.sign`), and the signature is checked against the node's log before the
  envelope is written. Recipients are exported identity logs (``--to FILE``, verified) or
  identity CIDs whose log the node knows (its own, or one stored by ``identity import``).
- ``open``: this node is the reader. The sender's log comes from ``--from FILE``, the stored
  logs or the node itself; the reader keys are unwrapped from the keystore only if the node
  is among the recipients, and closed after use. Opened ids go to a replay cache persisted in
  the store (kv ``envelope-replay``), so an envelope opens once.
- ``inspect``: the header, decoded and checked for form only; nothing verified or decrypted.

Errors are printed as ``milagro-node: envelope <code>: <message>`` (the envelope error codes
of docs/envelope.md) or ``milagro-node: identity <code>: <message>`` (docs/identity.md), exit
status 1. Messages never contain plaintext. Exit status 2: bad usage (a ``--to`` that is
neither a file nor a CID, an unreadable input file, a TTL out of range).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.known_logs import KnownLogs
from actors.messages import KvBatch, KvItems
from actors.node_identity import NodeIdentity
from milagro_node.core import ipld
from milagro_node.core.envelope import (
    DEFAULT_LIMITS,
    EnvelopeError,
    CT_OVERHEAD,
    EnvelopeHeader,
    ErrorCode,
    LocalReaderKeys,
    OpenedEnvelope,
    RecipientKey,
    ReplayCache,
    envelope_cid,
    find_recipient,
    inspect_envelope,
    open_envelope,
    prepare_seal,
)
from milagro_node.core.identity import MAX_EXPORT_BYTES, IdentityError, IdentityState, import_log, verify_log
from milagro_node.private_files import write_private
from milagro_node.runtime.config import NodeConfig
from milagro_node.runtime.datadir import DataDir
from milagro_node.runtime.offline import offline_node

from .main import CliError

DEFAULT_KIND = "file"
DEFAULT_TTL = 24 * 3600
REPLAY_NAMESPACE = "envelope-replay"
REPLAY_FLOOR_KEY = ":floor"  # every other key is "<sender CID>/<id hex>"
REPLAY_MAX_ENTRIES = 10_000


# --- seal -------------------------------------------------------------------------------


@attrs.frozen
class Target:
    """A ``--to`` argument: an identity CID, with the log read from a file if one was given."""

    identity: str
    log: tuple[bytes, ...] = ()


def parse_target(arg: str) -> Target:
    path = Path(arg)
    if path.is_file():
        events, state = read_log(path)
        return Target(state.identity, tuple(events))
    try:
        return Target(ipld.normalize_cid(arg))
    except ValueError:
        raise CliError(f"--to {arg!r} is neither an identity log file nor an identity CID", 2) from None


def seal(config: NodeConfig, to: Sequence[str], *, kind: str, suite: str | None, ttl: int,
         input_path: Path | None, out: Path | None) -> int:
    if not 0 < ttl <= DEFAULT_LIMITS.max_lifetime:
        raise CliError(f"--ttl must be 1 to {DEFAULT_LIMITS.max_lifetime} seconds", 2)
    targets = [parse_target(arg) for arg in to]
    require_data_dir(config)
    payload = _read(input_path, DEFAULT_LIMITS.max_payload_bytes + 1)  # one more: the core says too-large
    with _reported():
        data, chosen, count = trio.run(_seal, config, targets, payload, kind, suite, ttl)
    _write(out, data)
    if out is not None:
        print(f"sealed envelope {envelope_cid(data)} ({chosen}, {count} recipient"
              f"{'s' if count != 1 else ''}) to {out}", file=sys.stderr)
    return 0


async def _seal(config: NodeConfig, targets: list[Target], payload: bytes, kind: str,
                suite: str | None, ttl: int) -> tuple[bytes, str, int]:
    async with offline_node(config) as node:
        me = NodeIdentity(node)
        own = await me.events()
        sender = _own_state(own)
        known = KnownLogs(node)
        states: dict[str, IdentityState] = {}
        for target in targets:
            if target.identity not in states:  # naming a recipient twice is harmless
                states[target.identity] = await known.resolve(
                    target.identity, own=own, extra=[target.log] if target.log else ())
        chosen = choose_suite(list(states.values()), suite)
        recipients = [RecipientKey(s.identity, s.x25519, s.mlkem768 if chosen == "mx2" else None)
                      for s in states.values()]
        now = int(time.time())
        try:
            draft = prepare_seal(payload, suite=chosen, sender=sender.identity, kind=kind,
                                 recipients=recipients, created=now, expires=now + ttl)
        except ValueError as exc:  # a recipient key the suite cannot use
            raise CliError(str(exc)) from None
        signature = await me.sign(draft.to_be_signed)
        return draft.finish(signature, verify_with=sender.sign_key), chosen, len(recipients)


def choose_suite(recipients: Sequence[IdentityState], requested: str | None) -> str:
    """mx2 when every recipient has an ML-KEM-768 key (or when asked, which then requires it)."""
    missing = [s.identity for s in recipients if s.mlkem768 is None]
    if requested == "mx2" and missing:
        raise CliError(f"suite mx2 needs an ML-KEM-768 key for every recipient; {missing[0]} has none "
                       "(use --suite mx1)")
    if requested is not None:
        return requested
    return "mx1" if missing else "mx2"


# --- open -------------------------------------------------------------------------------


def open_(config: NodeConfig, senders: Sequence[Path], *, input_path: Path | None, out: Path | None) -> int:
    logs = [tuple(read_log(path)[0]) for path in senders]
    require_data_dir(config)
    data = _read(input_path, DEFAULT_LIMITS.max_envelope_bytes + 1)
    with _reported():
        opened = trio.run(_open, config, logs, data)
    try:
        if out is None:
            sys.stdout.buffer.write(opened.payload)
            sys.stdout.buffer.flush()
        else:
            write_private(out, opened.payload)  # the plaintext: readable by this user only
    except OSError as exc:
        raise CliError(f"cannot write {out or 'standard output'}: {exc.strerror}") from None
    if out is not None:
        print(f"opened envelope {opened.cid} from {opened.header.sender}: "
              f"{len(opened.payload)} bytes to {out}", file=sys.stderr)
    return 0


async def _open(config: NodeConfig, logs: list[tuple[bytes, ...]], data: bytes) -> OpenedEnvelope:
    header = inspect_envelope(data)  # steps 1-4: refuse a malformed envelope before touching the node
    async with offline_node(config) as node:
        me = NodeIdentity(node)
        own = await me.events()
        reader = _own_state(own)
        try:
            sender = await KnownLogs(node).resolve(header.sender, own=own, extra=logs)
        except IdentityError as exc:
            if exc.code == "unknown-identity":
                raise EnvelopeError(ErrorCode.UNKNOWN_SENDER,
                                    f"no log of the sender {header.sender} is known: pass it with --from FILE "
                                    "or import it (milagro-node identity import FILE)") from None
            raise EnvelopeError(ErrorCode.UNKNOWN_SENDER,
                                f"the sender's identity cannot be used: {exc.code}: {exc.message}") from None
        replay = await PersistentReplay.load(node)
        # Unwrap the reader keys only if they can be needed: not for a public envelope, nor for
        # one addressed to others (which the core then refuses as not-a-recipient, after the
        # signature check).
        wanted = find_recipient(header.recipients, reader.identity) is not None
        keys = None
        if wanted:
            x25519, mlkem_seed = await me.reader_keys()
            try:
                keys = LocalReaderKeys(x25519, mlkem_seed)
            except BaseException:
                x25519.close()
                mlkem_seed.close()
                raise
        try:
            opened = open_envelope(data, resolve_sender=lambda cid: sender.sign_key if cid == sender.identity else None,
                                   reader_kid=reader.identity, reader_keys=keys, now=int(time.time()),
                                   replay=replay.cache)
        finally:
            if keys is not None:
                keys.close()
        await replay.save(node)
        return opened


@attrs.define
class PersistentReplay:
    """A `ReplayCache` kept in the store: one kv entry per opened id, until it expires.

    Loading drops expired entries (and `save` deletes them), so the namespace holds at most
    `REPLAY_MAX_ENTRIES` live ids; beyond that the core cache fails closed (its floor).
    """

    cache: ReplayCache
    stored: dict[str, bytes]  # what the namespace held when loaded

    @classmethod
    async def load(cls, node: Any) -> PersistentReplay:
        now = int(time.time())
        stored = dict(await node.ask("store", KvItems(REPLAY_NAMESPACE)))
        floor, entries = -1, []
        for key, value in stored.items():
            try:
                number = ipld.decode(value)
                if type(number) is not int:
                    continue
                if key == REPLAY_FLOOR_KEY:
                    floor = number
                    continue
                sender, id_hex = key.split("/")
                entries.append([sender, bytes.fromhex(id_hex), number])
            except ValueError:
                continue  # not ours: `save` deletes it
        state = {"max_entries": REPLAY_MAX_ENTRIES, "floor": floor, "entries": entries}
        return cls(ReplayCache.restore(state, now), stored)

    async def save(self, node: Any) -> None:
        snapshot = self.cache.snapshot()
        current = {f"{sender}/{envelope_id.hex()}": ipld.encode(until)
                   for sender, envelope_id, until in snapshot["entries"]}
        if snapshot["floor"] >= 0:
            current[REPLAY_FLOOR_KEY] = ipld.encode(snapshot["floor"])
        puts = tuple((REPLAY_NAMESPACE, key, value) for key, value in current.items()
                     if self.stored.get(key) != value)
        deletes = tuple((REPLAY_NAMESPACE, key) for key in self.stored if key not in current)
        if puts or deletes:
            await node.ask("store", KvBatch(puts, deletes))


# --- inspect ----------------------------------------------------------------------------


def inspect(input_path: Path | None, as_json: bool) -> int:
    data = _read(input_path, DEFAULT_LIMITS.max_envelope_bytes + 1)
    with _reported():
        header = inspect_envelope(data)
    info = describe(header, envelope_cid(data))
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    rows = [
        ("cid", info["cid"]),
        ("suite", info["suite"]),
        ("sender", info["sender"]),
        ("kind", info["kind"]),
        ("created", info["created"]),
        ("expires", info["expires"]),
        ("id", info["id"]),
        ("seq", "-" if info["seq"] is None else info["seq"]),
        ("payload", f"{info['payload_size']} bytes" + (" (public)" if info["public"] else " (encrypted)")),
        ("recipients", len(info["recipients"])),
    ]
    for name, value in rows:
        print(f"{name:<10}  {value}")
    for kid in info["recipients"]:
        print(f"  {kid}")
    return 0


def describe(header: EnvelopeHeader, cid: str) -> dict[str, Any]:
    """The header as JSON-ready data; ``payload_size`` is the plaintext's size."""
    return {
        "cid": cid,
        "version": header.version,
        "suite": header.suite,
        "sender": header.sender,
        "kind": header.kind,
        "created": _iso(header.created),
        "expires": _iso(header.expires),
        "created_unix": header.created,
        "expires_unix": header.expires,
        "id": header.id.hex(),
        "seq": header.seq,
        "public": header.public,
        "recipients": [r.kid for r in header.recipients],
        "payload_size": header.payload_size - (0 if header.public else CT_OVERHEAD),
    }


def _iso(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return str(seconds)  # beyond what datetime represents: show the number


# --- shared -----------------------------------------------------------------------------


class _reported:
    """Turn the cores' errors into CLI errors: ``envelope <code>: ...`` / ``identity <code>: ...``."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, EnvelopeError):
            raise CliError(f"envelope {exc.code}: {exc.message}") from None
        if isinstance(exc, IdentityError):
            raise CliError(f"identity {exc.code}: {exc.message}") from None
        return False


def _own_state(own: list[bytes]) -> IdentityState:
    if not own:
        raise CliError("this node has no identity yet: run milagro-node init")
    state = verify_log(own)
    if state.revoked:
        raise CliError(f"this node's identity {state.identity} is revoked")
    return state


def require_data_dir(config: NodeConfig) -> None:
    if not DataDir(config.data_dir).db.exists():
        raise CliError(f"{config.data_dir} is not initialised: run milagro-node init --data-dir {config.data_dir}", 2)


def read_log(path: Path) -> tuple[list[bytes], IdentityState]:
    data = _read(path, MAX_EXPORT_BYTES + 1)  # one more: import_log says too-large
    try:
        return import_log(data)
    except IdentityError as exc:
        raise CliError(f"identity {exc.code}: {path}: {exc.message}") from None


def _read(path: Path | None, limit: int) -> bytes:
    """At most ``limit`` bytes of a file or standard input."""
    try:
        if path is None:
            return sys.stdin.buffer.read(limit)
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError as exc:
        raise CliError(f"cannot read {path or 'standard input'}: {exc.strerror}", 2) from None


def _write(path: Path | None, data: bytes) -> None:
    try:
        if path is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path or 'standard output'}: {exc.strerror}") from None
