"""One room's delivery state: a ring of its encoded events and its members' ack ranges.

Why: the Python work per room message must not grow with the room.  A room message is
encoded once, kept once in the ring (indexed by seq, with the cumulative byte count and the
fan-out time), and leaves as ONE :class:`Fanout` item over the room's :class:`LiveVector`:
the addresses of its live envelope members, built when membership changes, not per
message.  The shell sends it with one ``sendmmsg`` over a vector whose entries all point at
the same bytes; the sender is skipped by slicing.  Text members in ``/live on`` mode get their
own vector with the plain line.

Each envelope member has an :class:`~shared.ackrange.AckRange` (a few integers).  A member
whose in-flight window (room seq minus acked-up-to) is full leaves the live fan-out: the ring
serves it as its acks make room, and it rejoins the vector once it has caught up.  Which
member leaves when is found without a per-member test: members are filed by the seq at which
their window fills (``acked + window + 1``), so each message looks up one key.  Retransmission
is a timer scan over the room's members (:meth:`RoomFanout.scan`), never per delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from roomcast.shared import limits
from roomcast.shared.ackrange import AckRange
from roomcast.shared.reliable import too_far_behind

Address = tuple[Any, ...]
INF = float("inf")


class LiveVector:
    """Addresses that get a room message at once; immutable once built.  ``native`` is the
    shell's cache for it (its ``sendmmsg`` vector)."""

    __slots__ = ("addresses", "index", "native")

    def __init__(self, addresses: list[Address]) -> None:
        self.addresses = addresses
        self.index = {address: i for i, address in enumerate(addresses)}
        self.native: Any = None


class Fanout:
    """One datagram to every address of ``vector`` but the one at ``skip`` (-1: none)."""

    __slots__ = ("data", "skip", "vector")

    def __init__(self, data: bytes, vector: LiveVector, skip: int) -> None:
        self.data, self.vector, self.skip = data, vector, skip

    def __len__(self) -> int:
        return len(self.vector.addresses) - (self.skip >= 0)

    def targets(self) -> list[Address]:
        """The addresses in the order ``sendmmsg`` uses: the ones after the skipped one, then
        the ones before it (the vector is laid out twice, so this is one slice)."""
        addresses, skip = self.vector.addresses, self.skip
        return addresses if skip < 0 else addresses[skip + 1 :] + addresses[:skip]


EMPTY = LiveVector([])


class RoomFanout:
    """The ring, the ack ranges and the live vectors of one room."""

    def __init__(self, seq: int) -> None:
        #: The last seq committed.
        self.seq = seq
        #: seq -> (encoded event, bytes of the room's events up to it, fan-out time).
        self.ring: dict[int, tuple[bytes, int, float]] = {}
        self.oldest = seq + 1
        self.total_bytes = 0
        self.base_bytes = 0  # the cumulative count just before ``oldest``
        self.next_trim = 0
        #: In-flight deliveries per member; bounded so that a full window also stays within
        #: MEMBER_WINDOW_BYTES (a window of the largest datagrams).
        self.window = max(1, min(limits.MEMBER_IN_FLIGHT, limits.MEMBER_WINDOW_BYTES // limits.MAX_DATAGRAM))
        self.ranges: dict[Address, AckRange] = {}
        self.held_back: set[Address] = set()
        #: seq -> members whose window is full before that seq (they leave the live vector).
        self.exits: dict[int, set[Address]] = {}
        self.envelope_live: LiveVector | None = EMPTY  # None: rebuild before the next message
        self.text_live = EMPTY
        self.text_queued: list[Any] = []
        #: When the retransmission scan runs next (inf: nothing unacknowledged).
        self.scan_at = INF

    # --- membership ------------------------------------------------------------------------

    def join(self, address: Address, envelope: bool) -> AckRange | None:
        """A member joined (its stream starts after the current seq)."""
        self.envelope_live = None
        if not envelope:
            return None
        ack = self.ranges[address] = AckRange(self.seq)
        self._file(address, ack)
        return ack

    def leave(self, address: Address) -> None:
        self.envelope_live = None
        ack = self.ranges.pop(address, None)
        if ack is not None:
            self._unfile(address, ack)
            self.held_back.discard(address)

    def changed(self) -> None:
        """A member's kind of delivery changed (``/live``): rebuild the vectors."""
        self.envelope_live = None

    def rebuild(self, members: dict[Address, Any]) -> None:
        """The live vectors, from the members (``hub.rooms.Client``); only after a change."""
        live = [a for a in self.ranges if a not in self.held_back]
        texts = [c for c in members.values() if c.text is not None]
        self.envelope_live = LiveVector(live)
        self.text_live = LiveVector([c.address for c in texts if c.text.live])
        self.text_queued = [c for c in texts if not c.text.live]

    def _exit_key(self, ack: AckRange) -> int:
        """The seq before which a live member's window is full: in flight are the seqs after
        ``acked`` that are not selectively acknowledged."""
        return ack.acked + len(ack.sacks) + self.window + 1

    def _file(self, address: Address, ack: AckRange) -> None:
        key = self._exit_key(ack)
        bucket = self.exits.get(key)
        if bucket is None:
            self.exits[key] = {address}
        else:
            bucket.add(address)

    def _unfile(self, address: Address, ack: AckRange) -> None:
        if not ack.held:
            bucket = self.exits.get(self._exit_key(ack))
            if bucket is not None:
                bucket.discard(address)

    # --- a room message --------------------------------------------------------------------

    def add(self, seq: int, data: bytes, now: float) -> list[Address]:
        """Keep the event ``seq``; members whose window is now full leave the live vector.
        Returns the members now too far behind (a window of events or of bytes)."""
        self.seq = seq
        self.total_bytes += len(data)
        self.ring[seq] = (data, self.total_bytes, now)
        full = self.exits.pop(seq, None)
        if full:
            for address in full:
                ack = self.ranges[address]
                ack.held, ack.sent, ack.progress_at = True, seq - 1, now
                self.held_back.add(address)
            self.envelope_live = None
        too_slow = self.too_slow(now) if self.held_back else []
        if len(self.ring) > 2 * self.window + 64 and seq >= self.next_trim:
            self._trim()
        return too_slow

    def own(self, address: Address, seq: int) -> None:
        """``seq`` came from this member: it has it without a delivery."""
        ack = self.ranges.get(address)
        if ack is None:
            return
        if seq == ack.acked + 1 and not ack.sacks and not ack.held and not ack.resent:
            # The usual case, its line next in its stream: it moves from its exit key (see
            # _exit_key) to the next one, as ack.mark and _unfile/_file would move it.
            exits, key = self.exits, seq + self.window
            bucket = exits.get(key)
            if bucket is not None:
                bucket.discard(address)
            ack.acked = seq
            if ack.sent < seq:
                ack.sent = seq
            bucket = exits.get(key + 1)
            if bucket is None:
                exits[key + 1] = {address}
            else:
                bucket.add(address)
            return
        self._unfile(address, ack)
        ack.mark(seq)
        if not ack.held:
            self._file(address, ack)

    def stall_deadline(self) -> float:
        """When a held-back member past its window counts as stalled, if its acks make no
        progress meanwhile (INF: none is past its window)."""
        return min(
            (
                self.ranges[a].progress_at + limits.ACK_STALL_TIMEOUT
                for a in self.held_back
                if self.ranges[a].unacked(self.seq) > limits.MEMBER_WINDOW
            ),
            default=INF,
        )

    def too_slow(self, now: float) -> list[Address]:
        """Held-back members to drop: past a window whose acks stalled, or past the hard caps
        (one still acknowledging, only slowly, is served from the ring and catches up)."""
        out = []
        for address in self.held_back:
            ack = self.ranges[address]
            held = ack.unacked(self.seq)
            behind = self.total_bytes - self._bytes_through(ack.acked)
            if behind > limits.MEMBER_WINDOW_BYTES:  # minus what it acknowledged selectively
                behind -= sum(len(self.ring[s][0]) for s in ack.sacks if s in self.ring)
            if too_far_behind(held, behind, now - ack.progress_at):
                out.append(address)
        return out

    def _bytes_through(self, seq: int) -> int:
        entry = self.ring.get(seq)
        return entry[1] if entry is not None else self.base_bytes if seq < self.oldest else self.total_bytes

    def _trim(self) -> None:
        """Forget events no member can still need (history is kept apart, in Room.history).
        Looks at every member, so it runs at most once per 64 events."""
        self.next_trim = self.seq + 64
        floor = min((ack.acked for ack in self.ranges.values()), default=self.seq)
        floor = min(floor, self.seq - self.window)
        ring = self.ring
        while self.oldest < floor:
            entry = ring.pop(self.oldest, None)
            if entry is not None:
                self.base_bytes = entry[1]
            self.oldest += 1

    def sent_at(self, seq: int) -> float:
        entry = self.ring.get(seq)
        return entry[2] if entry is not None else -INF

    def data(self, seqs: list[int]) -> list[bytes]:
        ring = self.ring
        return [ring[s][0] for s in seqs if s in ring]

    # --- acks and timers -------------------------------------------------------------------

    def acknowledge(
        self, address: Address, upto: int, sack: tuple[int, ...], now: float, rtt: Any
    ) -> tuple[list[bytes], list[bytes]]:
        """A member's ack: (deliveries to resend at once, deliveries now served from the ring)."""
        ack = self.ranges.get(address)
        if ack is None:
            return [], []
        if not sack and not ack.held and not ack.sacks:
            self._slide(address, ack, upto, now, rtt)
            return [], []
        top = ack.top(self.seq)
        if not ack.held:
            self._unfile(address, ack)
        # Up to the room's seq, not only what was sent: a held-back member may have what it
        # was not sent yet from elsewhere (history), and must not be sent it again.
        newest = ack.acknowledge(upto, sack, self.seq)
        if newest:
            ack.progress_at = now
        if ack.clean_after < newest <= top and newest in self.ring:
            rtt.sample(now - self.ring[newest][2])
        resend: list[bytes] = []
        top = ack.top(self.seq)
        if sack and ack.acked < top:
            spacing = max(rtt.srtt, limits.MIN_RTO / 5)
            seqs = ack.fast_resend(now, top, max(sack), self.sent_at, spacing)
            resend = self.data(seqs)
        if not ack.held:
            self._file(address, ack)
            return resend, []
        return resend, self._serve(address, ack, now)

    def _slide(self, address: Address, ack: AckRange, upto: int, now: float, rtt: Any) -> None:
        """The usual ack, from a live member with no gap on either side: its window slides
        (it is filed under its new exit key), nothing is resent, nothing served."""
        before = ack.acked
        newest = ack.acknowledge(upto, (), self.seq)
        if not newest:
            return
        ack.progress_at = now
        exits, window = self.exits, self.window + 1  # its keys, with no selective acks
        bucket = exits.get(before + window)
        if bucket is not None:
            bucket.discard(address)
        bucket = exits.get(newest + window)
        if bucket is None:
            exits[newest + window] = {address}
        else:
            bucket.add(address)
        if ack.clean_after < newest:
            entry = self.ring.get(newest)
            if entry is not None:
                rtt.sample(now - entry[2])

    def _serve(self, address: Address, ack: AckRange, now: float) -> list[bytes]:
        """A held-back member's window has room: send it the next events from the ring, and
        put it back in the live vector once it has caught up."""
        upto = min(self.seq, ack.acked + len(ack.sacks) + self.window)
        sacks = ack.sacks  # its own messages, if any
        seqs = [s for s in range(ack.sent + 1, upto + 1) if s not in sacks]
        out = self.data(seqs)
        if upto > ack.sent:
            ack.served(now, seqs, upto)
        if ack.sent == self.seq and self.seq + 1 < self._exit_key(ack):
            ack.held = False
            self.held_back.discard(address)
            self._file(address, ack)
            self.envelope_live = None
        return out

    def held(self, address: Address) -> int:
        ack = self.ranges.get(address)
        return 0 if ack is None else ack.unacked(self.seq)  # sent or waiting for room

    def pending(self, address: Address) -> list[int]:
        ack = self.ranges.get(address)
        return [] if ack is None else ack.missing(ack.top(self.seq))

    def deadline(self, address: Address, rto: float) -> float:
        """When this member's oldest unacknowledged event is due for a resend (inf: none)."""
        ack = self.ranges.get(address)
        if ack is None or not ack.missing(ack.top(self.seq), most=1):
            return INF
        return ack.deadline(self.sent_at(ack.acked + 1), rto)

    def scan(self, now: float, rto_of: Callable[[Address], float]) -> list[tuple[bytes, Address]]:
        """The retransmission timer scan: resend to each member whose oldest unacknowledged
        event timed out (its ``RETRANSMIT_BURST`` lowest missing ones), and find when to scan
        next."""
        out: list[tuple[bytes, Address]] = []
        next_at = INF
        for address, ack in self.ranges.items():
            top = ack.top(self.seq)
            if ack.acked >= top:
                continue
            first, rto = self.sent_at(ack.acked + 1), rto_of(address)
            due = ack.deadline(first, rto)
            if due <= now:
                seqs = ack.on_timeout(now, top, limits.RETRANSMIT_BURST)
                out += [(data, address) for data in self.data(seqs)]
                due = ack.deadline(first, rto) if seqs else INF
            next_at = min(next_at, due)
        self.scan_at = next_at
        return out
