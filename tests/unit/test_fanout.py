"""Constant Python work per room message: one :class:`~hub.fanout.Fanout` item over a live
vector built when membership changes, the sender skipped by its index; text members in live
mode on their own vector; a member past its window leaves the vector and is served from the
ring until it catches up."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.hub.core import HubConfig
from roomcast.hub.fanout import INF, Address, Fanout, RoomFanout
from roomcast.shared import envelope, events, limits
from roomcast.shared.reliable import RttEstimator
from tests.unit.hubwire import Hub, TextPeer, envelope_peer, of


class Recorder:
    """Keeps the Fanout items the core hands out (the harness spells them out per address)."""

    def __init__(self, hub: Hub) -> None:
        self.items: list[Fanout] = []
        original = hub.core.sends

        def sends() -> list[object]:
            items = original()
            self.items += [item for item in items if isinstance(item, Fanout)]
            return items  # type: ignore[return-value]

        hub.core.sends = sends  # type: ignore[method-assign]

    def take(self) -> list[Fanout]:
        items, self.items = self.items, []
        return items


def test_a_room_message_is_one_fanout_over_a_vector_built_once() -> None:
    hub = Hub(HubConfig(flood_rate=0, max_clients_per_host=1000))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    others = [envelope_peer(hub, 41000 + n, f"m{n}", "hall") for n in range(150)]
    alice.received()
    for peer in others:
        peer.received()
    fanouts = Recorder(hub)
    alice.request(events.Say, room="hall", body="one")
    [first] = fanouts.take()
    alice.request(events.Say, room="hall", body="two")
    [second] = fanouts.take()
    assert second.vector is first.vector  # not rebuilt per message
    assert len(second) == 150 and alice.address not in second.targets()
    assert sorted(second.targets()) == sorted(p.address for p in others)
    assert [e.body for e in of(events.Deliver, [envelope.decode(second.data).event])] == ["two"]
    assert hub.core.counters["deliveries"] >= 300
    envelope_peer(hub, 42000, "late", "hall")
    fanouts.take()
    alice.request(events.Say, room="hall", body="three")
    [third] = fanouts.take()
    assert third.vector is not first.vector and len(third) == 151  # membership changed


def test_the_sender_is_skipped_and_everyone_else_gets_the_same_bytes() -> None:
    hub = Hub(HubConfig(flood_rate=0))
    peers = [envelope_peer(hub, 40001 + n, f"p{n}", "hall") for n in range(5)]
    for peer in peers:
        peer.received()
    fanouts = Recorder(hub)
    peers[2].request(events.Say, room="hall", body="hi")
    [item] = fanouts.take()
    assert sorted(item.targets()) == sorted(p.address for p in peers if p is not peers[2])
    for peer in peers:
        got = of(events.Deliver, peer.received())
        assert [e.body for e in got] == ([] if peer is peers[2] else ["hi"])


def test_text_members_in_live_mode_share_their_own_vector_with_the_plain_line() -> None:
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "lobby")
    live = [TextPeer(hub, 42001 + n) for n in range(3)]
    for peer in live:
        peer.line("/live on")
    queued = TextPeer(hub, 42010)
    queued.line("hello")
    alice.received()
    fanouts = Recorder(hub)
    alice.request(events.Say, room="lobby", body="to everyone")
    items = fanouts.take()
    text = [item for item in items if not envelope.is_envelope(item.data)]
    assert len(text) == 1 and sorted(text[0].targets()) == sorted(p.address for p in live)
    assert text[0].data == b"[lobby] alice: to everyone\n"
    assert "[lobby] alice: to everyone" in queued.line("")  # queued for its next reply


def test_a_member_past_its_window_leaves_the_vector_and_comes_back_after_acks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MEMBER_IN_FLIGHT", 4)
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall", auto_ack=False)
    carol = envelope_peer(hub, 40003, "carol", "hall")
    dave = envelope_peer(hub, 40004, "dave", "hall")  # so that two stay: a vector, not one datagram
    bob.ack("hall", 4)
    alice.received()
    carol.received()
    dave.received()
    fanouts = Recorder(hub)
    for n in range(6):
        alice.request(events.Say, room="hall", body=f"m{n}")  # seqs 5..10
        carol.received()  # carol and dave acknowledge as they go
        dave.received()
    vectors = [item.vector.addresses for item in fanouts.take()]
    assert [bob.address in v for v in vectors] == [True] * 4 + [False] * 2
    bob.ack("hall", 8)  # m0..m3: the ring serves m4, m5
    assert [e.body for e in of(events.Deliver, bob.received())] == [f"m{n}" for n in range(6)]
    bob.ack("hall", 10)  # all acked: back in the vector
    alice.request(events.Say, room="hall", body="m6")
    assert bob.address in fanouts.take()[-1].vector.addresses


def test_a_held_back_sender_is_never_sent_its_own_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MEMBER_IN_FLIGHT", 3)
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall", auto_ack=False)
    bob = envelope_peer(hub, 40002, "bob", "hall")
    joined = of(events.Presence, alice.received())[-1].seq
    for n in range(6):
        bob.request(events.Say, room="hall", body=f"b{n}")
        alice.request(events.Say, room="hall", body=f"a{n}")
        bob.received()
    got = of(events.Deliver, alice.received())
    alice.ack("hall", joined)
    alice.ack("hall", max(e.seq for e in got))
    for _ in range(4):
        got += of(events.Deliver, alice.received())
        alice.ack("hall", hub.core.registry.rooms["hall"].seq)
    assert sorted(e.body for e in got if e.nick == "bob") == [f"b{n}" for n in range(6)]
    assert [e.body for e in got if e.nick == "alice"] == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["say", "own", "ack", "sack"]), st.integers(0, 2), st.integers(0, 12)),
        max_size=80,
    )
)
def test_every_live_member_stays_filed_once_and_leaves_exactly_when_its_window_fills(
    ops: list[tuple[str, int, int]],
) -> None:
    """Acks (the usual cumulative ones on their short way included) and a member's own lines keep
    each live member filed exactly once, after the room's seq and no later than the seq at which
    its window fills (acks leave it where it is); a held-back one nowhere.  A member leaves the live vector exactly
    when its window is full: never past it, never before."""
    fan = RoomFanout(0)
    fan.window = 4
    members = [("127.0.0.1", 40000 + i) for i in range(3)]
    for member in members:
        fan.join(member, envelope=True)
    rtt, now = RttEstimator(), 1.0
    for kind, who, back in ops:
        now += 0.01
        if kind in ("say", "own"):
            live = [m for m in members if not fan.ranges[m].held]
            fan.add(fan.seq + 1, b"x", now)
            for member in live:
                ack = fan.ranges[member]
                assert ack.held == (ack.unacked(fan.seq - 1) == fan.window)
                assert ack.sent == fan.seq - 1 or not ack.held
            if kind == "own":  # the line came from this member: it has it without a delivery
                fan.own(members[who], fan.seq)
        else:
            upto = max(0, fan.seq - back)
            sack = (min(fan.seq, upto + 2),) if kind == "sack" and upto + 2 <= fan.seq else ()
            fan.acknowledge(members[who], upto, sack, now, rtt)
        for member in members:
            ack = fan.ranges[member]
            filed = [key for key, bucket in fan.exits.items() if member in bucket]
            if ack.held:
                assert filed == [] and member not in fan.filed
            else:
                assert filed == [fan.filed[member]]
                assert fan.seq < fan.filed[member] <= ack.acked + len(ack.sacks) + fan.window + 1
                assert ack.unacked(fan.seq) <= fan.window


def every_deadline_scan(
    fan: RoomFanout, now: float, rto_of: Callable[[Address], float]
) -> list[tuple[bytes, Address]]:
    """The model of the retransmission scan: every member's deadline worked out."""
    out: list[tuple[bytes, Address]] = []
    next_at = INF
    for address, ack in fan.ranges.items():
        top = ack.top(fan.seq)
        if ack.acked >= top:
            continue
        first, rto = fan.sent_at(ack.acked + 1), rto_of(address)
        due = ack.deadline(first, rto)
        if due <= now:
            seqs = ack.on_timeout(now, top, limits.RETRANSMIT_BURST)
            out += [(data, address) for data in fan.data(seqs)]
            due = ack.deadline(first, rto) if seqs else INF
        next_at = min(next_at, due)
    fan.scan_at = next_at
    return out


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["say", "ack", "sack", "scan"]), st.integers(0, 3), st.integers(0, 12)),
        max_size=80,
    )
)
def test_the_scan_resends_and_schedules_as_if_it_worked_out_every_deadline(
    ops: list[tuple[str, int, int]],
) -> None:
    """The scan passes over members that are neither due nor the next to be, without their RTO:
    it resends the same seqs to the same members, and schedules the next scan at the same time,
    as a scan that works out every member's deadline."""
    fans = [RoomFanout(0), RoomFanout(0)]
    members = [("127.0.0.1", 40000 + i) for i in range(4)]
    rtos = dict(zip(members, [limits.MIN_RTO, limits.MIN_RTO, 0.08, limits.INITIAL_RTO], strict=True))
    for fan in fans:
        fan.window = 4
        for member in members:
            fan.join(member, envelope=True)
    now = 1.0
    for kind, who, arg in ops:
        now += arg * 0.005
        for fan, scan in zip(fans, (RoomFanout.scan, every_deadline_scan), strict=True):
            if kind == "say":
                fan.add(fan.seq + 1, b"%d" % (fan.seq + 1), now)
            elif kind == "scan":
                got = scan(fan, now, rtos.__getitem__)
                if fan is fans[0]:
                    first = got
                else:
                    assert got == first and fans[0].scan_at == fan.scan_at
            elif who < 3:  # the last member never acknowledges
                upto = max(0, fan.seq - arg)
                sack = (upto + 2,) if kind == "sack" and upto + 2 <= fan.seq else ()
                fan.acknowledge(members[who], upto, sack, now, RttEstimator())


def test_a_room_message_to_one_other_member_is_a_plain_datagram() -> None:
    """Nothing to slice for one target: the shell lays it out as it does a reply."""
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    alice.received()
    bob.received()
    fanouts = Recorder(hub)
    alice.request(events.Say, room="hall", body="just you")
    assert fanouts.take() == []
    assert [e.body for e in of(events.Deliver, bob.received())] == ["just you"]
    assert of(events.Deliver, alice.received()) == []
