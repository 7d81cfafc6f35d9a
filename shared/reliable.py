"""Reliable delivery over datagrams, without I/O: what to resend when, and what arrived in order.

The hub keeps one :class:`SendWindow` per member (its room deliveries, keyed by stream and
seq); the client keeps one for its requests (keyed by request id).  A receiver keeps one
:class:`Reorder` per stream: it drops duplicates, holds early arrivals and releases items in
sequence order, and says what to acknowledge (cumulative plus a few selective acks).

Retransmission follows RFC 6298 / RFC 9002: the timeout comes from the smoothed RTT and its
variance, samples are taken only from items sent once (Karn), and each resend doubles the
item's timeout, up to four times ``MAX_RTO``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import attrs

from shared import limits

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@attrs.define
class RttEstimator:
    """Smoothed round-trip time and the retransmission timeout derived from it (RFC 6298 §2)."""

    srtt: float = 0.0
    rttvar: float = 0.0
    samples: int = 0

    def sample(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        if self.samples == 0:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.samples += 1

    def rto(self) -> float:
        if self.samples == 0:
            return limits.INITIAL_RTO
        return min(max(self.srtt + 4 * self.rttvar + limits.ACK_DELAY, limits.MIN_RTO), limits.MAX_RTO)


@attrs.define(slots=True)
class _InFlight:
    data: bytes
    sent_at: float
    deadline: float
    backoff: int = 0


@attrs.define
class SendWindow(Generic[K]):
    """Datagrams sent and not yet acknowledged, with their resend deadlines."""

    rtt: RttEstimator = attrs.Factory(RttEstimator)
    _items: dict[K, _InFlight] = attrs.Factory(dict)
    bytes_in_flight: int = 0
    retransmits: int = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def track(self, key: K, data: bytes, now: float) -> None:
        """Remember ``data`` (just sent) until ``key`` is acknowledged."""
        if key in self._items:
            return
        self._items[key] = _InFlight(data, now, now + self.rtt.rto())
        self.bytes_in_flight += len(data)

    def acknowledge(self, key: K, now: float) -> bool:
        """Forget ``key``; return True if it was in flight."""
        item = self._items.pop(key, None)
        if item is None:
            return False
        self.bytes_in_flight -= len(item.data)
        if item.backoff == 0:
            self.rtt.sample(now - item.sent_at)
        return True

    def acknowledge_many(self, keys: Iterable[K], now: float) -> int:
        return sum(self.acknowledge(key, now) for key in keys)

    def pending(self) -> list[K]:
        return list(self._items)

    def pop_all(self) -> list[tuple[K, bytes]]:
        """Every item still in flight, oldest first, and forget them."""
        items = [(key, item.data) for key, item in self._items.items()]
        self._items.clear()
        self.bytes_in_flight = 0
        return items

    def next_deadline(self) -> float | None:
        return min((item.deadline for item in self._items.values()), default=None)

    def due(self, now: float) -> list[bytes]:
        """Datagrams whose timeout has passed: resend them now (their timeout doubles)."""
        out: list[bytes] = []
        base = self.rtt.rto()
        for item in self._items.values():
            if item.deadline <= now:
                item.backoff += 1
                item.deadline = now + min(base * (2 ** min(item.backoff, 16)), limits.MAX_RTO * 4)
                out.append(item.data)
        self.retransmits += len(out)
        return out


@attrs.define
class Reorder(Generic[T]):
    """Releases items of one stream in sequence order, exactly once.

    ``expected`` is the next seq to release.  Items ahead of it (within ``window``) wait;
    items behind it, or already waiting, are duplicates.
    """

    expected: int = 1
    window: int = limits.MEMBER_WINDOW
    _waiting: dict[int, T] = attrs.Factory(dict)
    duplicates: int = 0

    def push(self, seq: int, item: T) -> list[T]:
        """Offer ``item`` with ``seq``; return the items now ready, in order (maybe none)."""
        if seq < self.expected or seq in self._waiting:
            self.duplicates += 1
            return []
        if seq >= self.expected + self.window:
            return []  # too far ahead: the sender will resend it once the gap is filled
        self._waiting[seq] = item
        return self._release()

    def skip_to(self, seq: int) -> list[T]:
        """Start (or restart) the stream at ``seq``; return the waiting items now ready."""
        self.expected = seq
        self._waiting = {s: v for s, v in self._waiting.items() if s >= seq}
        return self._release()

    def _release(self) -> list[T]:
        ready: list[T] = []
        while self.expected in self._waiting:
            ready.append(self._waiting.pop(self.expected))
            self.expected += 1
        return ready

    def gap(self) -> bool:
        return bool(self._waiting)

    def ack(self) -> tuple[int, tuple[int, ...]]:
        """(everything up to this seq arrived, seqs beyond it that arrived too)."""
        return self.expected - 1, tuple(sorted(self._waiting)[: limits.MAX_SACK])
