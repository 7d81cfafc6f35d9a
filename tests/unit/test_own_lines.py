"""A sender's own lines owe no ack: the hub marks each as the sender's when it answers the say
(``RoomFanout.own``), so an ack for them would tell it nothing.  The link sends none, and the
hub is left with nothing unacknowledged and nothing to resend all the same."""

from __future__ import annotations

from typing import Any

from roomcast.hub.core import HubConfig
from roomcast.shared import envelope, events
from tests.unit.hubwire import HOST, Wire, new_core
from tests.unit.test_link import join_all, shown

ALICE = (HOST, 40001)
LINES = [f"line {n}" for n in range(3 * 8 + 1)]


def test_a_sender_acks_none_of_its_own_lines_and_the_hub_keeps_nothing_for_it() -> None:
    core = new_core(HubConfig(flood_rate=0))
    wire = Wire(core)
    alice, bob = wire.add_link("alice", ALICE[1]), wire.add_link("bob", 40002)
    join_all(wire, [alice, bob], "hall")
    wire.run_for(1.0)  # the presence events are acknowledged
    from_alice: list[Any] = []

    def watch(address: Any, data: bytes, to_hub: bool) -> bool:
        if to_hub and address == ALICE:
            from_alice.append(envelope.decode(data).event)
        return False  # nothing is lost

    wire.block = watch
    for line in LINES:
        wire.submit(alice, events.Say(id=0, room="hall", body=line))
    wire.run_until(lambda: len(shown(wire, bob, "hall")) == len(LINES), limit=30.0)
    wire.run_for(10.0)  # well past every retransmission timer
    assert len([e for e in from_alice if isinstance(e, events.Say)]) == len(LINES)
    assert [e for e in from_alice if isinstance(e, events.Ack)] == [], "acks for its own lines"
    assert core.gauges()["unacked"] == 0
    assert core.counters["retransmits"] == 0
    assert not shown(wire, alice, "hall")  # its own lines were never sent back to it
