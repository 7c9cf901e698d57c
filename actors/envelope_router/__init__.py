"""The envelope-router actor: libp2p host, gossip validation, delivery, request/response.

`actor` is the actor; `inbound` the checks every received envelope passes; `outbox` the
envelopes sent until acknowledged.
"""

from .actor import NAME, EnvelopeRouter

__all__ = ["NAME", "EnvelopeRouter"]
