"""Cluster mode: a new room's name is claimed cluster-wide before its first event (sans-I/O).

The rooms bucket is :class:`tests.unit.test_cluster_core.Sequencer`'s ``looks``; the NATS side
that claims in JetStream KV is tested with a real nats-server in ``tests/e2e``.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster import wire
from roomcast.hub.rooms import Refused, Registry, Room
from roomcast.shared import events
from roomcast.shared.names import BadName, check_room, fold
from tests.unit.hubwire import Hub, Peer, TextPeer, of
from tests.unit.test_cluster_core import Sequencer, cluster_hub, deliver, hello_claim


def session(hub: Hub, port: int, nick: str, cluster: Sequencer) -> Peer:
    peer = Peer(hub, port)
    claim = hello_claim(hub, peer, nick, cluster)
    deliver(hub, [m.NickResult(claim.ref, True)])
    peer.token = of(events.Welcome, peer.received())[0].token
    return peer


def outputs(hub: Hub) -> list[m.Output]:
    engine = hub.core.engine
    return engine.outputs()  # type: ignore[attr-defined, no-any-return]


def standalone_refusal(existing: str, name: str) -> str:
    registry = Registry()
    registry.add_room(Room(existing))
    try:
        registry.check_new_room(name)
    except Refused as refused:
        return refused.text
    raise AssertionError(f"{name} is not refused next to {existing}")


def test_a_new_rooms_join_waits_for_its_name_claim_and_a_line_waits_behind_it_in_order() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = session(one, 5000, "alice", cluster)
    join = alice.request(events.Join, room="lake")
    say = alice.request(events.Say, room="lake", body="first line")
    [claim] = out = outputs(one)
    assert isinstance(claim, m.ClaimRoom) and claim.room == "lake", f"no event before the claim: {out}"
    deliver(one, [cluster.claim_room(claim)])
    proposals = [o for o in outputs(one) if isinstance(o, m.Proposal)]
    assert [type(p.event).__name__ for p in proposals] == ["Presence", "Deliver"], "in the order made"
    for proposal in proposals:
        cluster.commit("a", proposal)
    assert [(r.id, r.seq) for r in of(events.Reply, alice.received())] == [(join.id, 1), (say.id, 2)]


def test_of_two_look_alike_rooms_made_on_two_hubs_at_once_one_is_made_and_the_other_refused() -> None:
    """``lake`` on hub a and ``Iake`` (capital I) on hub b, neither hub having seen the other's
    join: the claims decide.  The loser is refused as a standalone hub refuses it, is in no
    room, and its hub keeps no trace of the refused room (its look-alike can be joined)."""
    one, two = cluster_hub("a", 1), cluster_hub("b", 2)
    cluster = Sequencer([one, two])
    alice, bob = session(one, 5000, "alice", cluster), session(two, 5001, "bob", cluster)
    alice.request(events.Join, room="lake")
    refused = bob.request(events.Join, room="Iake")
    bob.request(events.Say, room="Iake", body="said into a room that is never made")
    cluster.run()
    assert of(events.Reply, alice.received())
    answers = of(events.Error, bob.received())
    assert (answers[0].id, answers[0].code) == (refused.id, "name-confusable"), answers
    assert answers[0].text == standalone_refusal("lake", "Iake"), answers[0]
    assert len(answers) == 2, "the line behind the refused join is refused too"
    assert fold("Iake") not in two.core.registry.rooms and not two.members("lake")
    assert cluster.seqs == {"lake": 1}, "nothing of the refused room was published"
    again = bob.request(events.Join, room="Iake")  # now the local check refuses it, with the same words
    assert of(events.Error, bob.received())[0].text == answers[0].text, again
    bob.request(events.Join, room="lake")
    cluster.run()
    assert of(events.Reply, bob.received()) and two.members("lake") == {"bob"}


def test_a_join_to_a_room_the_cluster_has_events_of_claims_nothing() -> None:
    one, two = cluster_hub("a", 1), cluster_hub("b", 2)
    cluster = Sequencer([one, two])
    alice, bob = session(one, 5000, "alice", cluster), session(two, 5001, "bob", cluster)
    alice.request(events.Join, room="lake")
    cluster.run()
    bob.request(events.Join, room="LAKE")
    assert [type(o) for o in outputs(two)] == [m.Proposal]
    del alice


def test_a_claim_the_cluster_cannot_check_is_refused_unavailable_and_leaves_no_room() -> None:
    one = cluster_hub("a", 1)
    cluster = Sequencer([one])
    alice = session(one, 5000, "alice", cluster)
    alice.request(events.Join, room="lake")
    [claim] = outputs(one)
    assert isinstance(claim, m.ClaimRoom)
    deliver(one, [m.RoomResult(claim.ref, False, "the cluster cannot check room names now", "unavailable")])
    [error] = of(events.Error, alice.received())
    assert error.code == "unavailable" and fold("lake") not in one.core.registry.rooms
    alice.request(events.Join, room="lake")  # tried again: claimed then
    cluster.run()
    assert of(events.Reply, alice.received()) and one.members("lake") == {"alice"}


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_two_room_names_share_a_subject_only_when_they_are_one_room(a: str, b: str) -> None:
    """A room's subject comes from its folded name, one-to-one: two names that fold apart
    never share a subject (nor a stream message), and names that fold together are one room."""
    try:
        shown_a, shown_b = check_room(a), check_room(b)
    except BadName:
        return
    names = wire.Names("rc", 3)
    assert (names.subject(shown_a) == names.subject(shown_b)) == (fold(shown_a) == fold(shown_b))


def test_a_text_client_refused_a_look_alike_room_gets_one_error_line_and_stays_where_it_was() -> None:
    one, two = cluster_hub("a", 1), cluster_hub("b", 2)
    cluster = Sequencer([one, two])
    alice = session(one, 5000, "alice", cluster)
    guest = TextPeer(two, 6000)
    guest.send("hello")
    cluster.run()
    two.take(guest.address)
    alice.request(events.Join, room="lake")
    assert guest.send("/join Iake") == [], "the one reply waits for the claim"
    cluster.run()
    [reply] = two.take(guest.address)
    assert reply.decode().startswith("error: " + standalone_refusal("lake", "Iake")), reply
    guest.send("still here")
    cluster.run()
    [said] = two.take(guest.address)
    assert b"sent to lobby" in said, said
