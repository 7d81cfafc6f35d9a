"""What one member has of one room's stream, in a few integers: the hub's per-member state.

The hub keeps each room's encoded events once, in a ring indexed by seq (``hub.fanout``); a
delivery creates no per-member object.  A member's :class:`AckRange` says what it has: every
seq up to ``acked`` and the selective acks in ``sacks`` beyond it.  What it still misses is
every other seq up to ``top``: the room's seq while the member is in the live fan-out, or
``sent``, the last seq sent to it, while it is held back (its in-flight window is full and
it is served from the ring as acks make room).  Retransmission is decided by a timer scan,
never per delivery: the member's oldest missing seq was last sent at the later of its fan-out
time and its entry in ``resent`` (seqs sent again, or served late: only the holes and what a
held-back member was served, never one entry per delivery), and it is resent after the
retransmission timeout, doubled for each timeout in a row (``shared.reliable.backoff_timeout``).

Pure and clock-free: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable

from roomcast.shared.reliable import backoff_timeout

INF = float("inf")


class AckRange:
    """One member's acks on one room stream; see the module docstring."""

    __slots__ = ("acked", "backoff", "clean_after", "held", "progress_at", "resent", "sacks", "sent")

    def __init__(self, start: int) -> None:
        #: Every seq up to this one is acknowledged (the stream starts after ``start``).
        self.acked = start
        #: Seqs beyond ``acked`` acknowledged selectively (all at most ``top``).
        self.sacks: set[int] = set()
        #: The last seq sent to the member while it is held back from the live fan-out.
        self.sent = start
        #: Seqs sent again (or served late from the ring) and when, until acknowledged.
        self.resent: dict[int, float] = {}
        #: Timeouts in a row without progress.
        self.backoff = 0
        #: Seqs up to this one may have been sent more than once, or late: their acks give no
        #: RTT sample (Karn's rule).
        self.clean_after = start
        #: Held back from the live fan-out (its window is full): ``sent`` is its top.
        self.held = False
        #: When its acks last made progress, or it was last held back: a held-back member is
        #: dropped as too slow only once its acks stall (``shared.reliable.too_far_behind``).
        self.progress_at = 0.0

    def top(self, room_seq: int) -> int:
        """The last seq sent to the member: the room's while it is live."""
        return self.sent if self.held else room_seq

    def unacked(self, top: int) -> int:
        """Seqs up to ``top`` not acknowledged."""
        return top - self.acked - len(self.sacks)

    def missing(self, top: int, below: int | None = None, most: int | None = None) -> list[int]:
        """The unacknowledged seqs up to ``top`` (and under ``below``), lowest first, at most
        ``most`` of them."""
        end = top if below is None else min(top, below - 1)
        sacks, out = self.sacks, []
        for seq in range(self.acked + 1, end + 1):
            if seq not in sacks:
                out.append(seq)
                if most is not None and len(out) >= most:
                    break
        return out

    def acknowledge(self, upto: int, sack: tuple[int, ...], top: int) -> int:
        """Take an ack: everything up to ``upto`` and the seqs in ``sack`` (what lies beyond
        ``top`` was never sent and is ignored).  Returns the highest seq it newly acknowledged,
        or 0 when the ack says nothing new (a duplicate, or reordered behind a later one)."""
        if not sack and not self.sacks:  # the usual ack: cumulative, no gap on either side
            if upto > top:
                upto = top
            if upto <= self.acked:
                return 0
            self.acked = upto
            if self.resent:
                self.resent = {s: t for s, t in self.resent.items() if s > upto}
            if upto > self.sent:
                self.sent = upto
            self.backoff = 0
            return upto
        return self.acknowledge_any(upto, sack, top)

    def acknowledge_any(self, upto: int, sack: tuple[int, ...], top: int) -> int:
        """:meth:`acknowledge` for every ack (it takes the usual one on a shorter way)."""
        newest = 0
        upto = min(upto, top)
        if upto > self.acked:
            newest, sacks = upto, self.sacks
            if sacks:
                while newest > self.acked and newest in sacks:  # acknowledged before
                    newest -= 1
                newest = 0 if newest == self.acked else newest
                self.sacks = {s for s in sacks if s > upto}
            self.acked = upto
            if self.resent:
                self.resent = {s: t for s, t in self.resent.items() if s > upto}
        for seq in sack:
            if self.acked < seq <= top and seq not in self.sacks:
                self.sacks.add(seq)
                newest = max(newest, seq)
        self._advance()
        if newest:
            self.backoff = 0
        return newest

    def _advance(self) -> None:
        """A filled gap: the cumulative point moves past the selective acks."""
        while self.acked + 1 in self.sacks:
            self.acked += 1
            self.sacks.discard(self.acked)
            self.resent.pop(self.acked, None)
        self.sent = max(self.sent, self.acked)  # its own lines, marked beyond what was sent

    def mark(self, seq: int) -> None:
        """The member has ``seq`` without a delivery (it sent it), even if it was not sent to
        it yet."""
        if seq == self.acked + 1 and not self.sacks:  # the usual case: next in line
            self.acked = seq
            if self.resent:
                self.resent.pop(seq, None)
            if self.sent < seq:
                self.sent = seq
            return
        self.mark_any(seq)

    def mark_any(self, seq: int) -> None:
        """:meth:`mark` for every seq (it takes the usual one on a shorter way)."""
        if seq > self.acked:
            self.sacks.add(seq)
            self._advance()

    def deadline(self, first_sent: float, rto: float) -> float:
        """When the oldest missing seq, fanned out at ``first_sent``, is due for a resend."""
        last = max(first_sent, self.resent.get(self.acked + 1, -INF))
        return last + backoff_timeout(rto, self.backoff)

    def on_timeout(self, now: float, top: int, most: int) -> list[int]:
        """The timer fired: the ``most`` lowest missing seqs to resend now; back off."""
        seqs = self.missing(top, most=most)
        if seqs:
            self.backoff += 1
            self._sent_again(seqs, now)
        return seqs

    def fast_resend(
        self, now: float, top: int, below: int, fanned_at: Callable[[int], float], spacing: float
    ) -> list[int]:
        """Later seqs were acknowledged: the missing ones under ``below`` to resend at once
        (RFC 9002 §6.1), each at most once per ``spacing`` seconds (``fanned_at`` gives the
        time a seq was fanned out), without backing off."""
        resent = self.resent
        seqs = [
            s
            for s in self.missing(top, below=below)
            if now - max(fanned_at(s), resent.get(s, -INF)) >= spacing
        ]
        self._sent_again(seqs, now)
        return seqs

    def served(self, now: float, seqs: list[int], upto: int) -> None:
        """``seqs`` (up to ``upto``) were sent from the ring (the member was held back)."""
        self.sent = upto
        self._sent_again(seqs, now)

    def _sent_again(self, seqs: list[int], now: float) -> None:
        if seqs:
            resent = self.resent
            for seq in seqs:
                resent[seq] = now
            self.clean_after = max(self.clean_after, seqs[-1])
