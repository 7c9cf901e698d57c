"""Typed messages between the actors of one node.

Every message is a small frozen attrs class; the receiving actor matches on
its type (``match request: case KvGet(namespace, key): ...``). A request's
reply type is named in its docstring. Messages never carry secrets as plain
``bytes``: a secret travels as `milagro_node.secret_memory.SecretBytes`.
"""

from __future__ import annotations

from typing import Any

import attrs


# --- store (actor "store"): blocks by CID, key-value state, audit log ---------


@attrs.frozen
class PutBlock:
    """Store bytes under their CID. Reply: the CID string."""

    data: bytes
    codec: str = "raw"


@attrs.frozen
class GetBlock:
    """Reply: the block's bytes (re-verified against its CID), or None."""

    cid: str


@attrs.frozen
class KvGet:
    """Reply: the value's bytes, or None."""

    namespace: str
    key: str


@attrs.frozen
class KvPut:
    """Reply: None once the value is durable."""

    namespace: str
    key: str
    value: bytes


@attrs.frozen
class KvDelete:
    """Reply: None."""

    namespace: str
    key: str


@attrs.frozen
class AuditAppend:
    """Append to the hash-chained audit log. Reply: the new `AuditEntry`.

    `detail` is public: it must never hold a secret, a PIN or a token.
    """

    actor: str
    action: str
    detail: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class AuditTail:
    """Reply: the last `count` audit entries, oldest first."""

    count: int = 20


@attrs.frozen
class AuditVerify:
    """Re-check the whole audit chain. Reply: an `AuditVerdict`."""
