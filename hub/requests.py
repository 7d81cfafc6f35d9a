"""What each request means: join, part, nick, say, msg, who, rooms, topic, history, stats.

Each function takes the hub, the asking client, the request and the time, changes the
registry, publishes room events through the hub, and returns the one answer the client gets:
a :class:`~shared.events.Reply`, or an :class:`~shared.events.Error` when refused.  Envelope
and text clients share these; ``hub.textfront`` turns answers into lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from roomcast.hub.records import RoomTopic
from roomcast.hub.rooms import Client, Refused, Room
from roomcast.shared import events, limits
from roomcast.shared.names import fold
from roomcast.shared.text import truncate_utf8

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore

Answer = events.Reply | events.Error


def carry_out(hub: HubCore, client: Client, request: Any, now: float) -> Answer:
    handler = _HANDLERS[type(request)]
    try:
        return handler(hub, client, request, now)
    except Refused as refusal:
        hub.note_bad_input(refusal.code, f"{client.nick}: {refusal.text}", client.address, now)
        return events.Error(code=refusal.code, text=refusal.text, id=request.id)


#: Bytes of listing lines one reply may carry (the envelope must stay under MAX_DATAGRAM).
REPLY_ITEMS_BUDGET = limits.MAX_DATAGRAM - 300
ITEM_MAX = 160


def reply(request: Any, text: str, seq: int = 0, items: tuple[str, ...] = ()) -> events.Reply:
    """A Reply that always fits one datagram: long text is cut, a long listing shortened with
    a last line saying how many were left out."""
    kept: list[str] = []
    budget = REPLY_ITEMS_BUDGET
    for n, item in enumerate(items):
        line = truncate_utf8(item.encode(), ITEM_MAX).decode()
        budget -= len(line.encode()) + 3
        if budget < 40 or len(kept) == limits.MAX_ARRAY - 1:
            kept.append(f"... and {len(items) - n} more")
            break
        kept.append(line)
    listing = sum(len(line.encode()) + 3 for line in kept)
    body = truncate_utf8(text.encode(), min(limits.MAX_BODY, limits.MAX_DATAGRAM - 120 - listing)).decode()
    return events.Reply(id=request.id, text=body, seq=seq, items=tuple(kept))


def _presence(
    hub: HubCore, room: str, nick: str, what: str, detail: str, now: float
) -> Callable[[int], events.Presence]:
    return lambda seq: events.Presence(
        room=room, seq=seq, nick=nick, what=what, detail=detail, ts=hub.wall(now)
    )


def _join(hub: HubCore, client: Client, request: events.Join, now: float) -> Answer:
    if not hub.accepting:
        raise Refused("shutting-down", "the hub is shutting down; rejoin when it is back")
    new_room = fold(request.room) not in hub.registry.rooms
    if new_room:
        hub.registry.check_new_room(request.room)  # a refused name costs no room creation
    if new_room and not client.room_bucket.take(now):
        raise Refused(
            "too-many-rooms",
            f"you created {limits.ROOM_CREATE_BURST} rooms lately; join an existing one (/rooms) "
            f"or wait {client.room_bucket.wait_time():.0f} s",
        )
    room, new = hub.registry.join(client, request.room)
    ask = events.History(id=0, room=room.name, count=request.history)
    if request.history and (not new or hub.standalone):
        _replay(hub, client, room.name, ask)
    seq = room.seq
    if new:
        seq = hub.publish(room, _presence(hub, room.name, client.nick, "joined", "", now), client, now)
    if request.history and new and hub.proposed is not None:
        # Cluster mode: what came before the join is known once the join is committed.
        hub.proposed.first = lambda s: _replay(hub, client, room.name, attrs.evolve(ask, until=s - 1))
    count = len(hub.engine.members(hub, room))
    text = f"joined {room.name} ({count} member{'s' if count != 1 else ''})"
    if room.topic:
        text += f"; topic: {room.topic}"
    return reply(request, text, seq=seq)


def _part(hub: HubCore, client: Client, request: events.Part, now: float) -> Answer:
    room = hub.registry.part(client, request.room)
    seq = hub.publish(room, _presence(hub, room.name, client.nick, "left", "", now), client, now)
    return reply(request, f"left {room.name}", seq=seq)


def _nick(hub: HubCore, client: Client, request: events.Nick, now: float) -> Answer:
    hub.registry.check_nick(request.nick, client)  # taken or looked like here, or mixed scripts
    if hub.engine.claim_rename(hub, client, request.nick, now):
        return reply(request, f"you are now {request.nick}")  # once the cluster agrees
    rename(hub, client, request.nick, now)
    return reply(request, f"you are now {client.nick}")


def rename(hub: HubCore, client: Client, nick: str, now: float) -> None:
    """Give ``client`` its new nick and tell its rooms."""
    old = hub.registry.rename(client, nick)
    for key in client.rooms:
        room = hub.registry.rooms[key]
        # The renamer gets its own notice too: it has no other way to learn these seqs.
        hub.publish(room, _presence(hub, room.name, old, "renamed", nick, now), None, now)


def _member_room(hub: HubCore, client: Client, name: str) -> Any:
    if fold(name) not in client.rooms:
        raise Refused("not-in-room", f"you are not in {name}; /join {name} first")
    return hub.registry.rooms[fold(name)]


def _say(hub: HubCore, client: Client, request: events.Say, now: float) -> Answer:
    room = _member_room(hub, client, request.room)
    seq = say_in(hub, client, room, request.body, request.action, request.mid, now)
    return reply(request, sent_to(room), seq=seq)


def say_in(hub: HubCore, client: Client, room: Room, body: str, action: bool, mid: int, now: float) -> int:
    """Publish ``client``'s line to ``room`` (a room it is in): its seq, or 0 in cluster mode
    (the answer waits for the commit).  Shared with the say fast lane (``hub.envelopefront``)."""
    nick, ts, name = client.nick, hub.wall(now), room.name
    hub.request_mid = mid
    seq = hub.publish(
        room,
        lambda seq: events.checked_deliver(name, seq, nick, body, ts, action),
        client,
        now,
    )
    hub.request_mid = 0
    hub.counters.messages += 1
    return seq


def sent_to(room: Room) -> str:
    """The answer's text to a say."""
    return f"sent to {room.name}"


def _msg(hub: HubCore, client: Client, request: events.Msg, now: float) -> Answer:
    try:
        target = hub.registry.find(request.to)
    except Refused:
        found = hub.engine.direct_elsewhere(hub, request.to, client.nick, request.body, now)
        if found is None:
            raise
        hub.counters.inc("private_messages")
        return reply(request, f"sent privately to {found}")  # once the other hub has it
    hub.direct(target, client.nick, request.body, now)
    hub.counters.inc("private_messages")
    return reply(request, f"sent privately to {target.nick}")


def _who(hub: HubCore, client: Client, request: events.Who, now: float) -> Answer:
    room = hub.registry.room(request.room)
    nicks = tuple(hub.engine.members(hub, room))
    return reply(request, f"{len(nicks)} in {room.name}: " + " ".join(nicks), items=nicks)


def _rooms(hub: HubCore, client: Client, request: events.Rooms, now: float) -> Answer:
    rooms = sorted(hub.engine.room_list(hub), key=lambda r: fold(r[0]))
    items = tuple(f"{name} ({count})" + (f" {topic}" if topic else "") for name, count, topic in rooms)[
        : limits.MAX_ARRAY
    ]
    return reply(request, f"{len(rooms)} room{'s' if len(rooms) != 1 else ''}", items=items)


def _topic(hub: HubCore, client: Client, request: events.Topic, now: float) -> Answer:
    room = hub.registry.room(request.room)
    if request.set:
        _member_room(hub, client, request.room)
        room.topic, room.topic_by, room.topic_ts = request.text, client.nick, hub.wall(now)
        hub.keep(RoomTopic(room=room.name, text=room.topic, by=room.topic_by, ts=room.topic_ts))
        seq = hub.publish(
            room, _presence(hub, room.name, client.nick, "topic", request.text, now), client, now
        )
        return reply(request, f"topic of {room.name} set", seq=seq)
    if not room.topic:
        return reply(request, f"{room.name} has no topic; /topic TEXT sets one")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(room.topic_ts))
    return events.Reply(
        id=request.id, text=f"topic of {room.name}: {room.topic} (set by {room.topic_by}, {when})"
    )


def _history(hub: HubCore, client: Client, request: events.History, now: float) -> Answer:
    room = hub.registry.room(request.room)
    sent, gone, last = _replay(hub, client, room.name, request)
    text = f"{sent} earlier message{'s' if sent != 1 else ''} of {room.name}"
    if gone:
        text += "; older messages are gone"
    # The seq of the last message replayed (0: none), so the client can tell one lost on the way.
    return reply(request, text, seq=last)


def _replay(hub: HubCore, client: Client, name: str, ask: events.History) -> tuple[int, bool, int]:
    """Send ``client`` the room's kept events that ``ask`` selects, marked as history
    (envelope clients get them as datagrams before the reply).  Return how many, whether some
    that were asked for are no longer kept, and the seq of the last one sent (0: none)."""
    room = hub.registry.room(name)
    kept, oldest = hub.engine.history(room, ask.since, ask.until)
    if ask.count:
        kept = kept[-ask.count :]
    for event in kept:
        hub.send_history(client, attrs.evolve(event, history=True))
    gone = oldest > ask.since + 1 and (ask.since > 0 or ask.count == 0) and room.seq > 0
    return len(kept), gone, kept[-1].seq if kept else 0


def _stats(hub: HubCore, client: Client, request: events.Stats, now: float) -> Answer:
    gauges = hub.gauges()
    counters = hub.counters
    items = (
        f"uptime {now - hub.started:.0f} s",
        f"clients {gauges['clients_envelope']} envelope, {gauges['clients_text']} text; rooms {gauges['rooms']}",
        f"datagrams in {counters['datagrams_in']}, out {counters['datagrams_out']}",
        f"messages {counters['messages']}, deliveries {counters['deliveries']}, retransmits {counters['retransmits']}",
        f"errors {sum(v for k, v in counters.values.items() if k.startswith('errors.'))}, "
        f"drops {sum(v for k, v in counters.values.items() if k.startswith('drops.'))}, "
        f"evictions {counters['evictions']}",
        f"unvalidated bytes in {counters['unvalidated_bytes_in']}, out {counters['unvalidated_bytes_out']} "
        f"(amplification {gauges['amplification']})",
        *hub.engine.totals(hub, now),
    )
    return reply(request, "hub stats", items=items)


_HANDLERS: dict[type[Any], Callable[..., Answer]] = {
    events.Join: _join, events.Part: _part, events.Nick: _nick, events.Say: _say,
    events.Msg: _msg, events.Who: _who, events.Rooms: _rooms, events.Topic: _topic,
    events.History: _history, events.Stats: _stats,
}  # fmt: skip
