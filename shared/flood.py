"""Token buckets for flood control: a burst, then a steady rate (IRC "fakelag" style)."""

from __future__ import annotations

import attrs


@attrs.define
class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; a rate of 0 means unlimited."""

    rate: float
    burst: float
    tokens: float = attrs.field(default=attrs.Factory(lambda self: self.burst, takes_self=True))
    updated: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False means "slow down"."""
        if self.rate <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def wait_time(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens will be there."""
        if self.rate <= 0 or self.tokens >= cost:
            return 0.0
        return (cost - self.tokens) / self.rate
