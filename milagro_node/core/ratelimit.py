"""A token bucket (sans-IO: the caller passes the time in).

Used per API connection now, and per libp2p peer by the envelope router later.
"""

from __future__ import annotations

import attrs


@attrs.define
class TokenBucket:
    rate: float  # tokens added per second
    burst: float  # most tokens held at once
    tokens: float = attrs.field(default=None)
    updated: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = self.burst

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if there are enough; say whether it was allowed."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True
