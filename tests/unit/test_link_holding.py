"""A link whose user can take no more lines (a piped client's full output) holds room events
back: unacknowledged, so the hub keeps them and sends them again; the session itself goes on,
so neither side takes the other for gone, however long the hold."""

from __future__ import annotations

from roomcast.hub.core import HubConfig
from roomcast.shared import events, limits
from roomcast.shared.link import Reconnecting, Unreachable
from tests.unit.hubwire import Wire, new_core
from tests.unit.test_link import assert_room_order, join_all, shown

LINES = [f"line {n}" for n in range(45)]


def test_a_holding_link_keeps_its_session_and_later_shows_every_line_once_in_order() -> None:
    core = new_core(HubConfig(flood_rate=0))
    wire = Wire(core)
    alice, reader = (
        wire.add_link("alice", 40001, give_up_after=limits.RECONNECT_GIVE_UP),
        wire.add_link("reader", 40002, give_up_after=limits.RECONNECT_GIVE_UP),
    )
    join_all(wire, [alice, reader], "hall")
    reader.holding = True
    # alice talks all along (so the reader hears the hub all the time), for longer than the
    # hub's idle timeout and the link's give-up
    for line in LINES:
        wire.submit(alice, events.Say(id=0, room="hall", body=line))
        wire.run_for(3 * limits.RECONNECT_GIVE_UP / len(LINES))
    assert shown(wire, reader, "hall") == []
    assert not [e for e in wire.events_of(reader) if isinstance(e, Reconnecting | Unreachable)]
    assert "reader" in {c.nick for c in core.registry.rooms["hall"].members.values()}
    assert core.counters["departures.too-slow"] == 0

    reader.holding = False
    wire.run_until(lambda: len(shown(wire, reader, "hall")) >= len(LINES), limit=60.0)
    wire.run_for(3.0)  # nothing more comes: each line once
    lines = shown(wire, reader, "hall")
    assert [line.body for line in lines] == LINES
    assert_room_order(lines)
