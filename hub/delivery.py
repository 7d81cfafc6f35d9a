"""The hub core's delivery of room events: fan-out, acks and the retransmission scan.

What :meth:`hub.core.HubCore.commit` does after the history and the store: encode the event
once, keep it in the room's ring (``hub.fanout``), and hand the shell one
:class:`~hub.fanout.Fanout` per kind of member (envelope, text in live mode), whatever the
room's size; text members in reply mode get the line queued.  Acks of room streams arrive
here on the fast path (no event object); the per-room timer scan resends what timed out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roomcast.hub import textfront
from roomcast.hub.fanout import INF, Fanout, LiveVector
from roomcast.hub.rooms import Address, Client, Room, RoomEvent
from roomcast.shared import envelope, limits, text

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore


def fan_out(
    hub: HubCore, room: Room, event: RoomEvent, origin: Client | None, now: float, data: bytes | None = None
) -> None:
    """Send a committed room event to every member but ``origin``: constant Python work for
    envelope and live text members; members past their window are dropped as too slow.
    ``data``: the event's envelope, when the caller has it already (the say fast lane)."""
    fan = room.fanout
    # Only an envelope member may need the event again (resent, or served from the ring), and
    # one that joins later starts after it: with none in the room, nothing is encoded.
    if data is None or not fan.ranges:
        data = envelope.encode(event) if fan.ranges else b""
    too_slow = fan.add(event.seq, data, now)
    origin_address = None
    if origin is not None:
        origin_address = origin.address
        if origin.link is not None:
            fan.own(origin_address, event.seq)
    live = fan.envelope_live
    if live is None:
        fan.rebuild(room.members)
        live = fan.envelope_live
        assert live is not None
    if live.addresses:
        _send(hub, data, live, origin_address)
    if fan.text_live.addresses or fan.text_queued:
        line = textfront.line_of(event)
        live_text = text.live_line(line)
        _send(hub, live_text, fan.text_live, origin_address)
        for member in fan.text_queued:
            if member is not origin:
                textfront.deliver(hub, member, line, live=False)
    if fan.scan_at == INF and fan.ranges:
        hub.schedule_scan(room, now + limits.MIN_RTO)
    if fan.held_back:  # look again when a member past its window would count as stalled
        stall = fan.stall_deadline()
        if stall < fan.scan_at:
            hub.schedule_scan(room, stall)
    if too_slow:
        _drop(hub, room, too_slow, now)


def _drop(hub: HubCore, room: Room, too_slow: list[Address], now: float) -> None:
    for address in too_slow:
        member = room.members.get(address)
        if member is not None and member.link is not None:
            hub.drop_from_rooms(member, "too slow", now)


def _send(hub: HubCore, data: bytes, vector: LiveVector, origin: Address | None) -> None:
    addresses = vector.addresses
    skip = -1 if origin is None else vector.index.get(origin, -1)
    sent = len(addresses) - (skip >= 0)
    if sent == 1:  # one target (a room of two, say): a plain datagram, no vector to slice
        hub.send(data, addresses[1] if skip == 0 else addresses[0])
        hub.counters.deliveries += 1
    elif sent > 0:
        hub.queue_fanout(Fanout(data, vector, skip))
        counters = hub.counters
        counters.datagrams_out += sent
        counters.bytes_out += sent * len(data)
        counters.deliveries += sent


def acknowledged(
    hub: HubCore, client: Client, key: str, upto: int, sack: tuple[int, ...], now: float
) -> None:
    """An ack for the room stream ``key``: resend the holes it shows, serve a held-back
    member what now fits its window."""
    link = client.link
    assert link is not None
    fan = link.rooms.get(key)
    if fan is None:
        return
    resend, served = fan.acknowledge(client.address, upto, sack, now, link.direct.rtt)
    if resend:
        for data in resend:
            hub.send(data, client.address)
        hub.counters.inc("retransmits.fast", len(resend))
    if served:
        for data in served:
            hub.send(data, client.address)
        hub.counters.deliveries += len(served)
        if fan.scan_at == INF:
            hub.schedule_scan(hub.registry.rooms[key], now + limits.MIN_RTO)


def scan(hub: HubCore, room: Room, now: float) -> None:
    """A room's retransmission scan (``hub.fanout.RoomFanout.scan``), then the next one."""

    def rto_of(address: Address) -> float:
        link = room.members[address].link
        return link.direct.rtt.rto() if link is not None else limits.INITIAL_RTO

    fan = room.fanout
    resent = fan.scan(now, rto_of)
    for data, address in resent:
        hub.send(data, address)
    hub.counters.inc("retransmits", len(resent))
    if fan.held_back:
        _drop(hub, room, fan.too_slow(now), now)
    at = min(fan.scan_at, fan.stall_deadline()) if fan.held_back else fan.scan_at
    if at != INF:
        hub.schedule_scan(room, at)
