"""The hub's fast lane for a text client's plain line (``hub.textfront._fast_say``) does what
the full path does: the same datagrams out, byte for byte, to the same addresses, in the same
order, and the same counters, whatever comes in (plain lines, commands, ``bye``, empty lines,
invalid UTF-8, lines over the limit, live and queued members, envelope members, flood control)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.hub import textfront
from roomcast.hub.core import HubConfig
from roomcast.shared import envelope, events, limits
from tests.unit.hubwire import Hub, TextPeer, envelope_peer
from tests.unit.lanes import both_lanes

SPECIAL = [
    b"/live on\n", b"/live off\n", b"/join den\n", b"/join hall\n", b"/part\n", b"//slash\n",
    b"\n", b"  \n", b"", b"bye\n", b"bye", b"/me waves\n", b"/who\n", b"/nosuch\n", b"\xff\xfe\n",
    b"caf\xc3\n", b"x" * limits.MAX_BODY, b"y" * (limits.MAX_BODY - 1) + b"\n", b"z" * (limits.MAX_BODY + 1),
    "\u00e9t\u00e9 \x1b[31m\u202e\n".encode(), b"line\r\n",
]  # fmt: skip
DATAGRAMS = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=24).map(lambda line: (line + "\n").encode("utf-8", "surrogatepass")),
    st.binary(max_size=12),
)
STEPS = st.lists(
    st.tuples(st.sampled_from(["alice", "alice", "alice", "bob", "newcomer", "wait", "carol"]), DATAGRAMS),
    max_size=40,
)


def run(steps: list[tuple[str, bytes]], flood: bool) -> tuple[list[tuple[Any, bytes]], dict[str, int]]:
    """Play ``steps`` on a fresh hub: every datagram it sent, to whom, in order; its counters."""
    config = HubConfig(flood_rate=2.0, flood_burst=3.0) if flood else HubConfig(flood_rate=0)
    hub = Hub(config)
    alice, bob, newcomer = TextPeer(hub, 6001), TextPeer(hub, 6002), TextPeer(hub, 6003)
    alice.send("/join hall")
    bob.send("/join hall")
    bob.send("/live on")
    carol = envelope_peer(hub, 6004, "carol", "hall")
    sent: list[tuple[Any, bytes]] = []
    for who, data in steps:
        if who == "wait":
            hub.advance(0.3 * (1 + len(data) % 3))
        elif who == "carol":  # an envelope member says something to the room too
            carol.request(events.Say, room="hall", body=data.decode("utf-8", "replace")[:100])
            carol.received()
        else:
            {"alice": alice, "bob": bob, "newcomer": newcomer}[who].send(data)
        for address in sorted(hub.mail):
            sent += [(address, data) for data in hub.take(address)]
    return sent, dict(hub.core.counters.values)


@settings(max_examples=80, deadline=None)
@given(STEPS, st.booleans())
def test_the_text_fast_lane_sends_what_the_full_path_sends(
    steps: list[tuple[str, bytes]], flood: bool
) -> None:
    fast, full, _ = both_lanes(textfront, lambda: run(steps, flood))
    assert fast == full


def test_a_plain_line_takes_the_fast_lane_and_gets_one_reply() -> None:
    hub = Hub(HubConfig(flood_rate=0))
    alice, bob = TextPeer(hub, 6001), TextPeer(hub, 6002)
    alice.line("/join hall")
    bob.line("/join hall")
    bob.line("/live on")
    carol = envelope_peer(hub, 6004, "carol", "hall")
    alice.line("")  # collects the presence lines queued for it
    hub.take(bob.address)
    with mock.patch.object(textfront, "_command", side_effect=AssertionError("full path")):
        assert alice.line("hello") == "sent to hall"
    alice.line("/live on")
    with mock.patch.object(textfront, "_command", side_effect=AssertionError("full path")):
        assert alice.line("again") == "sent to hall\n"  # live: newline-terminated, as netcat shows it
    nick = hub.core.registry.clients[alice.address].nick
    assert hub.take(bob.address) == [f"[hall] {nick}: {body}\n".encode() for body in ("hello", "again")]
    deliver = carol.received()[0]
    assert (deliver.nick, deliver.body) == (nick, "hello")
    assert envelope.encode(deliver) == hub.core.registry.rooms["hall"].fanout.ring[deliver.seq][0]


def test_a_text_only_room_encodes_nothing_for_envelopes_and_a_later_envelope_member_gets_resends() -> None:
    """With no envelope member, no envelope is made for the ring (nobody can ask for it again);
    one that joins later is resent what it does not acknowledge, as the real encoded events."""
    hub = Hub(HubConfig(flood_rate=0))
    alice, bob = TextPeer(hub, 6001), TextPeer(hub, 6002)
    alice.line("/join hall")
    bob.line("/join hall")
    bob.line("/live on")
    alice.line("before")
    fan = hub.core.registry.rooms["hall"].fanout
    assert fan.ring[fan.seq][0] == b""
    carol = envelope_peer(hub, 6004, "carol", "hall", auto_ack=False)
    alice.line("after")
    first = [e for e in carol.received() if isinstance(e, events.Deliver)]
    assert [e.body for e in first] == ["after"]
    hub.advance(limits.MAX_RTO)
    again = [e for e in carol.received() if isinstance(e, events.Deliver)]
    assert again and all(e == first[0] for e in again)
