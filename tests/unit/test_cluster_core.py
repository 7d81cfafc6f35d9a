"""Cluster mode's sans-I/O half, without sockets or NATS: hub cores with a ClusterEngine, and a
plain in-memory sequencer standing where JetStream orders proposals (per room, first come
first served), so what the core does with what it gets back can be checked step by step.
The real thing, with nats-server, is in tests/e2e/test_cluster*.py."""

from __future__ import annotations

import contextlib
import zlib

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster import wire
from roomcast.hub.cluster.engine import ClusterEngine
from roomcast.hub.cluster.peers import Peers
from roomcast.hub.rooms import confusable_room
from roomcast.shared import events, limits
from roomcast.shared.lookalikes import looks
from roomcast.shared.names import fold
from tests.unit.hubwire import Hub, Peer, TextPeer, of


def cluster_hub(name: str, seed: int) -> Hub:
    hub = Hub(seed=seed)
    hub.core.engine = ClusterEngine(name, Peers(name, 0.0))
    deliver(hub, [m.Status(True)])
    return hub


def deliver(hub: Hub, inputs: list[m.Input]) -> None:
    engine = hub.core.engine
    assert isinstance(engine, ClusterEngine)
    engine.receive(hub.core, inputs, hub.now)
    hub._collect()


@attrs.define
class Sequencer:
    """Orders every hub's proposals per room and hands each committed event to every hub."""

    hubs: list[Hub]
    seqs: dict[str, int] = attrs.Factory(dict)
    stored: set[str] = attrs.Factory(set)
    #: The rooms bucket: each look claimed, to the room name holding it.
    looks: dict[str, str] = attrs.Factory(dict)

    def run(self, hold: set[str] | None = None) -> list[m.Output]:
        """Grant room claims and commit what the hubs proposed (all but the rooms in ``hold``,
        neither claimed nor committed); return the rest."""
        rest: list[m.Output] = []
        for _ in range(2):  # the proposals a granted claim lets go come in the second round
            for hub in self.hubs:
                engine = hub.core.engine
                assert isinstance(engine, ClusterEngine)
                for item in engine.outputs():
                    if hold and isinstance(item, m.Proposal | m.ClaimRoom) and fold(item.room) in hold:
                        rest.append(item)
                    elif isinstance(item, m.Proposal):
                        self.commit(engine.hub_name, item)
                    elif isinstance(item, m.ClaimRoom):
                        deliver(hub, [self.claim_room(item)])
                    else:
                        rest.append(item)
        return rest

    def claim_room(self, claim: m.ClaimRoom) -> m.RoomResult:
        holders = {self.looks.get(look, claim.room) for look in looks(claim.room)} - {claim.room}
        other = next((h for h in holders if fold(h) != fold(claim.room)), None)
        if other is not None:
            return m.RoomResult(claim.ref, False, confusable_room(claim.room, other), "name-confusable")
        self.looks.update(dict.fromkeys(looks(claim.room), claim.room))
        return m.RoomResult(claim.ref, True)

    def commit(self, hub_name: str, proposal: m.Proposal) -> None:
        if proposal.msg_id in self.stored:
            return
        self.stored.add(proposal.msg_id)
        seq = self.seqs[fold(proposal.room)] = self.seqs.get(fold(proposal.room), 0) + 1
        event = attrs.evolve(proposal.event, seq=seq)
        for hub in self.hubs:
            deliver(hub, [m.Committed(event, proposal.msg_id, hub_name)])


def joined(hub: Hub, port: int, nick: str, cluster: Sequencer, room: str) -> Peer:
    """A peer with a session (its nick claim granted) in ``room``."""
    peer = Peer(hub, port)
    claim = hello_claim(hub, peer, nick, cluster)
    deliver(hub, [m.NickResult(claim.ref, True)])
    welcome = of(events.Welcome, peer.received())[0]
    assert len(welcome.resume) == 16
    peer.token = welcome.token
    join = peer.request(events.Join, room=room)
    assert not of(events.Reply, peer.received()), "a join is answered once committed"
    cluster.run()
    assert of(events.Reply, peer.received())[0].id == join.id
    return peer


def alice_and_bob_in_ops() -> tuple[Hub, Hub, Sequencer, Peer, Peer]:
    """Hubs a and b in one cluster, alice on a and bob on b, both in ops (bob's mail read)."""
    one, two = cluster_hub("a", 1), cluster_hub("b", 2)
    cluster = Sequencer([one, two])
    alice = joined(one, 5000, "alice", cluster, "ops")
    bob = joined(two, 5001, "bob", cluster, "ops")
    bob.received()
    return one, two, cluster, alice, bob


def test_a_line_is_answered_with_the_seq_the_cluster_gave_it_and_reaches_the_other_hub() -> None:
    _, _, cluster, alice, bob = alice_and_bob_in_ops()
    say = alice.request(events.Say, room="ops", body="hi")
    assert not of(events.Reply, alice.received()), "no answer before the commit"
    cluster.run()
    answer = of(events.Reply, alice.received())
    assert [(a.id, a.seq) for a in answer] == [(say.id, 3)]
    lines = of(events.Deliver, bob.received())
    assert [(d.seq, d.nick, d.body) for d in lines] == [(3, "alice", "hi")]
    assert not of(events.Deliver, alice.received()), "the sender is not sent its own line"


def test_while_the_cluster_is_unavailable_requests_wait_and_are_told_so() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = joined(one, 5000, "alice", cluster, "ops")
    deliver(one, [m.Status(False, "disconnected from NATS")])
    alice.request(events.Say, room="ops", body="held")
    error = of(events.Error, alice.received())
    assert [(e.code, e.after > 0) for e in error] == [("unavailable", True)]
    assert not cluster.run(), "nothing proposed while unavailable"
    deliver(one, [m.Status(True)])
    one.advance(2.0)
    cluster.run()
    assert [r.seq for r in of(events.Reply, alice.received())] == [2]


def test_a_text_clients_reply_waits_for_its_line_to_be_committed() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    guest = TextPeer(one, 6000)
    assert guest.send("hello") == []
    cluster.run()
    replies = one.take(guest.address)
    assert len(replies) == 1 and b"sent to lobby" in replies[0], replies


def test_a_line_stored_before_a_failover_is_answered_with_its_first_seq() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = joined(one, 5000, "alice", cluster, "ops")
    alice.request(events.Say, room="ops", body="once", mid=9)
    proposal = next(o for o in cluster.run(hold={"ops"}) if isinstance(o, m.Proposal))
    assert proposal.msg_id.startswith("c.") and proposal.msg_id.endswith(".9")
    deliver(one, [m.Duplicate(proposal.msg_id, 41)])
    assert [r.seq for r in of(events.Reply, alice.received())] == [41]


def test_a_line_not_delivered_but_stored_all_the_same_is_answered_with_its_seq_when_resent() -> None:
    one, _, cluster, alice, bob = alice_and_bob_in_ops()
    first = alice.request(events.Say, room="ops", body="late", mid=4)
    proposal = next(o for o in cluster.run(hold={"ops"}) if isinstance(o, m.Proposal))
    deliver(one, [m.Failed(proposal.msg_id, "not confirmed in time")])
    [refused] = of(events.Error, alice.received())
    assert (refused.id, refused.code) == (first.id, "not-delivered")
    cluster.commit("a", proposal)  # JetStream had stored it after all: the consumer brings it
    resent = alice.request(events.Say, room="ops", body="late", mid=4)
    assert [o for o in cluster.run() if isinstance(o, m.Proposal)] == [], "not proposed again"
    assert [(r.id, r.seq) for r in of(events.Reply, alice.received())] == [(resent.id, 3)]
    assert [d.body for d in of(events.Deliver, bob.received())] == ["late"]


def test_a_resend_proposed_before_its_stored_original_came_back_is_answered_by_it() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = joined(one, 5000, "alice", cluster, "ops")
    alice.request(events.Say, room="ops", body="late", mid=4)
    proposal = next(o for o in cluster.run(hold={"ops"}) if isinstance(o, m.Proposal))
    deliver(one, [m.Failed(proposal.msg_id, "not confirmed in time")])
    alice.received()
    resent = alice.request(events.Say, room="ops", body="late", mid=4)
    again = next(o for o in cluster.run(hold={"ops"}) if isinstance(o, m.Proposal))
    assert again.msg_id == proposal.msg_id, "the same Nats-Msg-Id: JetStream stores it once"
    cluster.commit("a", proposal)  # the original, stored before the hub gave up, comes back
    assert [(r.id, r.seq) for r in of(events.Reply, alice.received())] == [(resent.id, 2)]


def hello_claim(hub: Hub, peer: Peer, nick: str, cluster: Sequencer) -> m.ClaimNick:
    """Say hello as ``nick`` (with the cookie): the claim the hub sends to the nicks bucket."""
    peer.send(events.Hello(nick=nick))
    challenge = of(events.Challenge, peer.received())[0]
    peer.send(events.Hello(nick=nick, cookie=challenge.cookie))
    [claim] = [o for o in cluster.run() if isinstance(o, m.ClaimNick)]
    return claim


@pytest.mark.parametrize(
    ("elsewhere", "code"), [(None, "name-mixed-scripts"), ("name-confusable", "name-confusable")]
)
def test_a_mixed_script_nick_only_probes_the_bucket_and_names_a_look_alike_elsewhere_first(
    elsewhere: str | None, code: str
) -> None:
    """``аlice`` (Cyrillic а) is refused anyway; like a standalone hub, the cluster names a
    look-alike in use (on any hub) before the mixed scripts, and claims nothing for it."""
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    peer = Peer(one, 5000)
    claim = hello_claim(one, peer, "\u0430lice", cluster)
    assert claim.probe, "a nick refused anyway is not claimed"
    result = m.NickResult(claim.ref, True) if elsewhere is None else m.NickResult(claim.ref, False, "x", code)
    deliver(one, [result])
    [refused] = of(events.Error, peer.received())
    assert refused.code == code, refused
    assert not of(events.Welcome, peer.received())


def test_a_plain_nick_is_claimed_not_probed() -> None:
    one = cluster_hub("a", 1)
    assert not hello_claim(one, Peer(one, 5000), "alice", Sequencer([one])).probe


def test_a_lost_hubs_members_are_announced_left_after_its_timeout_unless_back() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    watcher = joined(one, 5000, "watcher", cluster, "ops")
    snapshot = m.Snapshot("z", (("ops", ("carol", "erin")),), ("carol", "erin"), 2, timeout=5.0)
    deliver(one, [m.Seen(snapshot)])
    joined(one, 5001, "erin", cluster, "ops")  # erin came back through this hub
    watcher.received()
    one.advance(4.0)
    cluster.run()
    assert not of(events.Presence, watcher.received()), "not before the lost hub's timeout"
    one.advance(3.0)
    outputs = cluster.run()
    assert m.ReleaseNick("carol", "z") in outputs
    left = of(events.Presence, watcher.received())
    assert [(p.nick, p.what, p.detail) for p in left] == [("carol", "left", "hub lost")]


def test_who_and_rooms_count_members_on_every_hub() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = joined(one, 5000, "alice", cluster, "ops")
    deliver(one, [m.Seen(m.Snapshot("b", (("ops", ("bob",)), ("dev", ("carl",))), ("bob", "carl"), 2))])
    who = alice.ask(events.Who, room="ops")
    assert isinstance(who, events.Reply) and who.items == ("alice", "bob")
    rooms = alice.ask(events.Rooms)
    assert isinstance(rooms, events.Reply) and rooms.items == ("dev (1)", "ops (2)")


@given(st.binary(max_size=300))
def test_junk_on_a_room_subject_is_refused_never_raised(data: bytes) -> None:
    with contextlib.suppress(wire.BadClusterData):
        wire.decode_message(data, "lobby")


def test_room_events_survive_the_wire_and_a_wrong_subject_or_a_gap_is_refused() -> None:
    first = events.Deliver(room="Lobby", seq=4, nick="ann", body="hé", ts=1.5)
    second = events.Presence(room="lobby", seq=5, nick="ann", what="left", detail="quit", ts=2.0)
    batch = [(first, "h.1"), (second, "h.2")]
    assert wire.decode_message(wire.encode_message("hub1", batch), "lobby") == (batch, "hub1")
    for bad, token in (
        (wire.encode_message("hub1", batch), "other"),
        (wire.encode_message("hub1", [(first, "h.1"), (attrs.evolve(second, seq=7), "h.2")]), "lobby"),
    ):
        with pytest.raises(wire.BadClusterData):
            wire.decode_message(bad, token)


def test_rooms_map_to_shards_by_a_stable_hash_of_the_folded_name() -> None:
    names = wire.Names("rc", 4)
    assert wire.shard_of("Lobby", 4) == wire.shard_of("lobby", 4) == zlib.crc32(b"lobby") % 4
    assert names.subject("Lobby") == f"rc.room.{wire.shard_of('lobby', 4)}.lobby"
    assert {wire.shard_of(f"room{n}", 4) for n in range(50)} == {0, 1, 2, 3}
    assert wire.Names.shards_in(names.description()) == 4


def test_a_session_that_moved_to_another_hub_leaves_this_one_silently() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    watcher = joined(one, 5000, "watcher", cluster, "ops")
    joined(one, 5001, "erin", cluster, "ops")
    watcher.received()
    deliver(one, [m.Seen(m.Snapshot("b", (("ops", ("erin",)),), ("erin",), 1))])  # she resumed on b
    watcher_keeps_talking(one, watcher, seconds=31.0)  # erin's old session here times out
    assert "erin" not in one.core.registry.nicks
    outputs = cluster.run()
    assert not of(events.Presence, watcher.received()), "no 'left' while she is in the room through b"
    assert not [o for o in outputs if isinstance(o, m.ReleaseNick)], "b holds her nick now"


def watcher_keeps_talking(hub: Hub, peer: Peer, seconds: float) -> None:
    """Let time pass in steps, ``peer`` pinging (so only the silent sessions time out), the
    other hub's heartbeats still coming."""
    for _ in range(int(seconds)):
        hub.advance(1.0)
        peer.send(events.Ping())
        deliver(hub, [m.Seen(m.Snapshot("b", (("ops", ("erin",)),), ("erin",), 1))])


def test_a_session_that_quits_is_announced_and_released_even_if_another_hub_lists_it() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    watcher = joined(one, 5000, "watcher", cluster, "ops")
    erin = joined(one, 5001, "erin", cluster, "ops")
    watcher.received()
    deliver(one, [m.Seen(m.Snapshot("b", (("ops", ("erin",)),), ("erin",), 1))])  # a stale view
    erin.send(events.Bye())
    outputs = cluster.run()
    assert [(p.nick, p.what) for p in of(events.Presence, watcher.received())] == [("erin", "left")]
    assert m.ReleaseNick("erin", "a") in outputs


def test_a_heartbeat_too_large_for_nats_still_says_the_hub_is_alive() -> None:
    nicks = tuple(f"n{i}" for i in range(100_000))
    big = m.Snapshot("b", (("ops", nicks),), nicks, len(nicks))
    data = wire.encode_snapshot(big)
    assert len(data) <= wire.MAX_HEARTBEAT
    seen = wire.decode_snapshot(data)
    assert seen.partial and seen.hub == "b" and seen.clients == 100_000
    peers = Peers("a", 0.0)
    peers.seen(m.Snapshot("b", (("ops", ("bob",)),), ("bob",), 1), 1.0)
    peers.seen(seen, 2.0)
    assert peers.members("ops") == {"bob": "bob"} and "b" in peers.alive(2.5)


def test_a_line_held_by_flood_control_reports_its_hold_as_delay_but_not_the_commit_wait() -> None:
    """The answer's ``delay`` (which the client leaves out of its round-trip time) is how long
    the hub held the request, as on a standalone hub; waiting for the cluster is not in it."""
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = joined(one, 5000, "alice", cluster, "ops")
    says = [alice.request(events.Say, room="ops", body=f"l{n}") for n in range(limits.FLOOD_BURST + 3)]
    assert of(events.Error, alice.received())[0].code == "slow-down"
    one.advance(0.5)  # flood control lets the held lines through meanwhile, by itself
    cluster.run()
    answers = {a.id: a for a in of(events.Reply, alice.received())}
    assert says[0].id in answers and says[-1].id in answers
    assert not answers[says[0].id].delay, "carried out at once: the commit wait is not a delay"
    held = answers[says[-1].id].delay
    assert held is not None and 0 < held < 0.5, held
