"""The hub's fast lane for ``say`` (``hub.envelopefront._fast_say``) does what the full request
path does: the same datagrams out, byte for byte, the same counters, whatever comes in
(in order, out of order, again, to a room not joined, with a wrong token, under flood control)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.hub import envelopefront
from roomcast.hub.core import HubConfig
from roomcast.shared import envelope, events
from tests.unit.hubwire import Hub, envelope_peer
from tests.unit.lanes import both_lanes

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["say", "say", "say", "gap", "again", "other-room", "bad-token", "ack", "wait", "me"]
        ),
        st.integers(0, 3),
    ),
    max_size=40,
)


def run(steps: list[tuple[str, int]], flood: bool) -> tuple[list[tuple[Any, bytes]], dict[str, int]]:
    """Play ``steps`` on a fresh hub: every datagram it sent, to whom, in order; its counters."""
    config = HubConfig(flood_rate=2.0, flood_burst=3.0) if flood else HubConfig(flood_rate=0)
    hub = Hub(config)
    alice = envelope_peer(hub, 5001, "alice", "hall")
    bob = envelope_peer(hub, 5002, "bob", "hall", "den")
    sent: list[tuple[Any, bytes]] = []
    for step, n in steps:
        if step in ("say", "me", "other-room"):
            room = "den" if step == "other-room" else "hall"
            alice.request(events.Say, room=room, body=f"line {n}" * n, action=step == "me", mid=n)
        elif step == "gap":
            alice.next_id += 1 + n % 2
            alice.request(events.Say, room="hall", body="after a gap")
        elif step == "again":
            alice.send(events.Say(id=max(1, alice.next_id - 1 - n), room="hall", body="again"))
        elif step == "bad-token":
            alice.send(events.Say(id=alice.next_id, room="hall", body="x"), token=bytes(16))
        elif step == "ack":
            bob.ack("hall", max(0, hub.core.registry.rooms["hall"].seq - n))
        else:
            hub.advance(0.2 * (n + 1))
        for address in sorted(hub.mail):
            sent += [(address, data) for data in hub.take(address)]
    return sent, dict(hub.core.counters.values)


@settings(max_examples=60, deadline=None)
@given(STEPS, st.booleans())
def test_the_say_fast_lane_sends_what_the_full_path_sends(steps: list[tuple[str, int]], flood: bool) -> None:
    fast, full, used = both_lanes(envelopefront, lambda: run(steps, flood))
    assert fast == full
    if any(step == "say" for step, _ in steps[:1]):
        assert used[0]  # a first say in order took the fast lane


def test_a_say_in_order_takes_the_fast_lane_and_gets_its_reply_and_delivery() -> None:
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 5001, "alice", "hall")
    bob = envelope_peer(hub, 5002, "bob", "hall")
    with mock.patch.object(envelopefront, "_request", side_effect=AssertionError("full path")):
        request = alice.request(events.Say, room="hall", body="hello")
    reply = [e for e in alice.received() if isinstance(e, events.Reply)]
    assert [(r.id, r.text, r.seq) for r in reply] == [(request.id, "sent to hall", 3)]
    (deliver,) = bob.received()
    assert (deliver.nick, deliver.body, deliver.seq) == ("alice", "hello", 3)
    assert envelope.encode(deliver) == hub.core.registry.rooms["hall"].fanout.ring[3][0]
