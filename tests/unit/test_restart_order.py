"""Order across a hub restart, as a deterministic simulation: real HubLinks and HubCores over the
in-memory lossy wire (``tests.unit.hubwire``), hypothesis choosing the schedule.

A sender talks, the hub is killed (``kill -9``: the last records may not be on disk yet) and
started again from what its data directory kept (same history epoch, seqs going on past a
gap), the sender goes on talking while a quiet listener notices, rejoins and catches up on
what it missed.  The wire loses, duplicates and reorders datagrams; the listener's catch-up
answer may be lost.  The promise checked: the listener shows each room event once, in the
room's order (seq order), and everything the restarted hub's room holds.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.hub.core import HubConfig, HubCore
from roomcast.hub.records import SavedHistory, SavedRoom
from roomcast.shared import envelope, events, limits
from roomcast.shared.link import Connected, HubLink, Show
from tests.unit.hubwire import Impairment, Wire, new_core
from tests.unit.test_link import answered, join_all

ROOM = "hall"
CONFIG = HubConfig(flood_rate=0)


def room_events(wire: Wire, link: HubLink) -> list[events.RoomEvent]:
    """The room events the link showed its user, in the order it showed them."""
    return [e.event for e in wire.events_of(link) if isinstance(e, Show) and e.event.room == ROOM]


def crash(core: HubCore, unsaved: int) -> SavedHistory:
    """What the data directory holds after a kill -9: the room's history but its last
    ``unsaved`` records, and the seq to go on from (past a gap, as the store does)."""
    room = core.registry.rooms[ROOM]
    kept = tuple(room.history)[: len(room.history) - unsaved]
    last = kept[-1].seq if kept else 0
    saved = SavedRoom(name=room.name, seq=last + limits.RESTORE_SEQ_SKIP, history=kept)
    return SavedHistory(epoch=core.hub_id, rooms=(saved,))


def say(wire: Wire, link: HubLink, lines: list[str], gap: float) -> None:
    for line in lines:
        wire.submit(link, events.Say(id=0, room=ROOM, body=line))
        wire.run_for(gap)


@settings(max_examples=300)
@given(
    seed=st.integers(0, 2**16),
    before=st.integers(1, 10),
    during=st.integers(0, 3),
    after=st.integers(1, 12),
    gap=st.floats(0.001, 0.05),
    after_gap=st.floats(0.01, 0.8),
    unsaved=st.integers(0, 2),
    down_for=st.floats(0.0, 1.0),
    loss=st.sampled_from([0.0, 0.05, 0.15]),
    reorder=st.sampled_from([0.0, 0.3]),
    lose_catch_up_answer=st.booleans(),
)
def test_a_listener_shows_each_room_event_once_in_room_order_across_a_restart(
    seed: int,
    before: int,
    during: int,
    after: int,
    gap: float,
    after_gap: float,
    unsaved: int,
    down_for: float,
    loss: float,
    reorder: float,
    lose_catch_up_answer: bool,
) -> None:
    impairment = Impairment(loss=loss, dup=0.05, reorder=reorder, jitter=0.03, rng=random.Random(seed))
    old = new_core(CONFIG, seed=1)
    old.restore(SavedHistory(epoch=old.hub_id))  # keeps records, as with --data-dir
    wire = Wire(old, impairment)
    alice, bob = wire.add_link("alice", 41001), wire.add_link("bob", 41002)
    join_all(wire, [alice, bob], ROOM)
    bob_joined = answered(wire, bob, events.Join)[0].reply.seq

    say(wire, alice, [f"before {n}" for n in range(before)], gap)
    saved = crash(old, min(unsaved, before))
    wire.core = None
    say(wire, alice, [f"during {n}" for n in range(during)], 0.001)  # typed while no hub runs
    wire.run_for(down_for)
    new = new_core(CONFIG, seed=2, now=wire.now)
    new.restore(saved)
    wire.core = new

    lost: list[bool] = []

    def lose_first_catch_up_answer(_address: object, data: bytes, to_hub: bool) -> bool:
        event = envelope.decode(data).event
        if to_hub or lost or not isinstance(event, events.Reply) or "earlier message" not in event.text:
            return False
        lost.append(True)
        return True

    if lose_catch_up_answer:
        wire.block = lose_first_catch_up_answer
    say(wire, alice, [f"after {n}" for n in range(after)], after_gap)  # live while bob catches up

    def settled() -> bool:
        back = any(isinstance(e, Connected) and e.reconnected for e in wire.events_of(bob))
        return back and alice.busy == 0 and bob.busy == 0

    wire.run_until(settled, limit=60.0)
    wire.run_for(2.0)

    shown = room_events(wire, bob)
    seqs = [e.seq for e in shown]
    assert seqs == sorted(set(seqs)), (
        f"shown out of room order or twice: {[(e.seq, e.history) for e in shown]}"
    )
    held = [e.seq for e in new.registry.rooms[ROOM].history if e.seq > bob_joined and e.nick != "bob"]
    missing = sorted(set(held) - set(seqs))
    assert not missing, f"the room holds {missing} but bob never showed them"
