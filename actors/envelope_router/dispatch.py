"""Which local actors get which received envelopes, by ``kind``.

Part of the envelope-router actor. A local actor that consumes envelopes (the share dealer
takes ``dta.*``, the authenticator ``mfa.*``) sends the router `SubscribeKinds` when it
starts; the router then tells it `EnvelopeArrived` for every envelope of a matching kind
that it keeps (after validation and opening). The node hands every life of the router the
same `Routes`, so subscriptions survive a router restart. Delivery waits for room in the consumer's
mailbox (back-pressure) but at most `TELL_TIMEOUT_S`: a stuck consumer must not stall the
gossip reader, and the envelope stays in the inbox (`envelope.inbox`) either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..messages import EnvelopeArrived

TELL_TIMEOUT_S = 5.0


class Routes:
    def __init__(self) -> None:
        self._by_prefix: dict[str, set[str]] = {}
        self.dropped = 0

    def subscribe(self, prefixes: tuple[str, ...], actor: str) -> None:
        for prefix in prefixes:
            self._by_prefix.setdefault(prefix, set()).add(actor)

    def targets(self, kind: str) -> list[str]:
        """Every actor subscribed to a prefix of ``kind`` (each once), sorted."""
        return sorted({actor for prefix, actors in self._by_prefix.items() if kind.startswith(prefix)
                       for actor in actors})

    async def dispatch(self, tell: Callable[[str, Any], Awaitable[None]], arrived: EnvelopeArrived) -> None:
        for actor in self.targets(arrived.kind):
            with trio.move_on_after(TELL_TIMEOUT_S) as waited:
                await tell(actor, arrived)
            if waited.cancelled_caught:
                self.dropped += 1
