"""Reliable delivery over datagrams, without I/O: what to resend when, and what arrived in order.

The client keeps one :class:`SendWindow` for its requests (keyed by request id); the hub's
per-member deliveries use the same RTT estimator (``shared.outbox`` for private messages,
``shared.ackrange`` with :func:`backoff_timeout` for rooms).  A receiver keeps one
:class:`Reorder` per stream: it drops duplicates, holds early arrivals and releases items in
sequence order, and says what to acknowledge (cumulative plus a few selective acks).

Retransmission follows RFC 6298 / RFC 9002: the timeout comes from the smoothed RTT and its
variance, samples are taken only from items sent once (Karn), and each resend doubles the
item's timeout (:func:`backoff_timeout`, the one backoff policy of the client's requests and
the hub's deliveries).  :func:`too_far_behind` is the one rule for dropping a slow consumer.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import attrs

from roomcast.shared import limits

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def backoff_timeout(rto: float, resends: int) -> float:
    """The timeout after ``resends`` resends of the same data (RFC 6298 §5.5): ``rto`` doubled
    each time, at most ``MAX_BACKOFF_DOUBLINGS`` times, never beyond ``MAX_BACKOFF_TIMEOUT``."""
    doublings: int = min(resends, limits.MAX_BACKOFF_DOUBLINGS)
    return min(rto * (1 << doublings), limits.MAX_BACKOFF_TIMEOUT)


def too_far_behind(held: int, held_bytes: int, stalled_for: float) -> bool:
    """Is a member holding ``held`` deliveries (``held_bytes`` bytes), whose acks made no
    progress for ``stalled_for`` seconds, a slow consumer to drop?  Beyond a window only if its
    acks stalled (one still receiving, only slowly, catches up); beyond the hard caps always."""
    if (
        held > limits.MEMBER_WINDOW * limits.MEMBER_WINDOW_HARD_FACTOR
        or held_bytes > limits.MEMBER_WINDOW_BYTES
    ):
        return True
    return held > limits.MEMBER_WINDOW and stalled_for >= limits.ACK_STALL_TIMEOUT


@attrs.define
class RttEstimator:
    """Smoothed round-trip time and the retransmission timeout derived from it (RFC 6298 §2)."""

    srtt: float = 0.0
    rttvar: float = 0.0
    samples: int = 0

    def sample(self, rtt: float) -> None:
        if rtt < 0.0:
            rtt = 0.0
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
    last_sent: float
    backoff: int = 0
    #: Sent more than once: its ack gives no RTT sample (Karn's rule).
    resent: bool = False


@attrs.define
class SendWindow(Generic[K]):
    """Datagrams sent and not yet acknowledged, with their resend deadlines (the client's
    requests; the hub's deliveries use the leaner :class:`shared.outbox.Outbox`)."""

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
        self._items[key] = _InFlight(data, now, now + self.rtt.rto(), now)
        self.bytes_in_flight += len(data)

    def acknowledge(self, key: K, now: float, delay: float = 0.0) -> bool:
        """Forget ``key``; return True if it was in flight.  ``delay`` is how long the peer
        held it before acknowledging (not part of the round trip)."""
        item = self._items.pop(key, None)
        if item is None:
            return False
        self.bytes_in_flight -= len(item.data)
        if not item.resent:
            self.rtt.sample(now - item.sent_at - delay)
        return True

    def pending(self) -> list[K]:
        return list(self._items)

    def pop_all(self) -> list[tuple[K, bytes]]:
        """Every item in flight, oldest first, and forget them."""
        items = [(key, item.data) for key, item in self._items.items()]
        self._items.clear()
        self.bytes_in_flight = 0
        return items

    def next_deadline(self) -> float | None:
        return min((item.deadline for item in self._items.values()), default=None)

    def resend_missing(self, missing: Iterable[K], now: float) -> list[bytes]:
        """Fast retransmit (RFC 9002 §6.1): the peer got later items but not these.  Each is
        resent at most once per smoothed RTT, without backing off its timer."""
        out: list[bytes] = []
        spacing = max(self.rtt.srtt, limits.MIN_RTO / 5)
        for key in missing:
            item = self._items.get(key)
            if item is not None and now - item.last_sent >= spacing:
                item.last_sent = now
                item.resent = True
                out.append(item.data)
        self.retransmits += len(out)
        return out

    def postpone(self, until: float) -> None:
        """The peer asked for a pause: resend nothing before ``until`` (no backoff: it was not
        a loss)."""
        for item in self._items.values():
            item.deadline = max(item.deadline, until)

    def due(self, now: float, most: int = limits.RETRANSMIT_BURST) -> list[bytes]:
        """Datagrams whose timeout has passed: resend the ``most`` oldest now (their timeout
        doubles); the other expired ones wait one more timeout, so a timeout never floods."""
        out: list[bytes] = []
        base = self.rtt.rto()
        for item in self._items.values():
            if item.deadline > now:
                continue
            if len(out) < most:
                item.backoff += 1
                item.last_sent = now
                item.resent = True
                out.append(item.data)
            item.deadline = now + backoff_timeout(base, item.backoff)
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
        if seq == self.expected and not self._waiting:  # the usual case: next in line
            self.expected = seq + 1
            return [item]
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
