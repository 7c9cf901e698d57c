"""The server secret SS = s·Q: which D-TAs' shares it needs, which are here, their sum.

Part of the authenticator actor. Sans-IO: the actor loads shares from the keystore,
receives them from D-TAs and persists them; this class only keeps and sums them.

The D-TAs are the federation members whose peers.toml roles include ``dta``. A node with
no such member (a single node with no peers.toml, or a federation that names no D-TA) that
has the ``dta`` role itself is its own and only D-TA. The authenticator is ready once every
D-TA's share s_i·Q is here: SS is their sum (`mpin.combine`). With one missing, logins are
refused (a partial sum would fail every login like a wrong PIN anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from milagro_node.adapters.pairing import G2
from milagro_node.core import mpin

__all__ = ["KEY_KIND", "ServerSecret", "dta_set", "share_key_id"]

KEY_KIND = "mpin-server-secret"


def share_key_id(dta: str) -> str:
    return f"mfa/server-share/{dta}"


def dta_set(members: Iterable[Any], me: str, my_roles: Iterable[str]) -> tuple[str, ...]:
    """The identities whose shares make SS, sorted."""
    dtas = {m.identity for m in members if "dta" in m.roles}
    if not dtas and "dta" in tuple(my_roles):
        dtas = {me}
    return tuple(sorted(dtas))


class ServerSecret:
    def __init__(self, dtas: tuple[str, ...]) -> None:
        self.dtas = dtas
        self._shares: dict[str, G2] = {}
        self.point: G2 | None = None
        self.encoded: bytes | None = None  # SS compressed (96 bytes): what workers get

    @property
    def ready(self) -> bool:
        return self.point is not None

    def have(self) -> list[str]:
        return [d for d in self.dtas if d in self._shares]

    def missing(self) -> list[str]:
        return [d for d in self.dtas if d not in self._shares]

    def counts(self) -> str:
        return f"{len(self._shares)}/{len(self.dtas)}"

    def same(self, dta: str, share: G2) -> bool:
        return self._shares.get(dta) == share

    def add(self, dta: str, share: G2) -> bool:
        """Keep a D-TA's decoded share; recombine. Returns whether SS is ready now.
        Raises `mpin.MpinError` if the shares sum to the identity (SS stays unset)."""
        if dta not in self.dtas:
            raise ValueError(f"{dta} is not a D-TA of this federation")
        self._shares[dta] = share
        self.point = self.encoded = None
        if not self.missing():
            point = mpin.combine(self._shares[d] for d in self.dtas)
            self.point, self.encoded = point, point.to_bytes()
        return self.ready
