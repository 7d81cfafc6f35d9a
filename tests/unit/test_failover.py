"""A client given a list of hubs (``roomcast --hub A,B``), in memory: the sans-I/O HubLink
decides when to move on and where, rejoins, catches up and resends; real HubCores answer.

Two standalone cores stand for two hubs; when both come from the same seed they share a hub
id, as the hubs of one cluster share one history, so the catch-up from the last seq shows.
"""

from __future__ import annotations

import itertools
from typing import Any

from roomcast.client import render
from roomcast.client.chat import ChatSession
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
from tests.unit.hubwire import Wire, new_core, of

HUBS = ("127.0.0.1:9999", "127.0.0.1:10000")


def connected(wire: Wire, link: HubLink) -> list[Connected]:
    return [e for e in wire.events_of(link) if isinstance(e, Connected)]


def lines(wire: Wire, link: HubLink, room: str = "hall") -> list[str]:
    return [
        e.event.body
        for e in wire.events_of(link)
        if isinstance(e, Show) and isinstance(e.event, events.Deliver) and e.event.room == room
    ]


def arrived(wire: Wire, kind: type[object], hub: int) -> list[object]:
    return [event for index, event in wire.arrivals if index == hub and isinstance(event, kind)]


def joined(wire: Wire, link: HubLink) -> bool:
    return link.state is LinkState.OPEN and link.busy == 0 and "hall" in link.inbox


def two_hubs(seed_a: int = 1, seed_b: int = 2) -> Wire:
    config = HubConfig(flood_rate=0)
    return Wire(new_core(config, seed=seed_a), None, new_core(config, seed=seed_b))


def test_first_hub_not_answering_the_link_uses_the_second() -> None:
    wire = Wire(None, None, new_core())
    link = wire.add_link("alice", 41001, hubs=HUBS)
    wire.run_until(lambda: bool(connected(wire, link)), limit=limits.HUB_ANSWER_TIMEOUT + 2.0)
    assert link.hub == 1
    assert connected(wire, link) == [Connected("alice", False, HUBS[1])]
    assert arrived(wire, events.Hello, 0), "it tried the first hub first"


def test_hub_killed_the_link_is_on_the_next_hub_within_10_s_in_its_rooms_and_keeps_chatting() -> None:
    wire = two_hubs()
    alice = wire.add_link("alice", 41001, hubs=HUBS)
    bob = wire.add_link("bob", 41002, route=(1,))  # on the second hub only
    for link in (alice, bob):
        wire.submit(link, events.Join(id=0, room="hall"))
    wire.run_until(lambda: joined(wire, alice) and joined(wire, bob), limit=10.0)
    wire.run_for(3.0)  # idle a while: the link must notice a silent hub by itself

    wire.cores[0], killed_at = None, wire.now  # kill -9 of the first hub
    wire.submit(alice, events.Say(id=0, room="hall", body="said while the hub was dead"))
    wire.run_until(lambda: len(connected(wire, alice)) == 2, limit=10.0)
    assert wire.now - killed_at < 10.0
    assert alice.hub == 1 and alice.nick == "alice"
    assert connected(wire, alice)[-1] == Connected("alice", True, HUBS[1])
    moved = [e for e in wire.events_of(alice) if isinstance(e, Reconnecting)]
    assert len(moved) == 1 and moved[0].hub == HUBS[1] and HUBS[0] in moved[0].reason

    wire.run_until(lambda: lines(wire, bob) == ["said while the hub was dead"], limit=10.0)
    core_b = wire.cores[1]
    assert core_b is not None
    assert {c.nick for c in core_b.registry.rooms["hall"].members.values()} == {"alice", "bob"}
    wire.submit(alice, events.Say(id=0, room="hall", body="after"))
    wire.submit(bob, events.Say(id=0, room="hall", body="hello alice"))
    wire.run_until(lambda: "after" in lines(wire, bob) and "hello alice" in lines(wire, alice), limit=10.0)
    assert lines(wire, bob) == ["said while the hub was dead", "after"]


def test_a_hub_that_forgets_the_session_sends_the_link_to_the_next_hub() -> None:
    wire = two_hubs()
    alice = wire.add_link("alice", 41001, hubs=HUBS)
    wire.submit(alice, events.Join(id=0, room="hall"))
    wire.run_until(lambda: joined(wire, alice), limit=10.0)
    wire.cores[0] = new_core(HubConfig(flood_rate=0), seed=3, now=wire.now)  # restarted: no sessions
    wire.submit(alice, events.Say(id=0, room="hall", body="hi"))
    wire.run_until(lambda: len(connected(wire, alice)) == 2 and alice.busy == 0, limit=10.0)
    assert alice.hub == 1
    reasons = [e.reason for e in wire.events_of(alice) if isinstance(e, Reconnecting)]
    assert reasons == ["the hub restarted or forgot this session"]
    assert [s.body for s in arrived(wire, events.Say, 1) if isinstance(s, events.Say)] == ["hi"]


def test_a_line_resent_to_the_next_hub_keeps_its_message_id() -> None:
    wire = two_hubs()
    alice = wire.add_link("alice", 41001, hubs=HUBS)
    wire.submit(alice, events.Join(id=0, room="hall"))
    wire.submit(alice, events.Say(id=0, room="hall", body="before"))
    wire.run_until(lambda: joined(wire, alice), limit=10.0)
    # The first hub carries the line out, but its confirmation is lost with it.
    wire.block = lambda address, data, to_hub: not to_hub
    wire.submit(alice, events.Say(id=0, room="hall", body="once"))
    wire.run_until(lambda: len(arrived(wire, events.Say, 0)) == 2, limit=5.0)
    wire.cores[0] = None
    wire.block = None
    wire.run_until(lambda: len(connected(wire, alice)) == 2 and alice.busy == 0, limit=15.0)
    wire.submit(alice, events.Say(id=0, room="hall", body="next"))
    wire.run_until(lambda: alice.busy == 0, limit=5.0)
    says = [s for hub in (0, 1) for s in arrived(wire, events.Say, hub) if isinstance(s, events.Say)]
    mids = {say.body: {s.mid for s in says if s.body == say.body} for say in says}
    assert mids == {"before": {1}, "once": {2}, "next": {3}}
    on_b = [s for s in arrived(wire, events.Say, 1) if isinstance(s, events.Say)]
    assert [s.body for s in on_b][:1] == ["once"], "resent to the next hub, with the same mid"


def test_message_ids_keep_counting_across_sessions_and_are_never_reused() -> None:
    wire = Wire(new_core(HubConfig(flood_rate=0)))
    alice = wire.add_link("alice", 41001)
    wire.submit(alice, events.Join(id=0, room="hall"))
    for n in range(3):
        wire.submit(alice, events.Say(id=0, room="hall", body=f"{n}"))
    wire.run_until(lambda: joined(wire, alice), limit=10.0)
    wire.core = new_core(HubConfig(flood_rate=0), seed=4, now=wire.now)  # a restart: a new session
    wire.submit(alice, events.Say(id=0, room="hall", body="3"))
    wire.run_until(lambda: len(connected(wire, alice)) == 2 and alice.busy == 0, limit=15.0)
    firsts = {s.body: s.mid for _, s in wire.arrivals if isinstance(s, events.Say)}
    assert firsts == {"0": 1, "1": 2, "2": 3, "3": 4}


def test_the_resume_secret_of_the_welcome_goes_in_the_hello_to_the_next_hub() -> None:
    link = HubLink("alice", 0.0, hubs=HUBS)
    first = envelope.decode(link.datagrams_to_send()[0]).event
    assert isinstance(first, events.Hello) and first.resume == b""
    link.receive_datagram(envelope.encode(events.Challenge(cookie=b"c")), 0.1)
    welcome = events.Welcome(token=bytes(16), hub=b"h", nick="alice", idle=30.0, resume=b"s" * 32)
    assert link.receive_datagram(envelope.encode(welcome), 0.2) == [Connected("alice", False, HUBS[0])]
    link.datagrams_to_send()
    deadline = link.next_deadline()
    assert deadline is not None
    while link.hub == 0:  # nothing more from the hub: it went silent
        assert deadline <= 0.2 + limits.FAILOVER_SILENCE_TIMEOUT
        link.on_timer(deadline)
        deadline = link.next_deadline() or 0.0
    hello = envelope.decode(link.datagrams_to_send()[-1]).event
    assert isinstance(hello, events.Hello) and hello.resume == b"s" * 32 and hello.nick == "alice"
    assert len(envelope.encode(hello)) >= limits.HELLO_PAD_TO


def test_catch_up_on_the_next_hub_starts_from_the_last_seq_when_it_keeps_the_same_history() -> None:
    wire = two_hubs(seed_a=1, seed_b=1)  # one hub id: one history, as in a cluster
    alice = wire.add_link("alice", 41001, hubs=HUBS)
    carol = wire.add_link("carol", 41002, route=(0,))
    bob = wire.add_link("bob", 41003, route=(1,))
    for link in (alice, carol, bob):
        wire.submit(link, events.Join(id=0, room="hall"))
    wire.run_until(lambda: all(joined(wire, link) for link in (alice, carol, bob)), limit=10.0)
    for n in range(3):
        wire.submit(carol, events.Say(id=0, room="hall", body=f"carol {n}"))
    wire.run_until(lambda: len(lines(wire, alice)) == 3, limit=10.0)
    last_seq = alice.inbox.rooms["hall"].last_seq
    for n in range(6):
        wire.submit(bob, events.Say(id=0, room="hall", body=f"bob {n}"))
    wire.run_until(lambda: bob.busy == 0, limit=10.0)
    wire.cores[0] = None
    wire.run_until(lambda: len(connected(wire, alice)) == 2 and alice.busy == 0, limit=15.0)
    asked = [h for h in arrived(wire, events.History, 1) if isinstance(h, events.History)]
    assert [(h.room, h.since) for h in asked] == [("hall", last_seq)]
    old = [e.event.body for e in wire.events_of(alice) if isinstance(e, Show) and e.event.history]
    assert old and all(body.startswith("bob") for body in old)


def test_a_full_hub_at_hello_sends_the_link_to_the_next_one() -> None:
    full = new_core(HubConfig(max_clients=0))
    wire = Wire(full, None, new_core())
    link = wire.add_link("alice", 41001, hubs=HUBS)
    wire.run_until(lambda: bool(connected(wire, link)), limit=3.0)
    assert link.hub == 1 and link.state is LinkState.OPEN


def test_every_hub_full_is_fatal_with_the_hubs_own_reason() -> None:
    wire = Wire(new_core(HubConfig(max_clients=0)), None, new_core(HubConfig(max_clients=0), seed=2))
    link = wire.add_link("alice", 41001, hubs=HUBS)
    wire.run_until(lambda: link.state is LinkState.CLOSED, limit=5.0)
    assert [e.error.code for e in wire.events_of(link) if hasattr(e, "error")] == ["hub-full"]


def test_no_hub_answering_at_start_is_unreachable_after_trying_each_in_turn() -> None:
    hubs = (*HUBS, "127.0.0.1:10001")
    wire = Wire(None, None, None, None)
    link = wire.add_link("alice", 41001, hubs=hubs)
    wire.run_until(lambda: link.state is LinkState.CLOSED, limit=limits.CONNECT_TIMEOUT + 3 * 2.0)
    tried = [hub for hub, event in wire.arrivals if isinstance(event, events.Hello)]
    assert sorted(set(tried)) == [0, 1, 2] and tried == sorted(tried), "round robin, in list order"
    [gone] = [e for e in wire.events_of(link) if isinstance(e, Unreachable)]
    assert "any of the hubs" in gone.reason and hubs[2] in gone.reason


def test_all_hubs_lost_the_link_goes_round_robin_then_gives_up_in_bounded_time() -> None:
    wire = two_hubs()
    link = wire.add_link("alice", 41001, hubs=HUBS, give_up_after=20.0)
    wire.run_until(lambda: link.state is LinkState.OPEN, limit=5.0)
    wire.cores = [None, None]
    lost_at, before = wire.now, len(wire.arrivals)
    wire.run_until(lambda: link.state is LinkState.CLOSED, limit=20.0 + limits.FAILOVER_SILENCE_TIMEOUT + 1)
    assert wire.now - lost_at <= 20.0 + limits.FAILOVER_SILENCE_TIMEOUT + 1
    tried = [hub for hub, event in wire.arrivals[before:] if isinstance(event, events.Hello)]
    switches = sum(1 for a, b in itertools.pairwise(tried) if a != b)
    assert switches >= 5, f"the link kept to one hub: {tried}"
    assert len(tried) < 60, "hellos are paced"
    assert [e for e in wire.events_of(link) if isinstance(e, Unreachable)]


def test_a_single_hub_link_waits_for_its_hub_and_keeps_the_calm_timers() -> None:
    wire = Wire(new_core())
    link = wire.add_link("alice", 41001)
    wire.run_until(lambda: link.state is LinkState.OPEN, limit=5.0)
    wire.core = None
    lost_at = wire.now
    wire.run_until(lambda: link.state is LinkState.CONNECTING, limit=limits.HUB_SILENCE_TIMEOUT + 1)
    assert wire.now - lost_at >= limits.HUB_SILENCE_TIMEOUT - limits.PING_INTERVAL
    assert link.hub == 0
    [moved] = [e for e in wire.events_of(link) if isinstance(e, Reconnecting)]
    assert moved.hub == "" and moved.reason.startswith("no answer from the hub")
    wire.core = new_core(seed=9, now=wire.now)
    wire.run_until(lambda: link.state is LinkState.OPEN, limit=5.0)
    assert connected(wire, link)[-1] == Connected("alice", True)
    assert not [e for e in wire.events_of(link) if isinstance(e, Answered)]


class ByHand:
    """A HubLink fed envelopes by hand, for answers no standalone core gives (a cluster's)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.link = HubLink("alice", self.now, hubs=HUBS)

    def feed(self, event: events.Event) -> list[Any]:
        return self.link.receive_datagram(envelope.encode(event), self.now)

    def sent(self) -> list[Any]:
        return [envelope.decode(data).event for data in self.link.datagrams_to_send()]

    def open_session(self, token: bytes) -> None:
        self.feed(events.Challenge(cookie=b"c"))
        self.feed(events.Welcome(token=token, hub=b"one cluster", nick="alice", idle=30.0))

    def go_silent(self) -> None:
        hub = self.link.hub
        while self.link.hub == hub:
            self.now = self.link.next_deadline() or self.now
            self.link.on_timer(self.now)


def test_a_resent_line_the_cluster_had_carried_out_is_shown_once_with_the_catch_up() -> None:
    wire = ByHand()
    wire.open_session(bytes(16))
    wire.link.submit(events.Join(id=0, room="hall"), wire.now)
    [join] = of(events.Join, wire.sent())
    wire.feed(events.Reply(id=join.id, seq=5))
    wire.link.submit(events.Say(id=0, room="hall", body="once"), wire.now)
    [say] = of(events.Say, wire.sent())
    wire.go_silent()  # hub A carried the line out as seq 6, and died before answering
    wire.sent()
    wire.open_session(bytes(range(16)))
    out = wire.sent()
    [rejoin], [resent] = of(events.Join, out), of(events.Say, out)
    assert resent.mid == say.mid and resent.id > rejoin.id
    wire.feed(events.Reply(id=rejoin.id, seq=12))
    assert [(h.since, h.until) for h in of(events.History, wire.sent())] == [(5, 11)]
    answers = wire.feed(events.Reply(id=resent.id, seq=6))  # the cluster knew the mid: seq 6
    assert [a.caught_up for a in of(Answered, answers)] == [True]

    shown: list[str] = []
    chat = ChatSession(
        submit=lambda request: None, show=lambda f: shown.append(render.plain(f)), nick="alice"
    )
    chat.on_event(of(Answered, answers)[0])
    assert shown == [], "shown once, by the catch-up, not again as newly said"
    chat.on_event(Answered(say, events.Reply(id=say.id, seq=13)))
    assert len(shown) == 1 and "<alice> once" in shown[0]


def test_a_line_answered_unavailable_is_held_and_resent_not_dropped() -> None:
    wire = ByHand()
    wire.open_session(bytes(16))
    wire.link.submit(events.Say(id=0, room="hall", body="during the election"), wire.now)
    [say] = of(events.Say, wire.sent())
    refusal = events.Error(code="unavailable", text="the cluster is unavailable", id=say.id, after=1.0)
    assert wire.feed(refusal) == [], "not a refusal: the line waits"
    assert wire.link.busy == 1
    resent: list[events.Say] = []
    while not resent:
        wire.now = wire.link.next_deadline() or wire.now
        wire.link.on_timer(wire.now)
        resent = of(events.Say, wire.sent())
    assert wire.now >= 1.0 and resent[0].id == say.id and resent[0].mid == say.mid
    answers = wire.feed(events.Reply(id=say.id, seq=7))
    assert [a.reply.seq for a in of(Answered, answers)] == [7] and wire.link.busy == 0


def test_a_hub_that_says_bye_sends_the_link_to_the_next_hub_at_once() -> None:
    wire = ByHand()
    wire.open_session(bytes(16))
    wire.sent()
    moved = wire.feed(events.Bye(reason="the hub is restarting"))
    assert moved == [Reconnecting(f"hub {HUBS[0]} said: the hub is restarting", HUBS[1])]
    assert wire.link.hub == 1
    [hello] = of(events.Hello, wire.sent())
    assert hello.cookie == b"", "a new hub: a new cookie"


def _until_sent(wire: ByHand, kind: type[Any], limit: float = 120.0) -> list[Any]:
    """Run the link's timers until it sends a ``kind`` (or ``limit`` s pass): what it sent."""
    start = wire.now
    while wire.now - start < limit:
        wire.now = wire.link.next_deadline() or wire.now + 1.0
        wire.link.on_timer(wire.now)
        sent = of(kind, wire.sent())
        if sent:
            return sent
    return []


def said(body: str) -> tuple[ByHand, events.Say]:
    """A link with a session that has just sent ``body`` to hall: it and the say it sent."""
    wire = ByHand()
    wire.open_session(bytes(16))
    wire.link.submit(events.Say(id=0, room="hall", body=body), wire.now)
    [say] = of(events.Say, wire.sent())
    return wire, say


def _not_delivered(say: events.Say) -> events.Error:
    return events.Error(code="not-delivered", text="the cluster did not confirm it in time", id=say.id)


def test_a_line_answered_not_delivered_is_resent_under_the_same_mid_and_answered_once() -> None:
    wire, say = said("maybe stored")
    assert wire.feed(_not_delivered(say)) == [], "not a refusal yet: the line is held"
    assert wire.link.busy == 1
    refused_at = wire.now
    [resent] = _until_sent(wire, events.Say)
    assert wire.now - refused_at >= limits.NOT_DELIVERED_PAUSE
    assert resent.mid == say.mid and resent.body == say.body
    assert resent.id != say.id, "a new request id: the hub keeps its answer to the old one"
    answers = wire.feed(events.Reply(id=resent.id, seq=9))  # stored the first time: its seq
    assert [a.reply.seq for a in of(Answered, answers)] == [9] and wire.link.busy == 0
    assert _until_sent(wire, events.Say, limit=30.0) == [], "nothing more is resent"


def test_a_line_never_confirmed_is_given_up_after_a_bounded_number_of_resends_and_the_user_told() -> None:
    wire, say = said("lost cause")
    start, sends, refused = wire.now, [say], []
    while not refused:
        refused = of(Refused, wire.feed(_not_delivered(sends[-1])))
        if not refused:
            sends += _until_sent(wire, events.Say)
        assert len(sends) <= limits.NOT_DELIVERED_TRIES + 1, "resends are bounded in count"
    assert len(sends) == limits.NOT_DELIVERED_TRIES + 1
    assert {s.mid for s in sends} == {say.mid}
    assert wire.now - start < limits.NOT_DELIVERED_WITHIN
    [gave_up] = refused
    assert gave_up.error.code == "not-delivered" and gave_up.request.body == "lost cause"
    assert "not delivered to hall" in gave_up.error.text and "say it again" in gave_up.error.text
    assert wire.link.busy == 0 and _until_sent(wire, events.Say, limit=30.0) == []


def test_resends_of_a_line_not_delivered_stop_once_their_time_is_up() -> None:
    wire, say = said("slow cluster")
    wire.feed(_not_delivered(say))
    [resent] = _until_sent(wire, events.Say)
    wire.now += limits.NOT_DELIVERED_WITHIN  # each try took the hub its full give-up time
    for _ in range(3):
        wire.feed(events.Pong())
        wire.link.on_timer(wire.now)
    refused = of(Refused, wire.feed(_not_delivered(resent)))
    assert len(refused) == 1 and wire.link.busy == 0, "given up although tries were left"


def test_a_line_held_after_not_delivered_goes_to_the_next_hub_when_this_one_is_lost() -> None:
    wire, say = said("moving")
    wire.feed(_not_delivered(say))
    wire.go_silent()
    wire.sent()
    wire.open_session(bytes(range(16)))
    [resent] = of(events.Say, wire.sent())
    assert resent.mid == say.mid and wire.link.busy == 1
