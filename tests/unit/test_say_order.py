"""A session's lines to one room keep the order typed while one of them is held (sans-I/O).

A line answered ``not-delivered`` is held and resent under its mid; the lines typed after it
to that room wait behind it (never sent before it is answered), go in the order typed once it
is, and are given up with it, unsent and each named, if it is given up.
"""

from __future__ import annotations

from typing import Any

from roomcast.shared import events, limits
from roomcast.shared.held import in_typed_order
from roomcast.shared.link import Answered, Refused
from tests.unit.hubwire import of
from tests.unit.test_failover import ByHand, _not_delivered, said


def run_until_sent(wire: ByHand, limit: float = 120.0) -> tuple[list[events.Say], list[Any]]:
    """Run the link's timers until it sends a line (or ``limit`` s pass): the lines sent, and
    what the timers reported meanwhile."""
    start, reported = wire.now, []
    while wire.now - start < limit:
        wire.now = max(wire.now, wire.link.next_deadline() or wire.now + 1.0)
        reported += wire.link.on_timer(wire.now)
        sent = of(events.Say, wire.sent())
        if sent:
            return sent, reported
    return [], reported


def type_line(wire: ByHand, body: str, room: str = "hall") -> None:
    wire.link.submit(events.Say(id=0, room=room, body=body), wire.now)


def two_held(one: str, two: str) -> tuple[ByHand, events.Say, events.Say]:
    """Two lines said to one room, both answered not-delivered: the link, the second say, and
    the first resend (the older line's)."""
    wire, first = said(one)
    type_line(wire, two)
    [second] = of(events.Say, wire.sent())
    wire.feed(_not_delivered(first))
    wire.feed(_not_delivered(second))
    [resent], _ = run_until_sent(wire)
    return wire, second, resent


def test_lines_typed_while_a_line_is_held_wait_behind_it_and_then_go_in_the_order_typed() -> None:
    wire, first = said("one")
    wire.feed(_not_delivered(first))
    type_line(wire, "two")
    type_line(wire, "three")
    type_line(wire, "meanwhile elsewhere", room="porch")
    [porch] = of(events.Say, wire.sent())
    assert porch.body == "meanwhile elsewhere", "hall's lines wait; other rooms' go"
    assert wire.link.busy == 4
    wire.feed(events.Reply(id=porch.id, seq=2))
    [resent], _ = run_until_sent(wire)
    assert (resent.body, resent.mid) == ("one", first.mid), "only the held line goes: two waits"
    answers = wire.feed(events.Reply(id=resent.id, seq=9))
    assert [a.reply.seq for a in of(Answered, answers)] == [9]
    after = of(events.Say, wire.sent())
    assert [s.body for s in after] == ["two", "three"] and first.mid < after[0].mid < after[1].mid
    type_line(wire, "four")  # nothing is held now: sent at once
    assert [s.body for s in of(events.Say, wire.sent())] == ["four"]


def test_two_held_lines_of_one_room_are_resent_one_at_a_time_oldest_first() -> None:
    wire, second, resent_a = two_held("a", "b")
    assert resent_a.body == "a"
    start = wire.now
    while wire.now - start < 3.0:  # a's resend goes again (no answer yet), b's does not
        wire.feed(events.Pong())
        sent, _ = run_until_sent(wire, limit=1.0)
        assert {s.body for s in sent} <= {"a"}, "b is not resent while a is out"
    wire.feed(events.Reply(id=resent_a.id, seq=5))
    [resent_b], _ = run_until_sent(wire)
    assert (resent_b.body, resent_b.mid) == ("b", second.mid)
    wire.feed(events.Reply(id=resent_b.id, seq=6))
    assert wire.link.busy == 0


def test_a_held_line_given_up_gives_up_the_lines_behind_it_unsent_and_names_each() -> None:
    wire, first = said("lost cause")
    type_line(wire, "x" * 100)  # typed before the hold: in flight, not behind
    [in_flight] = of(events.Say, wire.sent())
    wire.feed(events.Reply(id=in_flight.id, seq=3))
    sends, refused = [first], []
    while not refused:
        refused = of(Refused, wire.feed(_not_delivered(sends[-1])))
        if len(sends) == 1:
            type_line(wire, "then this")
            type_line(wire, "and " + "y" * 80)
        if not refused:
            sends += run_until_sent(wire)[0]
    assert [s.body for s in sends] == ["lost cause"] * len(sends), "the lines behind were never sent"
    assert [r.request.body for r in refused] == ["lost cause", "then this", "and " + "y" * 80]
    assert "not delivered to hall" in refused[0].error.text
    assert refused[1].error.text == (
        "not sent to hall: 'then this' was typed after a line that was not delivered; "
        "say it again if you still mean it"
    )
    assert "'and yyyyyyyy" in refused[2].error.text and "...'" in refused[2].error.text
    assert all(r.error.code == "not-delivered" for r in refused) and wire.link.busy == 0
    type_line(wire, "fresh start")
    assert [s.body for s in of(events.Say, wire.sent())] == ["fresh start"]


def test_a_held_line_whose_time_ran_out_waiting_its_turn_is_given_up_not_resent() -> None:
    wire, _, resent = two_held("first", "second")
    wire.now += limits.NOT_DELIVERED_WITHIN  # the hub took its whole give-up time, and more
    wire.feed(events.Reply(id=resent.id, seq=4))
    sent, reported = run_until_sent(wire, limit=10.0)
    assert sent == [], "second's time ran out while it waited: not resent"
    [gave_up] = of(Refused, reported)
    assert gave_up.request.body == "second" and "not delivered to hall" in gave_up.error.text
    assert wire.link.busy == 0


def test_a_new_session_resends_the_held_line_before_those_typed_after_it() -> None:
    wire, first = said("held")
    type_line(wire, "later, in flight")
    [later] = of(events.Say, wire.sent())
    wire.feed(_not_delivered(first))
    type_line(wire, "behind")
    wire.go_silent()
    wire.sent()
    wire.open_session(bytes(range(16)))
    resent = of(events.Say, wire.sent())
    assert [s.body for s in resent] == ["held", "later, in flight", "behind"]
    assert [s.mid for s in resent[:2]] == [first.mid, later.mid]


def test_numbered_lines_are_put_in_the_order_typed_and_the_rest_keep_their_places() -> None:
    def line(mid: int) -> events.Say:
        return events.Say(id=0, room="hall", body=str(mid), mid=mid)

    join = events.Join(id=0, room="hall")
    unnumbered = events.Say(id=0, room="hall", body="not sent yet")
    assert in_typed_order([line(3), join, line(1), unnumbered, line(2)]) == [
        line(1),
        join,
        line(2),
        unnumbered,
        line(3),
    ]
