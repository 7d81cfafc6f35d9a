"""The receiving half of the client's link: each room's deliveries shown in seq order, exactly
once, and the acknowledgements that tell the hub what arrived.

Acks are delayed and cumulative (QUIC-style): one goes ``ACK_DELAY`` after the first
unacknowledged delivery, or at once after ``ACK_EVERY`` of them, or at once when a delivery
is a duplicate (our ack was lost) or leaves a gap (theirs was), with up to ``MAX_SACK``
selective acks beyond the cumulative point.  The private stream ("") works the same way.

After a rejoin the stream catches up (``shared.catchup``): what was missed comes as history
while new deliveries already arrive; both are shown once the catch-up is complete, history
first, each once, in the room's order.
"""

from __future__ import annotations

import attrs

from roomcast.shared import events, limits
from roomcast.shared.catchup import CatchUp
from roomcast.shared.names import fold
from roomcast.shared.reliable import Reorder

Shown = events.RoomEvent


@attrs.define
class RoomStream:
    """One joined room: its deliveries are released in seq order."""

    name: str
    order: Reorder[Shown | None] = attrs.Factory(Reorder)
    #: Deliveries (and own seqs, as None) that arrived before the join's answer told us where
    #: the stream starts.
    early: list[tuple[int, Shown | None]] = attrs.Factory(list)
    started: bool = False
    #: The seq our join took in this session: the stream starts after it.
    start: int = 0
    last_seq: int = 0
    #: Rejoined after a lost session: once the join is answered, ask for what was missed.
    catch_up: bool = False
    #: While catching up after a rejoin: what is collected and held back meanwhile.
    catching: CatchUp | None = None
    #: The last seq a finished catch-up covered: replayed copies up to it that come late are
    #: not shown again.
    caught_through: int = 0


@attrs.define
class _AckState:
    due: float | None = None
    count: int = 0


class Inbox:
    """The rooms this client is in (keyed by folded name) and its private stream."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomStream] = {}
        self.direct: Reorder[Shown | None] = Reorder()
        self._acks: dict[str, _AckState] = {}
        self._out: list[events.Ack] = []

    # --- membership -----------------------------------------------------------------------------

    def joining(self, room: str) -> None:
        self.rooms.setdefault(fold(room), RoomStream(room))

    def left(self, room: str) -> None:
        self.rooms.pop(fold(room), None)

    def __contains__(self, room: str) -> bool:
        return fold(room) in self.rooms

    def names(self) -> list[str]:
        return [stream.name for stream in self.rooms.values()]

    def restart(self, same_history: bool) -> None:
        """A new session: every stream starts again at its rejoin and catches up; with another
        hub history (``same_history`` false) our seqs mean nothing, so from the start."""
        for stream in self.rooms.values():
            stream.order, stream.started, stream.early, stream.catch_up = Reorder(), False, [], True
            # What was held back during an unfinished catch-up was never shown: since
            # ``last_seq`` did not move, the next catch-up asks for it again.
            stream.catching = None
            if not same_history:
                stream.last_seq = stream.caught_through = 0
        self.direct = Reorder()
        self._acks.clear()

    def start(self, room: str, seq: int, now: float) -> tuple[list[Shown], events.History | None]:
        """Our join took ``seq``: the stream starts after it.  Returns what can be shown now and,
        after a rejoin, the request for what was missed."""
        stream = self.rooms.get(fold(room))
        if stream is None or stream.started:
            return [], None
        stream.start = seq
        catch_up = None
        if stream.catch_up and seq - 1 > stream.last_seq:
            stream.catching = CatchUp(since=stream.last_seq, until=seq - 1)
            catch_up = stream.catching.first_ask(stream.name)
        stream.catch_up, stream.started = False, True
        stream.order.skip_to(seq + 1)  # a fresh stream: nothing waits yet
        if stream.catching is None:
            stream.last_seq = max(stream.last_seq, seq)
        early, stream.early = stream.early, []
        return [shown for s, item in early for shown in self._release(stream, s, item, now)], catch_up

    def before_start(self, room: str, seq: int) -> bool:
        """``seq`` is older than our join in this session: an event of ours carried out before
        (by a hub we lost), which the catch-up from our last seq brings, marked history."""
        stream = self.rooms.get(fold(room))
        return stream is not None and stream.started and seq < stream.start

    # --- arrivals -------------------------------------------------------------------------------

    def own(self, room: str, seq: int, now: float) -> list[Shown]:
        """Our own line took ``seq``: the hub does not send it back, so mark it received.  It
        owes no ack (the hub marked it as ours when it answered): only deliveries count."""
        stream = self.rooms.get(fold(room))
        if stream is None:
            return []
        if not stream.started:
            stream.early.append((seq, None))
            return []
        return self._release(stream, seq, None, now)

    def receive(self, event: Shown, now: float) -> list[Shown]:
        """A delivery from the hub: what is now ready to show, in order (maybe nothing)."""
        if event.history:
            return self._history(event)
        if not event.room:
            return self._ready("", None, self.direct.push(event.seq, event), now)
        stream = self.rooms.get(fold(event.room))
        if stream is None:
            self._out.append(events.Ack(stream=event.room, upto=event.seq))  # not ours (any more)
            return []
        if not stream.started:
            stream.early.append((event.seq, event))
            return []
        return self._release(stream, event.seq, event, now)

    def _release(self, stream: RoomStream, seq: int, event: Shown | None, now: float) -> list[Shown]:
        before = stream.order.duplicates
        ready = stream.order.push(seq, event)
        # Ack at once: loss or lost ack (our own line, even repeated or ahead of a gap, is neither).
        if event is not None and (stream.order.duplicates != before or stream.order.gap()):
            self._acks.setdefault(stream.name, _AckState()).due = now
        return self._ready(stream.name, stream, ready, now)

    def _ready(
        self, name: str, stream: RoomStream | None, ready: list[Shown | None], now: float
    ) -> list[Shown]:
        # Our own lines (None) owe no ack: the hub marked them as ours when it answered.
        shown = [item for item in ready if item is not None]
        ack = self._acks.get(name)
        if ack is None:
            ack = self._acks[name] = _AckState()
        ack.count += len(shown)
        if ack.count >= limits.ACK_EVERY:
            ack.due = now
        elif ack.due is None and shown:
            ack.due = now + limits.ACK_DELAY
        if ack.due is not None and ack.due <= now:
            self._ack(name)
        if stream is not None and stream.catching is not None:
            stream.catching.held += shown  # shown once the history before them is
            return []
        if stream is not None:
            stream.last_seq = stream.order.expected - 1
        return shown

    # --- catching up ----------------------------------------------------------------------------

    def _history(self, event: Shown) -> list[Shown]:
        """A replayed event: collected if it belongs to a catch-up, else shown as it is."""
        stream = self.rooms.get(fold(event.room))
        if stream is None:
            return [event]
        if stream.catching is not None and stream.catching.wants(event.seq):
            stream.catching.collect(event)
            return []
        if stream.catching is not None or event.seq <= stream.caught_through:
            return []  # a copy that came late, or outside what was asked for: shown already
        return [event]

    def caught_up(self, asked: events.History, last: int) -> tuple[list[Shown], events.History | None]:
        """The hub answered the catch-up question ``asked``, having replayed up to seq ``last``
        (0: nothing).  Either the next question (about a gap: a datagram lost), or what to show
        now that the catch-up is complete: the history, then the deliveries held back."""
        stream = self.rooms.get(fold(asked.room))
        if stream is None or stream.catching is None:
            return [], None
        again = stream.catching.answered(stream.name, asked, last)
        if again is not None:
            return [], again
        ready = stream.catching.ready()
        stream.caught_through, stream.catching = stream.catching.until, None
        stream.last_seq = stream.order.expected - 1
        return ready, None

    # --- acknowledgements -----------------------------------------------------------------------

    def next_ack_deadline(self) -> float | None:
        return min((ack.due for ack in self._acks.values() if ack.due is not None), default=None)

    def on_timer(self, now: float) -> None:
        for name, ack in list(self._acks.items()):
            if ack.due is not None and ack.due <= now:
                self._ack(name)

    def acks_to_send(self) -> list[events.Ack]:
        """The acks to send, the newest per stream only: a later ack of a stream says all an
        earlier one did (cumulative), so a batch of deliveries costs one ack, not several."""
        out, self._out = self._out, []
        if len(out) < 2:
            return out
        return list({ack.stream: ack for ack in out}.values())

    def _ack(self, name: str) -> None:
        stream = self.rooms.get(fold(name)) if name else None
        upto, sack = (stream.order if stream is not None else self.direct).ack()
        self._out.append(events.Ack(stream=name, upto=upto, sack=sack))
        self._acks[name] = _AckState()
