"""The hub's registry: who is connected, under which nick, in which rooms.  Plain data, no I/O.

Every refusal (nick taken, room full, too many rooms, ...) is a :class:`Refused` carrying the
error code and the text the client is shown.

Names are unique by their folded form (``shared.names.fold``), and no two nicks, nor two rooms,
in use together look alike: each has UTS #39 skeletons (``shared.lookalikes.looks``) and a
new name that shares one with a name in use is refused as ``name-confusable``, naming the
one it looks like.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Literal

import attrs

from roomcast.hub.fanout import INF, RoomFanout
from roomcast.hub.nameindex import LookIndex
from roomcast.shared import events, limits
from roomcast.shared.flood import TokenBucket
from roomcast.shared.lookalikes import mixed_scripts_error
from roomcast.shared.names import fold
from roomcast.shared.outbox import Outbox
from roomcast.shared.reliable import RttEstimator

Address = tuple[Any, ...]
Kind = Literal["envelope", "text"]
RoomEvent = events.RoomEvent


class Refused(Exception):
    """A request the hub will not carry out: ``code`` for programs, the text for people."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@attrs.define(eq=False)
class Link:
    """Reliability state of an envelope client's session."""

    token: bytes
    #: The client's address (its rooms know it by it).
    address: Address = ()
    #: Private deliveries (stream "") not yet acked; its RTT estimate serves the rooms too.
    direct: Outbox = attrs.Factory(Outbox)
    #: The rooms it is in, by key: their fan-out holds its ack range for each.
    rooms: dict[str, RoomFanout] = attrs.Factory(dict)
    #: The next request id to carry out; requests ahead of it wait in ``waiting``.
    next_id: int = 1
    #: Requests that arrived ahead of a missing one, with their arrival time.
    waiting: dict[int, tuple[Any, float]] = attrs.Factory(dict)
    #: Flood control holds the waiting requests until then.
    held_until: float = 0.0
    #: Encoded answers to recent requests, resent when a request arrives twice.
    answers: dict[int, bytes] = attrs.Factory(dict)
    direct_seq: int = 0
    #: Dropped from its rooms as too slow and not rejoined yet: its pings get the notice again
    #: (the first one is a single datagram, and may be lost).
    dropped: bool = False
    #: Cluster mode: the secret that lets this session move to another hub (Welcome.resume).
    resume: bytes = b""

    @property
    def window(self) -> MemberWindow:
        return MemberWindow(self)


class MemberWindow:
    """Everything the hub holds for one envelope member, its private stream and its rooms
    together: a view for gauges, the monitor and tests (the hot paths use the parts)."""

    def __init__(self, link: Link) -> None:
        self.link = link

    @property
    def rtt(self) -> RttEstimator:
        return self.link.direct.rtt

    def __len__(self) -> int:
        address = self.link.address
        return len(self.link.direct) + sum(f.held(address) for f in self.link.rooms.values())

    def pending(self) -> list[tuple[str, int]]:
        """(stream, seq) of each delivery sent and not acknowledged."""
        address = self.link.address
        rooms = [(key, seq) for key, f in self.link.rooms.items() for seq in f.pending(address)]
        return self.link.direct.pending() + rooms

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.pending()

    def next_deadline(self) -> float | None:
        rto, address = self.rtt.rto(), self.link.address
        deadlines = [f.deadline(address, rto) for f in self.link.rooms.values()]
        soonest = min([self.link.direct.next_deadline() or INF, *deadlines])
        return None if soonest == INF else soonest


@attrs.define(eq=False)
class TextMode:
    """A plain-text client: its room lines wait here until its next line, unless it is live."""

    live: bool = False
    queue: deque[str] = attrs.Factory(lambda: deque(maxlen=limits.TEXT_QUEUE_LINES))
    #: Lines that fell out of the full queue since the last reply.
    overflowed: int = 0


@attrs.define(eq=False)
class Client:
    address: Address
    nick: str
    last_seen: float
    bucket: TokenBucket
    link: Link | None = None
    text: TextMode | None = None
    #: Room keys in join order; the last is the current room of a text client.
    rooms: list[str] = attrs.Factory(list)
    #: When the hub next looks at this client (retransmits, idle timeout); see HubCore.
    wake: float = float("inf")
    #: Seconds of silence after which the hub evicts it.
    timeout: float = limits.SESSION_TIMEOUT
    #: Rooms it may still create (see limits.ROOM_CREATE_BURST).
    room_bucket: TokenBucket = attrs.Factory(
        lambda: TokenBucket(limits.ROOM_CREATE_RATE, limits.ROOM_CREATE_BURST)
    )

    @property
    def kind(self) -> Kind:
        return "text" if self.text is not None else "envelope"


@attrs.define(eq=False)
class Room:
    name: str
    members: dict[Address, Client] = attrs.Factory(dict)
    seq: int = 0
    history: deque[RoomEvent] = attrs.Factory(lambda: deque(maxlen=limits.HISTORY_PER_ROOM))
    topic: str = ""
    topic_by: str = ""
    topic_ts: float = 0.0
    #: Monotonic time of the room's last event (see Registry.expire).
    last_active: float = 0.0
    #: The ring of encoded events, the members' ack ranges and the live vectors.
    fanout: RoomFanout = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.fanout = RoomFanout(self.seq)

    def add_member(self, client: Client) -> None:
        self.members[client.address] = client
        self.fanout.join(client.address, client.link is not None)
        if client.link is not None:
            client.link.rooms[fold(self.name)] = self.fanout

    def remove_member(self, client: Client) -> None:
        self.members.pop(client.address, None)
        self.fanout.leave(client.address)
        if client.link is not None:
            client.link.rooms.pop(fold(self.name), None)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def _refuse_mixed_scripts(what: str, name: str) -> None:
    error = mixed_scripts_error(what, name)
    if error:
        raise Refused("name-mixed-scripts", error)


def confusable_room(name: str, holder: str) -> str:
    """Why room ``name`` is refused: it looks like room ``holder``, which exists."""
    return f"room name {name} looks like {holder}, which exists; /join {holder} or choose another name"


@attrs.define
class Registry:
    """Clients by address and nick, rooms by name; nicks and rooms compare by their folded
    form, and look-alikes (same skeleton) are never in use together."""

    max_clients: int = limits.MAX_CLIENTS
    #: Sessions per IP address; None: ``limits.MAX_CLIENTS_PER_ADDRESS_HOST``.
    max_per_host: int | None = None
    clients: dict[Address, Client] = attrs.Factory(dict)
    nicks: dict[str, Client] = attrs.Factory(dict)
    rooms: dict[str, Room] = attrs.Factory(dict)
    per_host: Counter[str] = attrs.Factory(Counter)
    #: The looks (UTS #39 skeletons) of the nicks in use, and of the rooms.
    nick_looks: LookIndex = attrs.Factory(LookIndex)
    room_looks: LookIndex = attrs.Factory(LookIndex)

    def __attrs_post_init__(self) -> None:
        LookIndex.load()  # read confusables.txt now, not while the first hello waits

    def check_nick(self, nick: str, client: Client | None = None) -> None:
        """Refuse ``nick`` if someone other than ``client`` (None: a newcomer) has it or one
        like it, or if it mixes scripts."""
        key = fold(nick)
        other = self.nicks.get(key)
        hint = "; choose another with --nick" if client is None else ""
        if other is not None and other is not client:
            raise Refused("nick-taken", f"nick {nick} is taken{hint}")
        holder = self.nicks.get(self.nick_looks.holder(nick) or "")
        if holder is not None and holder is not client:
            raise Refused(
                "name-confusable",
                f"nick {nick} looks like {holder.nick}, who is here{hint or '; choose another'}",
            )
        _refuse_mixed_scripts("nick", nick)

    def nick_free(self, nick: str) -> bool:
        """Whether a new client could take ``nick`` (neither it nor a look-alike in use)."""
        return fold(nick) not in self.nicks and self.nick_looks.holder(nick) is None

    def check_new_room(self, name: str) -> None:
        """Refuse to create room ``name`` if one like it exists (call when it does not)."""
        holder = self.rooms.get(self.room_looks.holder(name) or "")
        if holder is not None:
            raise Refused("name-confusable", confusable_room(name, holder.name))
        _refuse_mixed_scripts("room name", name)

    def forget_room(self, room: Room) -> None:
        """Drop ``room`` (cluster mode: its name was refused before any event of it was kept);
        the looks it held go to the other rooms that have them."""
        key = fold(room.name)
        if self.rooms.get(key) is room:
            del self.rooms[key]
            self.room_looks.release(room.name, key)
            for other_key, other in self.rooms.items():
                self.room_looks.hold(other.name, other_key)

    def add_room(self, room: Room) -> None:
        """Keep ``room`` (new, or restored from a store) under its folded name."""
        key = fold(room.name)
        self.rooms[key] = room
        self.room_looks.hold(room.name, key)

    def add(self, client: Client) -> None:
        self.check_nick(client.nick)
        if len(self.clients) >= self.max_clients:
            raise Refused("hub-full", f"the hub is full ({self.max_clients} clients); try later")
        host = str(client.address[0])
        per_host = limits.MAX_CLIENTS_PER_ADDRESS_HOST if self.max_per_host is None else self.max_per_host
        if self.per_host[host] >= per_host:
            raise Refused(
                "too-many-clients",
                f"{per_host} clients already come from {host}; the operator can raise --max-clients-per-host",
            )
        self.clients[client.address] = client
        self._hold_nick(client)
        self.per_host[host] += 1

    def _hold_nick(self, client: Client) -> None:
        key = fold(client.nick)
        self.nicks[key] = client
        self.nick_looks.hold(client.nick, key)

    def _release_nick(self, client: Client) -> None:
        key = fold(client.nick)
        if self.nicks.get(key) is client:
            del self.nicks[key]
            self.nick_looks.release(client.nick, key)

    def leave_rooms(self, client: Client) -> list[Room]:
        """Take ``client`` out of every room; return them (already without it)."""
        left = [self.rooms[key] for key in client.rooms if key in self.rooms]
        for room in left:
            room.remove_member(client)
        client.rooms.clear()
        return left

    def remove(self, client: Client) -> list[Room]:
        """Forget ``client``; return the rooms it was in (already without it)."""
        left = self.leave_rooms(client)
        if self.clients.get(client.address) is client:
            del self.clients[client.address]
            self._release_nick(client)
            host = str(client.address[0])
            self.per_host[host] -= 1
            if self.per_host[host] <= 0:
                del self.per_host[host]
        return left

    def room(self, name: str) -> Room:
        room = self.rooms.get(fold(name))
        if room is None:
            raise Refused("no-such-room", f"there is no room {name}; /rooms lists them")
        return room

    def find(self, nick: str) -> Client:
        client = self.nicks.get(fold(nick))
        if client is None:
            raise Refused("no-such-nick", f"nobody is called {nick} here; /who lists a room's members")
        return client

    def join(self, client: Client, name: str) -> tuple[Room, bool]:
        """Put ``client`` in room ``name`` (created if new); return it and whether it is new to it."""
        key = fold(name)
        room = self.rooms.get(key)
        if room is not None and client.address in room.members:
            client.rooms.remove(key)
            client.rooms.append(key)  # joining again makes it current
            return room, False
        if len(client.rooms) >= limits.MAX_ROOMS_PER_CLIENT:
            raise Refused(
                "too-many-rooms",
                f"you are in {limits.MAX_ROOMS_PER_CLIENT} rooms, the limit; /part one first",
            )
        if room is None:
            if len(self.rooms) >= limits.MAX_ROOMS:
                raise Refused("too-many-rooms", f"the hub has {limits.MAX_ROOMS} rooms, its limit")
            self.check_new_room(name)
            room = Room(name)
            self.add_room(room)
        elif len(room.members) >= limits.MAX_MEMBERS_PER_ROOM:
            raise Refused("room-full", f"{room.name} is full ({limits.MAX_MEMBERS_PER_ROOM} members)")
        room.add_member(client)
        client.rooms.append(key)
        return room, True

    def part(self, client: Client, name: str) -> Room:
        key = fold(name)
        room = self.rooms.get(key)
        if room is None or client.address not in room.members:
            raise Refused("not-in-room", f"you are not in {name}")
        room.remove_member(client)
        client.rooms.remove(key)
        return room

    def rename(self, client: Client, nick: str) -> str:
        """Give ``client`` the nick ``nick``; return the old one."""
        self.check_nick(nick, client)
        old = client.nick
        self._release_nick(client)
        client.nick = nick
        self._hold_nick(client)
        return old

    def expire(self, now: float, after: float) -> list[str]:
        """Forget rooms with no members and no topic whose last event is older than ``after``
        seconds (their history goes with them); return their names."""
        gone = [
            key
            for key, room in self.rooms.items()
            if not room.members and not room.topic and now - room.last_active >= after
        ]
        for key in gone:
            self.room_looks.release(self.rooms.pop(key).name, key)
        return gone
