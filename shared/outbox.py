"""The hub's side of reliable delivery to one member: deliveries held until acknowledged.

Kept cheap because the hub does this for every member of every room message: per stream
(room, or "" for private messages) a dict from seq to a small record, in seq order, so a
cumulative ack pops from the front and a selective ack is a lookup; one retransmission timer
per member, for the oldest delivery in flight (RFC 6298 §5), not one per delivery; one RTT
sample per ack.  At most ``limit`` deliveries are in flight; more wait in a queue and go out
as acks make room, so a member that falls behind is not buried in datagrams it would lose.
"""

from __future__ import annotations

import itertools
from collections import deque

from roomcast.shared import limits
from roomcast.shared.reliable import RttEstimator, backoff_timeout


class _Held:
    """One delivery in flight."""

    __slots__ = ("data", "last_sent", "resent", "sent_at")

    def __init__(self, data: bytes, now: float) -> None:
        self.data = data
        self.sent_at = now
        self.last_sent = now
        self.resent = False


class Outbox:
    """Deliveries held for one member, in flight or queued."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limits.MEMBER_IN_FLIGHT if limit is None else limit
        self.rtt = RttEstimator()
        self._streams: dict[str, dict[int, _Held]] = {}
        self._in_flight = 0
        self._queue: deque[tuple[str, int, bytes]] = deque()
        #: Bytes held for the member, in flight or queued.
        self.bytes_in_flight = 0
        #: When the oldest delivery in flight is resent if still unacknowledged.
        self.timer: float | None = None
        self._backoff = 0
        #: When the member's acks last made progress (or the first delivery was held).
        self.progress_at: float | None = None

    def __len__(self) -> int:
        return self._in_flight + len(self._queue)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key[1] in self._streams.get(key[0], {})

    def pending(self) -> list[tuple[str, int]]:
        """(stream, seq) of each delivery in flight (not the queued ones)."""
        return [(stream, seq) for stream, held in self._streams.items() for seq in held]

    def stalled_for(self, now: float) -> float:
        """Seconds since the member's acks last made progress while it held deliveries."""
        return 0.0 if self.progress_at is None else now - self.progress_at

    def offer(self, stream: str, seq: int, data: bytes, now: float) -> bool:
        """Hold a delivery; True means send it now, False that it waits in the queue."""
        if not self:
            self.progress_at = now  # the clock starts when something is held
        self.bytes_in_flight += len(data)
        if self._queue or self._in_flight >= self.limit:
            self._queue.append((stream, seq, data))
            return False
        self._track(stream, seq, data, now)
        return True

    def _track(self, stream: str, seq: int, data: bytes, now: float) -> None:
        held = self._streams.get(stream)
        if held is None:
            held = self._streams[stream] = {}
        held[seq] = _Held(data, now)
        self._in_flight += 1
        if self.timer is None:
            self.timer = now + self.rtt.rto()

    def acknowledge(self, stream: str, upto: int, sack: tuple[int, ...], now: float) -> list[bytes]:
        """Forget what the member got (everything up to ``upto``, and ``sack``); return the
        deliveries to resend at once because later ones arrived (fast retransmit)."""
        held = self._streams.get(stream)
        if not held:
            return []
        newest: _Held | None = None
        while held:
            seq = next(iter(held))
            if seq > upto:
                break
            newest = self._forget(held, seq)
        for seq in sack:
            if seq in held:
                newest = self._forget(held, seq)
        if newest is not None or sack:
            # Alive: it acknowledged something new, or reports getting deliveries beyond a hole
            # (repairing that hole may take a few round trips on a lossy, busy path).
            self.progress_at = now
        if newest is not None:  # progress: a fresh RTT sample and timer
            if not newest.resent:
                self.rtt.sample(now - newest.sent_at)
            self._backoff = 0
            self.timer = now + self.rtt.rto() if self._in_flight else None
        # Even an ack with nothing new points at the holes below its selective acks.
        return self._fast_resend(held, max(sack), now) if sack else []

    def _forget(self, held: dict[int, _Held], seq: int) -> _Held:
        item = held.pop(seq)
        self._in_flight -= 1
        self.bytes_in_flight -= len(item.data)
        return item

    def _fast_resend(self, held: dict[int, _Held], below: int, now: float) -> list[bytes]:
        out: list[bytes] = []
        spacing = max(self.rtt.srtt, limits.MIN_RTO / 5)
        for seq, item in held.items():
            if seq >= below:
                break
            if now - item.last_sent >= spacing:
                item.last_sent, item.resent = now, True
                out.append(item.data)
        return out

    def release(self, now: float) -> list[bytes]:
        """Queued deliveries that now fit in flight: send them."""
        out: list[bytes] = []
        while self._queue and self._in_flight < self.limit:
            stream, seq, data = self._queue.popleft()
            self._track(stream, seq, data, now)
            out.append(data)
        return out

    def next_deadline(self) -> float | None:
        return self.timer

    def due(self, now: float, most: int = limits.RETRANSMIT_BURST) -> list[bytes]:
        """The timer fired: resend the ``most`` oldest unacknowledged deliveries (the lowest
        seqs of their streams: what holds the receiver back) and back off."""
        if self.timer is None or now < self.timer:
            return []
        firsts = [item for held in self._streams.values() for item in itertools.islice(held.values(), most)]
        oldest = sorted(firsts, key=lambda item: item.last_sent)[:most]
        for item in oldest:
            item.last_sent, item.resent = now, True
        self._backoff += 1
        self.timer = now + backoff_timeout(self.rtt.rto(), self._backoff) if self._in_flight else None
        return [item.data for item in oldest]

    def pop_all(self) -> list[bytes]:
        """Everything held, and forget it."""
        out = [item.data for held in self._streams.values() for item in held.values()]
        out += [data for _stream, _seq, data in self._queue]
        self._streams.clear()
        self._queue.clear()
        self._in_flight = self.bytes_in_flight = 0
        self.timer = self.progress_at = None
        return out
