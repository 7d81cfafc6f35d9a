"""One small immutable class per message kind of the Roomcast protocol.

The envelope (``shared.envelope``) turns these into bytes and back; the field names are the
wire keys, so this module is also the protocol's schema.  Fields that name a nick or a room
are checked at construction, which is where input from the network enters, and kept in the
form they are shown in (full-width letters mapped, NFC; see shared/names.py).

Client to hub requests carry ``id``, a per-session request number: the hub answers each one
with exactly one :class:`Reply` or :class:`Error` carrying the same ``id``, and the client
resends a request until that answer arrives.  Room events carry ``seq``, the room's sequence
number, which is what members acknowledge and what history and catch-up are keyed by.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from roomcast.shared import limits
from roomcast.shared.names import BadName, check_nick, check_room


def _nick(value: Any) -> str:
    """Converter: a nick in the form it is shown in (see shared/names.py), or BadName."""
    if not isinstance(value, str):
        raise BadName(f"nick must be text, not {type(value).__name__}")
    return check_nick(value)


def _room(value: Any) -> str:
    if not isinstance(value, str):
        raise BadName(f"room name must be text, not {type(value).__name__}")
    return check_room(value)


def _room_or_empty(value: Any) -> str:
    return _room(value) if value != "" else ""


def _non_negative(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if value < 0 or value >= 2**63:
        raise ValueError(f"{attr.name} must be between 0 and 2**63-1, not {value}")


def _body(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_BODY:
        raise ValueError(f"{attr.name} is {size} bytes; the limit is {limits.MAX_BODY}")


class Event:
    """Base of every message kind; ``KIND`` is its name on the wire."""

    KIND: ClassVar[str] = ""


class Request(Event):
    """A client to hub message that the hub answers with one Reply or Error of the same id."""

    id: int


# --- client to hub ---------------------------------------------------------------------------


@attrs.frozen
class Hello(Event):
    """Opens a session.  Without a valid cookie the hub answers with a Challenge."""

    KIND: ClassVar[str] = "hello"
    nick: str = attrs.field(converter=_nick)
    cookie: bytes = b""
    pad: bytes = b""
    #: Cluster mode: the ``resume`` secret of an earlier welcome, so that another hub of the
    #: cluster recognises this client as the same session and lets it keep its nick.
    resume: bytes = b""


@attrs.frozen
class Join(Request):
    KIND: ClassVar[str] = "join"
    id: int = attrs.field(validator=_non_negative)
    room: str = attrs.field(converter=_room)
    #: How many recent room messages the client wants replayed.
    history: int = attrs.field(default=0, validator=_non_negative)


@attrs.frozen
class Part(Request):
    KIND: ClassVar[str] = "part"
    id: int = attrs.field(validator=_non_negative)
    room: str = attrs.field(converter=_room)


@attrs.frozen
class Nick(Request):
    KIND: ClassVar[str] = "nick"
    id: int = attrs.field(validator=_non_negative)
    nick: str = attrs.field(converter=_nick)


@attrs.frozen
class Say(Request):
    """A line to a room; ``action`` marks a /me line."""

    KIND: ClassVar[str] = "say"
    id: int = attrs.field(validator=_non_negative)
    room: str = attrs.field(converter=_room)
    body: str = attrs.field(validator=_body)
    action: bool = False
    #: Cluster mode: the client's own number for this line, kept when the line is resent to
    #: another hub after a failover, so the cluster carries it out once (0: none).
    mid: int = attrs.field(default=0, validator=_non_negative)


@attrs.frozen
class Msg(Request):
    """A private line to one nick."""

    KIND: ClassVar[str] = "msg"
    id: int = attrs.field(validator=_non_negative)
    to: str = attrs.field(converter=_nick)
    body: str = attrs.field(validator=_body)


@attrs.frozen
class Who(Request):
    KIND: ClassVar[str] = "who"
    id: int = attrs.field(validator=_non_negative)
    room: str = attrs.field(converter=_room)


@attrs.frozen
class Rooms(Request):
    KIND: ClassVar[str] = "rooms"
    id: int = attrs.field(validator=_non_negative)


@attrs.frozen
class Topic(Request):
    """Shows a room's topic, or sets it when ``set`` is true."""

    KIND: ClassVar[str] = "topic"
    id: int = attrs.field(validator=_non_negative)
    room: str = attrs.field(converter=_room)
    text: str = attrs.field(default="", validator=_body)
    set: bool = False


@attrs.frozen
class History(Request):
    """Asks for a room's kept messages after seq ``since`` and up to ``until`` (0: no bound),
    at most the last ``count`` of them (0: all)."""

    KIND: ClassVar[str] = "history"
    id: int = attrs.field(validator=_non_negative)
    room: str = attrs.field(converter=_room)
    count: int = attrs.field(default=0, validator=_non_negative)
    since: int = attrs.field(default=0, validator=_non_negative)
    until: int = attrs.field(default=0, validator=_non_negative)


@attrs.frozen
class Stats(Request):
    KIND: ClassVar[str] = "stats"
    id: int = attrs.field(validator=_non_negative)


@attrs.frozen
class Ping(Event):
    KIND: ClassVar[str] = "ping"
    id: int = attrs.field(default=0, validator=_non_negative)


@attrs.frozen
class Ack(Event):
    """Acknowledges a stream of deliveries (a room, or "" for private messages): everything up
    to ``upto``, plus the seqs in ``sack`` beyond it."""

    KIND: ClassVar[str] = "ack"
    stream: str = attrs.field(converter=_room_or_empty)
    upto: int = attrs.field(validator=_non_negative)
    sack: tuple[int, ...] = ()


@attrs.frozen
class Bye(Event):
    """Leaves the hub (client to hub), or tells a client the hub is going away."""

    KIND: ClassVar[str] = "bye"
    reason: str = ""


# --- hub to client ---------------------------------------------------------------------------


@attrs.frozen
class Challenge(Event):
    """Proves the client receives at its address: it must send the cookie back in a Hello."""

    KIND: ClassVar[str] = "challenge"
    cookie: bytes


@attrs.frozen
class Welcome(Event):
    """The session is open: ``token`` goes into every later envelope; ``hub`` identifies the
    hub's history (a new one for each run, unless it keeps history in a data directory), so a
    client knows whether the room seqs it saw still mean anything."""

    KIND: ClassVar[str] = "welcome"
    token: bytes
    hub: bytes
    nick: str = attrs.field(converter=_nick)
    #: Seconds of silence after which the hub evicts the client: it pings well before.
    idle: float = 0.0
    #: Cluster mode: a secret to send in ``Hello.resume`` when moving to another hub.
    resume: bytes = b""


@attrs.frozen
class Deliver(Event):
    """A room line, or with ``room`` empty a private message to this client (``seq`` is then
    the client's own private stream).  ``history`` marks a replayed old message."""

    KIND: ClassVar[str] = "deliver"
    room: str = attrs.field(converter=_room_or_empty)
    seq: int = attrs.field(validator=_non_negative)
    nick: str = attrs.field(converter=_nick)
    body: str = attrs.field(validator=_body)
    ts: float
    action: bool = False
    history: bool = False


_new = object.__new__
#: The slots' own setters (attrs.frozen classes are slotted): cheaper than object.__setattr__.
_SET_ROOM, _SET_SEQ, _SET_NICK, _SET_BODY, _SET_TS, _SET_ACTION, _SET_HISTORY = (
    getattr(Deliver, name).__set__ for name in ("room", "seq", "nick", "body", "ts", "action", "history")
)


def checked_deliver(room: str, seq: int, nick: str, body: str, ts: float, action: bool = False) -> Deliver:
    """A live :class:`Deliver` from fields already checked where they entered (a room's and a
    member's names as shown, a body the envelope or text front bounded): the same event,
    without running the converters and validators again on the hub's busiest path."""
    event = _new(Deliver)
    _SET_ROOM(event, room)
    _SET_SEQ(event, seq)
    _SET_NICK(event, nick)
    _SET_BODY(event, body)
    _SET_TS(event, ts)
    _SET_ACTION(event, action)
    _SET_HISTORY(event, False)
    return event


@attrs.frozen
class Presence(Event):
    """Someone joined, left (``detail`` says why) or was renamed (``detail`` is the new nick);
    or, with ``what`` "topic", set the topic to ``detail``."""

    KIND: ClassVar[str] = "presence"
    room: str = attrs.field(converter=_room)
    seq: int = attrs.field(validator=_non_negative)
    nick: str = attrs.field(converter=_nick)
    what: str
    detail: str = attrs.field(default="", validator=_body)
    ts: float = 0.0
    history: bool = False


@attrs.frozen
class Reply(Event):
    """Answers request ``id``: ``seq`` is the room seq the request produced (say, join, part),
    ``items`` the lines of a listing (who, rooms, stats, topic)."""

    KIND: ClassVar[str] = "reply"
    id: int = attrs.field(validator=_non_negative)
    text: str = ""
    seq: int = 0
    items: tuple[str, ...] = ()
    #: Seconds the hub held the request before carrying it out (it waited behind a lost
    #: one); the client takes it out of its RTT sample, like QUIC's ack delay.
    delay: float = 0.0


@attrs.frozen
class Error(Event):
    """Refuses request ``id`` (0 when not tied to a request): a stable ``code`` for programs and
    a ``text`` for people saying what was wrong and what to do."""

    KIND: ClassVar[str] = "error"
    code: str
    text: str
    id: int = 0
    #: For "slow-down": seconds to wait before sending the request again.
    after: float = 0.0


@attrs.frozen
class Pong(Event):
    KIND: ClassVar[str] = "pong"
    id: int = 0


#: What a room's members receive, each with the room's seq: a line or a presence notice.
RoomEvent = Deliver | Presence

ALL_KINDS: tuple[type[Any], ...] = (
    Hello, Join, Part, Nick, Say, Msg, Who, Rooms, Topic, History, Stats, Ping, Ack, Bye,
    Challenge, Welcome, Deliver, Presence, Reply, Error, Pong,
)  # fmt: skip
KIND_TO_CLASS: dict[str, type[Any]] = {cls.KIND: cls for cls in ALL_KINDS}
REQUESTS: tuple[type[Any], ...] = (Join, Part, Nick, Say, Msg, Who, Rooms, Topic, History, Stats)
