"""The client's side of a session (shared.link.HubLink) against a real HubCore, in memory.

A :class:`~tests.unit.hubwire.Wire` moves datagrams between HubLinks and the core on a
simulated clock, dropping, duplicating and reordering them with a seeded generator; the hub
can be taken down (``wire.core = None``) or replaced by a new one (a restart).  No sockets,
no sleeps: minutes of protocol time run in well under a second.
"""

from __future__ import annotations

import random

import pytest

from roomcast.hub.core import HubConfig
from roomcast.shared import envelope, events, limits
from roomcast.shared.link import (
    Answered,
    Connected,
    HubLink,
    LinkState,
    Reconnecting,
    Refused,
    Show,
    Unreachable,
)
from tests.unit.hubwire import Impairment, Wire, new_core


def shown(wire: Wire, link: HubLink, room: str) -> list[events.Deliver]:
    """The room lines ``link`` showed its user, in the order it showed them."""
    return [
        e.event
        for e in wire.events_of(link)
        if isinstance(e, Show) and isinstance(e.event, events.Deliver) and e.event.room == room
    ]


def answered(wire: Wire, link: HubLink, kind: type[object]) -> list[Answered]:
    return [e for e in wire.events_of(link) if isinstance(e, Answered) and isinstance(e.request, kind)]


def join_all(wire: Wire, links: list[HubLink], room: str) -> None:
    for link in links:
        wire.submit(link, events.Join(id=0, room=room))
    wire.run_until(lambda: all(answered(wire, link, events.Join) for link in links), limit=30.0)


def assert_room_order(lines: list[events.Deliver]) -> None:
    seqs = [line.seq for line in lines]
    assert seqs == sorted(set(seqs)), "room lines shown out of order or twice"


def test_three_links_show_every_message_once_in_room_order_over_a_lossy_wire() -> None:
    impairment = Impairment(loss=0.10, dup=0.05, reorder=0.2, jitter=0.02, rng=random.Random(2024))
    wire = Wire(new_core(HubConfig(flood_rate=0)), impairment)
    links = [wire.add_link(f"n{i}", 41000 + i) for i in range(3)]
    join_all(wire, links, "hall")
    per_link = 300
    for n in range(per_link):
        for i, link in enumerate(links):
            wire.submit(link, events.Say(id=0, room="hall", body=f"n{i} {n}"))
    others = 2 * per_link
    wire.run_until(
        lambda: all(len(shown(wire, link, "hall")) >= others and link.busy == 0 for link in links),
        limit=120.0,
    )
    wire.run_for(3.0)  # late duplicates and retransmissions arrive too
    for i, link in enumerate(links):
        lines = shown(wire, link, "hall")
        assert_room_order(lines)
        expected = {f"n{j} {n}" for j in range(3) if j != i for n in range(per_link)}
        assert len(lines) == len(expected) and {line.body for line in lines} == expected
        for j in range(3):  # each sender's lines in the order it sent them
            mine = [int(line.body.split()[1]) for line in lines if line.nick == f"n{j}"]
            assert mine == sorted(mine)
        assert [e for e in wire.events_of(link) if isinstance(e, Refused | Reconnecting)] == []
    core = wire.core
    assert core is not None
    assert core.counters["messages"] == 3 * per_link  # no request carried out twice
    assert core.gauges()["unacked"] == 0  # the links acknowledged everything
    assert min(wire.impaired.values()) > 100  # the wire really was hostile
    assert core.counters["retransmits"] + core.counters["retransmits.fast"] > 0


def test_private_messages_arrive_once_in_order_over_a_lossy_wire() -> None:
    impairment = Impairment(loss=0.2, dup=0.1, reorder=0.3, rng=random.Random(7))
    wire = Wire(new_core(HubConfig(flood_rate=0)), impairment)
    alice = wire.add_link("alice", 41001)
    bob = wire.add_link("bob", 41002)
    wire.run_until(lambda: alice.state is bob.state is LinkState.OPEN, limit=30.0)
    for n in range(60):
        wire.submit(alice, events.Msg(id=0, to="bob", body=f"p{n}"))
    wire.run_until(lambda: len(shown(wire, bob, "")) >= 60 and alice.busy == 0, limit=60.0)
    wire.run_for(2.0)
    lines = shown(wire, bob, "")
    assert [line.body for line in lines] == [f"p{n}" for n in range(60)]
    assert_room_order(lines)


def test_link_notices_a_restarted_hub_rejoins_and_resends_what_was_unanswered() -> None:
    wire = Wire(new_core(seed=1))
    alice = wire.add_link("alice", 41001)
    bob = wire.add_link("bob", 41002)
    join_all(wire, [alice, bob], "hall")
    old_hub = wire.core
    assert old_hub is not None
    wire.core = None  # the hub dies (kill -9): whatever is sent to it vanishes
    wire.submit(alice, events.Say(id=0, room="hall", body="typed while the hub was down"))
    wire.run_for(1.0)
    assert alice.busy == 1 and alice.state is LinkState.OPEN
    restarted_at = wire.now
    wire.core = new_hub = new_core(seed=2, now=wire.now)  # a new process: new secret, new id
    assert new_hub.hub_id != old_hub.hub_id

    def back(link: HubLink) -> bool:
        return any(isinstance(e, Connected) and e.reconnected for e in wire.events_of(link))

    wire.run_until(lambda: back(alice) and alice.busy == 0, limit=limits.HUB_SILENCE_TIMEOUT)
    assert wire.now - restarted_at < limits.HUB_SILENCE_TIMEOUT  # told, not timed out
    happened = wire.events_of(alice)
    [reconnecting] = [e for e in happened if isinstance(e, Reconnecting)]
    assert "restarted" in reconnecting.reason
    assert happened.index(reconnecting) < happened.index(Connected("alice", True))
    assert alice.hub_id == new_hub.hub_id and alice.nick == "alice"
    said = [e for e in new_hub.registry.rooms["hall"].history if isinstance(e, events.Deliver)]
    assert [e.body for e in said] == ["typed while the hub was down"]  # resent, and carried out once
    assert [a.request.body for a in answered(wire, alice, events.Say)] == ["typed while the hub was down"]
    wire.run_until(lambda: back(bob), limit=limits.PING_INTERVAL + 2.0)  # idle bob notices by its ping
    wire.run_for(1.0)
    assert {c.nick for c in new_hub.registry.rooms["hall"].members.values()} == {"alice", "bob"}
    wire.submit(alice, events.Say(id=0, room="hall", body="after"))
    wire.run_until(lambda: any(line.body == "after" for line in shown(wire, bob, "hall")), limit=5.0)


def test_after_a_restart_a_link_catches_up_on_what_was_said_before_it_rejoined() -> None:
    wire = Wire(new_core(HubConfig(flood_rate=0), seed=1))
    alice = wire.add_link("alice", 41001)
    bob = wire.add_link("bob", 41002)
    join_all(wire, [alice, bob], "hall")
    for n in range(8):  # bob's seqs on the old hub run up to 10
        wire.submit(alice, events.Say(id=0, room="hall", body=f"old{n}"))
    wire.run_until(lambda: len(shown(wire, bob, "hall")) == 8, limit=10.0)
    wire.core = new_core(HubConfig(flood_rate=0), seed=2, now=wire.now)
    for n in range(3):  # said on the new hub (seqs 2..4) before idle bob notices the restart
        wire.submit(alice, events.Say(id=0, room="hall", body=f"new{n}"))
    wire.run_until(lambda: alice.busy == 0 and bob.hub_id == alice.hub_id and bob.busy == 0, limit=15.0)
    wire.run_for(1.0)
    bodies = [line.body for line in shown(wire, bob, "hall")]
    assert bodies == [f"old{n}" for n in range(8)] + [f"new{n}" for n in range(3)]


def test_link_told_the_hub_is_going_reconnects_to_the_next_one() -> None:
    wire = Wire(new_core(seed=1))
    alice = wire.add_link("alice", 41001)
    join_all(wire, [alice], "hall")
    old_hub = wire.core
    assert old_hub is not None
    old_hub.shutdown(wire.now, limits.DRAIN_SECONDS)
    wire.run_for(2.0)  # draining: the old hub refuses hellos
    assert any(isinstance(e, Reconnecting) for e in wire.events_of(alice))
    assert alice.state is LinkState.CONNECTING
    wire.submit(alice, events.Say(id=0, room="hall", body="typed meanwhile"))
    wire.core = new_hub = new_core(seed=2, now=wire.now)
    wire.run_until(lambda: alice.state is LinkState.OPEN and alice.busy == 0, limit=limits.CONNECT_TIMEOUT)
    said = [e.body for e in new_hub.registry.rooms["hall"].history if isinstance(e, events.Deliver)]
    assert said == ["typed meanwhile"]
    assert [e for e in wire.events_of(alice) if isinstance(e, Unreachable | Refused)] == []


def _flood_through_slow_down(messages: int) -> tuple[Wire, HubLink, HubLink, float]:
    """``messages`` says from alice at once into a hub allowing 5 a second after a burst of 3."""
    wire = Wire(new_core(HubConfig(flood_rate=5.0, flood_burst=3)))
    alice = wire.add_link("alice", 41001)
    bob = wire.add_link("bob", 41002)
    join_all(wire, [alice, bob], "hall")
    start = wire.now
    for n in range(messages):
        wire.submit(alice, events.Say(id=0, room="hall", body=f"m{n}"))
    wire.run_until(lambda: alice.busy == 0 and len(shown(wire, bob, "hall")) == messages, limit=60.0)
    return wire, alice, bob, wire.now - start


def test_link_holds_on_slow_down_and_each_message_is_carried_out_once() -> None:
    wire, alice, bob, took = _flood_through_slow_down(20)
    assert [line.body for line in shown(wire, bob, "hall")] == [f"m{n}" for n in range(20)]
    core = wire.core
    assert core is not None
    assert core.counters["errors.slow-down"] >= 1
    assert core.counters["messages"] == 20
    assert [e for e in wire.events_of(alice) if isinstance(e, Refused)] == []
    assert took >= (20 - 3) / 5.0 - 0.5  # no faster than the hub allows


def test_link_resends_after_the_slow_down_pause_at_the_hubs_rate() -> None:
    _, _, _, took = _flood_through_slow_down(20)
    assert took <= (20 - 3) / 5.0 + 1.5


def test_link_under_slow_down_does_not_resend_what_the_hub_holds() -> None:
    wire, _, _, _ = _flood_through_slow_down(20)
    assert wire.to_hub["say"] <= 2 * 20


def test_idle_link_pings_and_keeps_its_session() -> None:
    wire = Wire(new_core(HubConfig(session_timeout=6.0)))
    alice = wire.add_link("alice", 41001)
    join_all(wire, [alice], "hall")
    wire.run_for(60.0)
    assert wire.to_hub["ping"] >= 60.0 / (6.0 / 3) - 2  # the welcome said idle=6: ping every 2 s
    assert alice.state is LinkState.OPEN
    assert [e for e in wire.events_of(alice) if isinstance(e, Reconnecting)] == []
    core = wire.core
    assert core is not None and core.counters["evictions"] == 0
    assert {c.nick for c in core.registry.rooms["hall"].members.values()} == {"alice"}


def test_an_open_link_that_may_give_up_has_no_deadline_in_the_past() -> None:
    # The give-up deadline counts only while connecting: once open, a deadline left in the
    # past would make the shell's loop spin, a whole core per idle client.
    wire = Wire(new_core())
    alice = wire.add_link("alice", 41001, give_up_after=limits.RECONNECT_GIVE_UP)
    join_all(wire, [alice], "hall")
    wire.run_for(limits.RECONNECT_GIVE_UP * 2)  # fails if a timer fires again and again
    deadline = alice.next_deadline()
    assert alice.state is LinkState.OPEN
    assert deadline is not None and deadline > wire.now


def test_link_without_a_hub_is_unreachable_after_connect_timeout() -> None:
    wire = Wire(None)
    alice = wire.add_link("alice", 41001)
    wire.run_until(lambda: bool(wire.events_of(alice)), limit=limits.CONNECT_TIMEOUT + 1.0)
    [unreachable] = wire.events_of(alice)
    assert isinstance(unreachable, Unreachable)
    assert limits.CONNECT_TIMEOUT <= wire.now < limits.CONNECT_TIMEOUT + 1.0
    assert alice.state is LinkState.CLOSED and alice.next_deadline() is None
    assert wire.to_hub["hello"] >= 3  # it kept trying meanwhile


def test_link_whose_hub_goes_silent_reconnects_and_gives_up_if_asked() -> None:
    wire = Wire(new_core())
    alice = wire.add_link("alice", 41001, give_up_after=limits.RECONNECT_GIVE_UP)
    join_all(wire, [alice], "hall")
    wire.core = None
    lost_at = wire.now
    wire.run_until(
        lambda: any(isinstance(e, Reconnecting) for e in wire.events_of(alice)),
        limit=limits.HUB_SILENCE_TIMEOUT + 1.0,
    )
    assert wire.now - lost_at >= limits.HUB_SILENCE_TIMEOUT - 0.01
    wire.run_until(lambda: alice.state is LinkState.CLOSED, limit=limits.RECONNECT_GIVE_UP + 2.0)
    assert isinstance(wire.events_of(alice)[-1], Unreachable)


@pytest.mark.parametrize("notice_lost", [False, True], ids=["told", "notice-lost"])
def test_a_link_dropped_from_its_rooms_for_falling_behind_rejoins_and_no_line_is_lost_or_reordered(
    monkeypatch: pytest.MonkeyPatch, notice_lost: bool
) -> None:
    monkeypatch.setattr(limits, "MEMBER_IN_FLIGHT", 8)
    monkeypatch.setattr(limits, "MEMBER_WINDOW", 16)
    core = new_core(HubConfig(flood_rate=0))
    wire = Wire(core)
    alice, slow = wire.add_link("alice", 40001), wire.add_link("slow", 40002)
    join_all(wire, [alice, slow], "hall")
    slow_address = next(address for address, link in wire.links.items() if link is slow)

    # slow's acks vanish: it falls more than a window behind while both keep talking; and
    # (notice-lost) the hub's too-slow notice never reaches it: a refused line tells it instead
    def block(address: object, data: bytes, to_hub: bool) -> bool:
        event = envelope.decode(data).event
        if notice_lost and not to_hub and isinstance(event, events.Error) and event.code == "too-slow":
            return True
        return to_hub and address == slow_address and event.KIND == "ack"

    wire.block = block
    for n in range(30):
        wire.submit(alice, events.Say(id=0, room="hall", body=f"a{n}"))
        wire.submit(slow, events.Say(id=0, room="hall", body=f"s{n}"))
    wire.run_until(lambda: core.counters["departures.too-slow"] == 1, limit=30.0)
    wire.block = None

    def back() -> bool:
        return "slow" in {c.nick for c in core.registry.rooms["hall"].members.values()}

    wire.run_until(lambda: back() and slow.busy == 0 and alice.busy == 0, limit=60.0)
    said = [
        e.body
        for e in core.registry.rooms["hall"].history
        if isinstance(e, events.Deliver) and e.nick == "slow"
    ]
    assert said == [f"s{n}" for n in range(30)], "each of slow's lines carried out once, in order"
    assert {c.nick for c in core.registry.rooms["hall"].members.values()} == {"alice", "slow"}
    assert_room_order(shown(wire, slow, "hall"))


def test_a_refusal_answered_twice_is_reported_once_and_the_session_goes_on() -> None:
    """The request was resent before its answer came: the hub answers the copy from its cache.
    The second answer must not read as a refusal of the session (nick-taken at hello)."""
    link = HubLink("bob", 0.0)
    link.datagrams_to_send()
    link.receive_datagram(envelope.encode(events.Challenge(cookie=b"c")), 0.1)
    link.receive_datagram(envelope.encode(events.Welcome(token=bytes(16), hub=b"h", nick="bob")), 0.2)
    link.submit(events.Nick(id=0, nick="carol"), 0.2)
    [nick] = [e for d in link.datagrams_to_send() if isinstance(e := envelope.decode(d).event, events.Nick)]
    refusal = envelope.encode(events.Error(code="nick-taken", text="nick carol is taken", id=nick.id))
    first = link.receive_datagram(refusal, 0.3)
    assert [type(e) for e in first] == [Refused]
    assert link.receive_datagram(refusal, 0.4) == []
    assert link.state is LinkState.OPEN
