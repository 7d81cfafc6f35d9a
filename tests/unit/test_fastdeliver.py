"""The client's fast lane for a room line (``shared.fastdeliver``) gives exactly the event the
full decoder (``shared.envelope``) gives, or leaves the datagram to it; and it is the lane a
hub's usual ``deliver`` takes."""

from __future__ import annotations

from typing import Any
from unittest import mock

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from roomcast.hub.core import HubConfig
from roomcast.shared import envelope, events, fastwire, limits
from roomcast.shared.fastdeliver import decode_deliver
from roomcast.shared.link import Show
from tests.unit.hubwire import Wire, new_core
from tests.unit.lanes import changed

NAMES = st.from_regex(r"#?[a-z0-9][a-z0-9._-]{0,40}", fullmatch=True) | st.text(max_size=40)
SEQS = st.integers(0, 2**64 - 1)
BODIES = st.text(max_size=300) | st.text(min_size=240, max_size=1100)
TIMES = st.floats() | st.integers(-(2**63), 2**64 - 1)
FIELDS = ["k", "room", "seq", "nick", "body", "ts", "action", "history", "s", "x"]


def full(data: bytes) -> tuple[str, str] | None:
    """The full decoder's event as ``(type, repr)`` (repr: a NaN time compares equal), or
    None when it refuses the datagram."""
    try:
        event = envelope.decode(data).event
    except envelope.RemoteProtocolError:
        return None
    return type(event).__name__, repr(event)


def check(data: bytes) -> bool:
    """The fast lane gives the full decoder's event, or leaves the datagram to it; whether it
    took it."""
    fast = decode_deliver(data)
    if fast is not None:
        assert full(data) == ("Deliver", repr(fast))
        if fast.ts == fast.ts:  # not NaN
            assert fast == envelope.decode(data).event
    return fast is not None


def packed(wire: dict[Any, Any]) -> bytes:
    return envelope.HEADER + msgpack.packb(wire, use_bin_type=True)


@given(
    NAMES | st.just(""), st.integers(0, 2**63 - 1), NAMES, BODIES, st.floats(), st.booleans(), st.booleans()
)
def test_a_deliver_as_the_hub_writes_it_reads_the_same_on_both_lanes(
    room: str, seq: int, nick: str, body: str, ts: float, action: bool, history: bool
) -> None:
    data = fastwire.encode_deliver(room, seq, nick, body, ts, action, history)
    if data is not None:
        assert check(data) == (full(data) is not None)  # taken whenever the full decoder takes it


@given(st.data())
def test_a_deliver_from_the_real_encoder_reads_the_same_on_both_lanes(data: st.DataObject) -> None:
    room = data.draw(st.sampled_from(["hall", "#Rust", "Straße", "聊天", ""]))
    nick = data.draw(st.sampled_from(["ann", "Bob_2", "ＡＢＣ", "émile"]))
    event = events.Deliver(
        room=room,
        seq=data.draw(st.integers(0, 2**63 - 1)),
        nick=nick,
        body=data.draw(st.text(max_size=limits.MAX_BODY // 4)),
        ts=data.draw(st.floats(allow_nan=False)),
        action=data.draw(st.booleans()),
        history=data.draw(st.booleans()),
    )
    datagram = envelope.encode(event)
    assert decode_deliver(datagram) == event
    assert check(datagram)


@given(st.dictionaries(st.sampled_from(FIELDS) | st.binary(max_size=2),
                       st.none() | st.booleans() | SEQS | st.integers(-5, 5) | TIMES | NAMES | BODIES
                       | st.binary(max_size=20) | st.lists(st.integers(0, 9), max_size=3), max_size=9))  # fmt: skip
def test_any_map_after_a_deliver_head_reads_the_same_or_is_left_to_the_full_decoder(
    wire: dict[Any, Any],
) -> None:
    body = msgpack.packb(wire, use_bin_type=True)
    check(envelope.HEADER + bytes([0x80 | min(len(wire) + 1, 15)]) + b"\xa1k\xa7deliver" + body[1:])
    check(packed({"k": "deliver", **wire}))


@given(NAMES, st.integers(0, 2**63 - 1), NAMES, BODIES, TIMES, st.booleans(), st.booleans(), st.data())
def test_a_deliver_with_bytes_changed_is_read_the_same_or_left_to_the_full_decoder(
    room: str, seq: int, nick: str, body: str, ts: Any, action: bool, history: bool, data: st.DataObject
) -> None:
    wire = {"k": "deliver", "room": room, "seq": seq, "nick": nick, "body": body, "ts": ts}
    hubs = fastwire.encode_deliver(room, seq, nick, body, ts, action, history)  # None unless ts is a float
    for deliver in changed(hubs or packed(wire), data):
        check(deliver)


@given(st.binary(max_size=64))
def test_any_bytes_are_read_the_same_or_left_to_the_full_decoder(data: bytes) -> None:
    check(data)
    check(envelope.HEADER + bytes([0x86]) + b"\xa1k\xa7deliver" + data)


def test_delivers_the_full_decoder_refuses_are_left_to_it() -> None:
    good = {"k": "deliver", "room": "hall", "seq": 3, "nick": "ann", "body": "hi", "ts": 1.5}
    for wire in (
        {**good, "seq": -1},
        {**good, "seq": 2**63},
        {**good, "room": "no spaces allowed"},
        {**good, "nick": "bad nick"},
        {**good, "nick": ""},
        {**good, "body": "x" * (limits.MAX_BODY + 1)},
        {**good, "action": 1},
        {**good, "history": 0},
        {**good, "ts": "now"},
        {**good, "s": bytes(16)},
        {**good, "extra": [1] * 100},
        {**good, "k": "ping"},
    ):
        assert decode_deliver(packed(wire)) is None
    assert decode_deliver(packed(good)) == events.Deliver("hall", 3, "ann", "hi", 1.5)
    # Shapes the hub does not write are left to the full decoder, which takes them.
    for wire in ({**good, "ts": 7}, {"ts": 1.5, **good}, {**good, "action": False}):
        assert decode_deliver(packed(wire)) is None
        assert envelope.decode(packed(wire)).event == events.Deliver("hall", 3, "ann", "hi", wire["ts"])
    assert decode_deliver(b"x" + packed(good)[1:]) is None
    assert decode_deliver(packed(good) + bytes(limits.MAX_DATAGRAM)) is None


def test_the_link_reads_a_hubs_room_line_on_the_fast_lane() -> None:
    """A room line from a real HubCore reaches the user without the full decoder."""
    wire = Wire(new_core(HubConfig(flood_rate=0)))
    ann, bob = wire.add_link("ann", 41000), wire.add_link("bob", 41001)
    for link in (ann, bob):
        wire.submit(link, events.Join(id=0, room="hall"))
    wire.run_until(lambda: ann.busy == 0 and bob.busy == 0, limit=30.0)
    decode = envelope.decode
    full_kinds: list[str] = []

    def counted(data: bytes) -> envelope.Envelope:
        decoded = decode(data)
        full_kinds.append(decoded.event.KIND)
        return decoded

    with mock.patch.object(envelope, "decode", counted):
        wire.submit(ann, events.Say(id=0, room="hall", body="hello"))
        wire.run_until(
            lambda: (
                any(
                    isinstance(e, Show) and isinstance(e.event, events.Deliver) and e.event.body == "hello"
                    for e in wire.events_of(bob)
                )
                and ann.busy == 0
            ),
            limit=30.0,
        )
    assert "reply" in full_kinds  # the patch saw what the full decoder read
    assert "deliver" not in full_kinds
