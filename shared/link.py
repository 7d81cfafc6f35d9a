"""The client's side of a session with the hub, without I/O.

:class:`HubLink` takes datagrams and the time in (:meth:`~HubLink.receive_datagram`,
:meth:`~HubLink.on_timer`) and gives datagrams out (:meth:`~HubLink.datagrams_to_send`) and
:class:`LinkEvent` values for the user interface.  It does the handshake (hello, cookie,
welcome), numbers requests and resends them until answered, puts each room's deliveries in
seq order exactly once and acknowledges them (delayed, cumulative), pings when idle, and
after a hub restart or silence says so, validates again, rejoins its rooms under the same
nick, asks for what it missed and resends what was not answered.

Given a list of hubs (``shared.hublist``), it moves on to the next one when its hub goes
silent or forgets the session, and does the same there: the shell sends to the hub that
:attr:`HubLink.hub` names and listens to nothing else.  Each line (``say``) carries the
client's own number for it (``mid``), which survives resends, new sessions and other hubs, and
the hello carries the resume secret of the last ``welcome``, so a cluster of hubs carries each
line out once and keeps the nick.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs

from roomcast.shared import envelope, events, limits
from roomcast.shared.fastdeliver import decode_deliver
from roomcast.shared.held import HeldLines, in_typed_order
from roomcast.shared.hublist import HubList
from roomcast.shared.inbox import Inbox, Shown
from roomcast.shared.names import fold
from roomcast.shared.reliable import SendWindow
from roomcast.shared.reports import (
    Answered,
    Connected,
    LinkEvent,
    Problem,
    Reconnecting,
    Refused,
    Show,
    Unreachable,
)

__all__ = [
    "FATAL_AT_HELLO",
    "TRANSIENT",
    "Answered",
    "Connected",
    "HubLink",
    "LinkEvent",
    "LinkState",
    "Problem",
    "Reconnecting",
    "Refused",
    "Show",
    "Unreachable",
]

#: Refusals that mean "not now": the request (or hello) is sent again after a pause.
TRANSIENT = frozenset({"slow-down", "shutting-down", "unavailable"})
#: Refusals of a hello that no retry can fix.
FATAL_AT_HELLO = frozenset(
    {"nick-taken", "name-confusable", "name-mixed-scripts", "hub-full", "too-many-clients"}
)


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


#: Answers to a hello after which, given a list of hubs, the link tries the next one: this hub is
#: busy or going away, or full ("nick-taken" holds on every hub of a cluster: it stays fatal).
MOVE_ON_AT_HELLO = TRANSIENT | {"hub-full", "too-many-clients"}


class HubLink:
    """One client's session with the hub (see module docstring)."""

    def __init__(
        self,
        nick: str,
        now: float,
        give_up_after: float | None = None,
        hubs: Sequence[str] = ("hub",),
    ) -> None:
        self.nick = nick
        self.give_up_after = give_up_after
        self.hubs = HubList(tuple(hubs), since=now)
        #: The secret the last welcome gave, presented in the next hello (empty: none given).
        self.resume = b""
        #: Numbers this client's lines (``Say.mid``) across sessions and hubs: with the resume
        #: secret, which names the session, a cluster knows a resent line for what it is.
        self._next_mid = 1
        self.state = LinkState.CONNECTING
        self.token = b""
        self.hub_id = b""
        self.inbox = Inbox()
        #: Set by the shell while its user cannot take more lines (a full output): room events
        #: are left unacknowledged, so the hub keeps and resends them; the rest goes on as usual.
        self.holding = False
        self._window: SendWindow[int] = SendWindow()
        self._inflight: dict[int, Any] = {}
        self._backlog: deque[Any] = deque()
        #: After the hub took us out of our rooms: the rejoins go first, then the requests it
        #: refused meanwhile (in order), and the backlog waits until every request sent
        #: before the rejoin (ids up to ``_barrier``) is answered, so no line overtakes another.
        self._rejoins: deque[Any] = deque()
        self._replay: deque[Any] = deque()
        self._barrier = 0
        #: Lines the cluster did not confirm in time, waiting for their resend (same mid).
        self._held = HeldLines()
        self._rejoined_at = -1e9
        self._opened_at = -1e9
        self._next_id = 1
        self._hold_until = 0.0
        self._out: list[bytes] = []
        self._cookie = b""
        self._hello_at = now
        self._connecting_since = now
        self._ever_connected = False
        self._last_heard = now
        self._last_sent = now
        self._ping_interval = self.hubs.ping_interval(0.0)
        self._send_hello(now)

    # --- the shell's interface --------------------------------------------------------------------

    @property
    def hub(self) -> int:
        """The index, in the hub list, of the hub in use: the shell sends there, and listens to
        that hub only."""
        return self.hubs.index

    def submit(self, request: Any, now: float) -> None:
        """Queue a request (its id is assigned here); it is resent until the hub answers."""
        self._backlog.append(request)
        self._pump(now)

    @property
    def busy(self) -> int:
        """Requests not answered yet (in flight or queued)."""
        queued = len(self._backlog) + len(self._rejoins) + len(self._replay) + len(self._held)
        return len(self._inflight) + queued

    def close(self) -> None:
        """Say bye to the hub (best effort) and stop."""
        if self.state is LinkState.OPEN:
            self._send(events.Bye(reason="quit"), 0.0)
        self.state = LinkState.CLOSED

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        if self.state is LinkState.CLOSED:
            return None
        if self.state is LinkState.CONNECTING:
            deadlines = [self._hello_at]
            if self.give_up_after is not None:
                deadlines.append(self._connecting_since + self.give_up_after)
        else:
            deadlines = [self._ping_at(), self._last_heard + self.hubs.silence_timeout()]
            deadlines.append(max(self._window.next_deadline() or float("inf"), self._hold_until))
            deadlines.append(self.inbox.next_ack_deadline() or float("inf"))
            deadlines.append(self._held.next_deadline() or float("inf"))
        return min(deadlines)

    def on_timer(self, now: float) -> list[LinkEvent]:
        if self.state is LinkState.CLOSED:
            return []
        if self.state is LinkState.CONNECTING:
            return self._connecting_timer(now)
        silence = self.hubs.silence_timeout()
        if now - self._last_heard >= silence:
            return self._lost(f"no answer from {self._this_hub()} for {silence:.0f} s", now)
        if now >= self._hold_until:
            for data in self._window.due(now):
                self._out.append(data)
                self._last_sent = now
        self.inbox.on_timer(now)
        self._send_acks(now)
        ready, given_up = self._held.ready(now) if len(self._held) else ([], [])
        self._replay.extend(ready)  # ahead of what waits in the backlog
        found = [event for say, text in given_up for event in self._given_up(say, text, now)]
        if ready or given_up:
            self._pump(now)
        if now >= self._ping_at():
            self._send(events.Ping(), now)
        return found

    def _ping_at(self) -> float:
        """Ping when the hub has been quiet a while, at most once a second; while holding (no
        acks go out) also when this side has been, so that the hub does not count it gone."""
        quiet = max(self._last_heard + self._ping_interval, self._last_sent + min(1.0, self._ping_interval))
        return min(quiet, self._last_sent + self._ping_interval) if self.holding else quiet

    def receive_datagrams(self, batch: list[bytes], now: float) -> list[LinkEvent]:
        """Several datagrams that arrived together: what they report, and one ack per stream
        for all of them."""
        found: list[LinkEvent] = []
        for data in batch:
            found += self._receive(data, now)
        self._send_acks(now)
        return found

    def receive_datagram(self, data: bytes, now: float) -> list[LinkEvent]:
        found = self._receive(data, now)
        self._send_acks(now)
        return found

    def _receive(self, data: bytes, now: float) -> list[LinkEvent]:
        if self.state is LinkState.CLOSED:
            return []
        event: Any = decode_deliver(data)  # a room line as the hub writes it: the fast lane
        if event is None:
            try:
                event = envelope.decode(data).event
            except envelope.RemoteProtocolError:
                return []  # not from a hub that speaks our protocol: ignore
        self._last_heard = now
        handler = _DISPATCH.get(type(event))
        return handler(self, event, now) if handler is not None else []

    # --- handshake ----------------------------------------------------------------------------------

    def _this_hub(self) -> str:
        return f"hub {self.hubs.current}" if self.hubs.many else "the hub"

    def _send_hello(self, now: float) -> None:
        hello = events.Hello(nick=self.nick, cookie=self._cookie, resume=self.resume)
        size = len(envelope.encode(hello))
        if size < limits.HELLO_PAD_TO:  # the pad field costs 6 bytes (key, bin header) on top
            hello = attrs.evolve(hello, pad=bytes(max(1, limits.HELLO_PAD_TO - size - 6)))
        self._out.append(envelope.encode(hello))
        self._hello_at = now + (1.0 if self._ever_connected else limits.INITIAL_RTO * 2)
        if (answer_by := self.hubs.answer_deadline(self._last_heard)) is not None:
            self._hello_at = min(self._hello_at, answer_by)  # then the next hub's turn
        self._last_sent = now

    def _connecting_timer(self, now: float) -> list[LinkEvent]:
        waited = now - self._connecting_since
        if not self._ever_connected and waited >= self.hubs.connect_timeout():
            self.state = LinkState.CLOSED
            return [Unreachable(f"no answer from {self.hubs.describe()} after {waited:.0f} s")]
        if self.give_up_after is not None and waited >= self.give_up_after:
            self.state = LinkState.CLOSED
            return [
                Unreachable(f"{self.hubs.describe()} did not come back within {self.give_up_after:.0f} s")
            ]
        if now >= (self.hubs.answer_deadline(self._last_heard) or float("inf")):
            self._move_on(now)  # this hub does not answer: the next one may
        elif now >= self._hello_at:
            self._send_hello(now)
        return []

    def _move_on(self, now: float) -> None:
        """Start again on the next hub of the list: a new address, so a new cookie."""
        self.hubs.move_on(now)
        self._cookie = b""
        self._send_hello(now)

    def _on_challenge(self, challenge: events.Challenge, now: float) -> list[LinkEvent]:
        if self.state is LinkState.CONNECTING:
            self._cookie = challenge.cookie
            self._send_hello(now)
        return []

    def _on_welcome(self, welcome: events.Welcome, now: float) -> list[LinkEvent]:
        if self.state is not LinkState.CONNECTING:
            return []
        reconnected = self._ever_connected
        self.state, self.token, self.nick = LinkState.OPEN, welcome.token, welcome.nick
        same_history = not self.hub_id or welcome.hub == self.hub_id
        self.hub_id, self.resume = welcome.hub, welcome.resume
        self.hubs.settled()
        self._ping_interval = self.hubs.ping_interval(welcome.idle)
        self._ever_connected = True
        self._opened_at = now
        self._rebuild(same_history, now)
        return [Connected(self.nick, reconnected, self.hubs.current if self.hubs.many else "")]

    def _rebuild(self, same_history: bool, now: float) -> None:
        """A new session: rejoin every room (asking for what was missed), then resend every
        request not yet answered, in order, under new ids."""
        unanswered = [self._inflight[i] for i in sorted(self._inflight)] + list(self._replay)
        unanswered = in_typed_order(unanswered + self._held.take_all())  # held lines were typed first
        self._inflight.clear()
        self._window.pop_all()
        self._rejoins.clear()
        self._replay.clear()
        self._next_id, self._barrier = 1, 0
        self.inbox.restart(same_history)
        rejoin: list[Any] = [events.Join(id=0, room=name) for name in self.inbox.names()]
        pending = [r for r in unanswered if not isinstance(r, events.Join) or r.room not in self.inbox]
        self._backlog.extendleft(reversed(rejoin + pending))
        self._pump(now)

    def _rejoin(self, now: float) -> None:
        """The hub took us out of our rooms (we fell behind): join them again, first of all,
        and catch up on what they still keep."""
        self.inbox.restart(same_history=True)
        self._rejoins.extend(events.Join(id=0, room=name) for name in self.inbox.names())
        self._barrier = self._next_id - 1
        self._rejoined_at = now
        self._pump(now)

    def _lost(self, reason: str, now: float) -> list[LinkEvent]:
        """The session is gone: with a list of hubs, go on to the next one; else wait for this one."""
        if self.state is LinkState.CONNECTING:
            return []
        self.state = LinkState.CONNECTING
        self._connecting_since = now
        if self.hubs.many:
            self._move_on(now)
            return [Reconnecting(reason, self.hubs.current)]
        self._cookie = b""
        self._send_hello(now)
        return [Reconnecting(reason)]

    # --- requests -------------------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        # The window spans ids, not a count: the hub remembers answers for the last
        # 2 * CLIENT_WINDOW ids, so the oldest unanswered request must stay within it.
        oldest = min(self._inflight, default=self._next_id)
        while self.state is LinkState.OPEN and self._next_id < oldest + limits.CLIENT_WINDOW:
            if self._rejoins:
                queue = self._rejoins
            elif self._replay:
                queue = self._replay
            elif self._backlog and oldest > self._barrier:
                queue = self._backlog
            else:
                return
            request = queue.popleft()
            if queue is self._backlog and isinstance(request, events.Say) and self._held.blocks(request.room):
                self._held.wait_behind(request)  # a line to its room is held: this one goes after it
                continue
            if isinstance(request, events.Say) and not request.mid:
                # Once per line: a resend, in this session or another, keeps it.
                request = attrs.evolve(request, mid=self._next_mid)
                self._next_mid += 1
            request = attrs.evolve(request, id=self._next_id)
            self._next_id += 1
            if isinstance(request, events.Join):
                self.inbox.joining(request.room)
            self._inflight[request.id] = request
            data = self._send(request, now)
            self._window.track(request.id, data, now)

    def _send(self, event: events.Event, now: float) -> bytes:
        data = envelope.encode(event, token=self.token)
        self._out.append(data)
        self._last_sent = now
        return data

    def _on_reply(self, reply: events.Reply, now: float) -> list[LinkEvent]:
        request = self._inflight.pop(reply.id, None)
        if request is None:
            return []
        self._window.acknowledge(reply.id, now, reply.delay)
        # The hub answers in id order: an older request still unanswered lost its answer.
        self._out.extend(self._window.resend_missing([i for i in self._inflight if i < reply.id - 1], now))
        shown: list[LinkEvent] = [Answered(request, reply)]
        if isinstance(request, events.Say):
            self._backlog.extendleft(reversed(self._held.done(request)))  # they waited behind it
        if isinstance(request, events.Join):
            ready, catch_up = self.inbox.start(request.room, reply.seq, now)
            shown += [Show(event) for event in ready]
            if catch_up is not None:
                self.submit(catch_up, now)
        elif isinstance(request, events.Part):
            self.inbox.left(request.room)
        elif isinstance(request, events.Nick):
            self.nick = request.nick
        elif isinstance(request, events.History) and request.until:  # a catch-up, answered
            ready, again = self.inbox.caught_up(request, reply.seq)
            shown += [Show(event) for event in ready]
            if again is not None:
                self.submit(again, now)
        elif reply.seq and isinstance(request, events.Say | events.Topic):
            if self.inbox.before_start(request.room, reply.seq):
                shown[0] = Answered(request, reply, caught_up=True)
            shown += [Show(event) for event in self.inbox.own(request.room, reply.seq, now)]
        self._pump(now)
        return shown

    def _on_error(self, error: events.Error, now: float) -> list[LinkEvent]:
        if error.code == "unknown-session" and self.state is LinkState.OPEN:
            if now - self._opened_at < limits.STALE_AFTER_WELCOME:
                return []  # the answer to a datagram of the session before (delayed): not ours
            return self._lost("the hub restarted or forgot this session", now)
        if error.code == "too-slow" and self.state is LinkState.OPEN:
            if now - self._rejoined_at > limits.MIN_RTO * 20:  # else a late copy: rejoining already
                self._rejoin(now)
            return [Problem(error)]
        if error.id and error.id not in self._inflight:
            return []  # a second answer to a request already answered (we had resent it)
        request = self._inflight.get(error.id) if error.id else None
        if request is None:
            return self._on_session_error(error, now)
        if (
            error.code == "not-in-room"
            and isinstance(request, events.Say | events.Topic)
            and request.room in self.inbox
        ):
            # The hub took us out of the room (we fell behind) after we sent this: it goes
            # again after our rejoin.  The first such refusal starts the rejoin if the hub's
            # too-slow notice (a single datagram) was lost.
            if error.id > self._barrier:
                self._rejoin(now)
            del self._inflight[error.id]
            self._window.acknowledge(error.id, now)
            self._replay.append(request)
            self._pump(now)
            return []
        if error.code == "not-delivered" and isinstance(request, events.Say) and request.mid:
            return self._not_delivered(request, error, now)
        if error.code in TRANSIENT:
            # The hub keeps what it received and carries it out after the pause by itself;
            # we resend only if nothing has come by well after it.
            pause = max(error.after, limits.MIN_RTO if error.code == "slow-down" else 1.0)
            self._hold_until = now + pause
            self._window.postpone(self._hold_until + self._window.rtt.rto())
            return []
        del self._inflight[error.id]
        self._window.acknowledge(error.id, now)
        if isinstance(request, events.Join):
            self.inbox.left(request.room)
        elif isinstance(request, events.Say):
            self._backlog.extendleft(reversed(self._held.done(request)))
        self._pump(now)
        return [Refused(request, error)]

    def _not_delivered(self, say: events.Say, error: events.Error, now: float) -> list[LinkEvent]:
        """The cluster did not confirm the line in time (it may have been stored all the same):
        resend it under the same mid after a pause, a bounded number of times; then say so."""
        del self._inflight[error.id]
        self._window.acknowledge(error.id, now)
        given_up = self._held.hold(say, error, now)
        found = self._given_up(say, given_up, now) if given_up else []
        self._pump(now)
        return found

    def _given_up(self, say: events.Say, text: str, now: float) -> list[LinkEvent]:
        """Tell the user ``say`` is given up, and so is each line typed behind it to its room
        (never sent: it would appear without the line before it)."""
        gone: list[LinkEvent] = [Refused(say, events.Error(code="not-delivered", text=text, id=say.id))]
        for line, notice in self._held.given_up_behind(say):
            gone.append(Refused(line, events.Error(code="not-delivered", text=notice)))
        return gone

    def _on_session_error(self, error: events.Error, now: float) -> list[LinkEvent]:
        """An error tied to no request: most often the hub's answer to our hello."""
        connecting = self.state is LinkState.CONNECTING
        moving = connecting and self.hubs.many and error.code in MOVE_ON_AT_HELLO
        if moving and (error.code in TRANSIENT or self.hubs.refuse()):
            self._move_on(now)  # busy, going away or full: another hub of the list may take us
            return []
        if error.code in TRANSIENT or error.code == "unknown-session":
            return []  # the hello goes again on its timer
        if connecting and error.code in FATAL_AT_HELLO:
            self.state = LinkState.CLOSED
        return [Problem(error)]

    # --- deliveries ---------------------------------------------------------------------------------

    def _on_room_event(self, event: Shown, now: float) -> list[LinkEvent]:
        if self.holding:
            return []
        if event.history and self._asked_for_history(event.room):
            return [Show(event)]  # the user asked to see these again: shown as they come
        return [Show(shown) for shown in self.inbox.receive(event, now)]

    def _asked_for_history(self, room: str) -> bool:
        """Is a history the user asked for (``/history N``, ``--history N``) on its way?"""
        return any(
            isinstance(r, events.History | events.Join)
            and fold(r.room) == fold(room)
            and (r.count if isinstance(r, events.History) else r.history)
            for r in self._inflight.values()
        )

    def _send_acks(self, now: float) -> None:
        for ack in self.inbox.acks_to_send():
            self._send(ack, now)

    def _on_ack(self, ack: events.Ack, now: float) -> list[LinkEvent]:
        """The hub got requests beyond a gap: resend the missing ones (and any whose answer
        must have been lost) now."""
        if ack.stream or not ack.sack:
            return []
        arrived = set(ack.sack)
        missing = [i for i in self._inflight if i < max(arrived) and i not in arrived]
        self._out.extend(self._window.resend_missing(missing, now))
        return []

    def _on_bye(self, bye: events.Bye, now: float) -> list[LinkEvent]:
        """The hub is going (it drains for a moment first): keep acking what it still
        sends, and come back once it is up again."""
        lost = self._lost(f"{self._this_hub()} said: {bye.reason or 'bye'}", now)
        if not self.hubs.many:
            self._hello_at = now + 1.0
        return lost

    def _on_pong(self, _pong: events.Pong, _now: float) -> list[LinkEvent]:
        return []


_DISPATCH: dict[type[Any], Any] = {
    events.Challenge: HubLink._on_challenge,
    events.Welcome: HubLink._on_welcome,
    events.Reply: HubLink._on_reply,
    events.Error: HubLink._on_error,
    events.Deliver: HubLink._on_room_event,
    events.Presence: HubLink._on_room_event,
    events.Bye: HubLink._on_bye,
    events.Ack: HubLink._on_ack,
    events.Pong: HubLink._on_pong,
}
