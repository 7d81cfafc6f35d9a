"""Cluster mode's consumer path, without nats-server: a room event read on the fast lane is the
very event the full envelope decoder gives (or is left to it), a message's stream sequence is
read from its reply subject as nats-py reads it, and what one turn of the NATS loop brings
crosses into trio in one go.  The real thing is in tests/e2e/test_cluster*.py."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgpack
import trio
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.msg import Msg

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster import wire
from roomcast.hub.cluster.bridge import NatsBridge
from roomcast.hub.cluster.options import ClusterOptions
from roomcast.shared import envelope, events, limits

NAMES = st.from_regex(r"#?[a-z0-9][a-z0-9._-]{0,40}", fullmatch=True) | st.text(max_size=40)
BODIES = st.text(max_size=300) | st.text(min_size=240, max_size=1100)
VALUES = (st.none() | st.booleans() | st.integers(-5, 2**64 - 1) | st.floats() | NAMES | st.binary(max_size=20)
          | st.lists(st.integers(0, 9), max_size=3))  # fmt: skip


def full(ev: bytes) -> events.Event | None:
    try:
        return envelope.decode(ev).event
    except envelope.RemoteProtocolError:
        return None


def check(ev: bytes) -> None:
    """The fast lane gives the full decoder's event, or leaves the envelope to it."""
    fast = wire._fast_line(ev)
    if fast is not None:
        assert fast == full(ev)
        assert type(fast.ts) is float and fast.history is False


@given(NAMES, st.integers(0, 2**63 - 1), NAMES, BODIES, st.floats(allow_nan=False) | st.integers(-9, 9),
       st.booleans())  # fmt: skip
def test_a_line_as_a_hub_writes_it_reads_the_same_on_both_lanes(
    room: str, seq: int, nick: str, body: str, ts: float, action: bool
) -> None:
    wire_map: dict[str, Any] = {
        "k": "deliver",
        "room": room,
        "seq": seq,
        "nick": nick,
        "body": body,
        "ts": ts,
    }
    if action:
        wire_map["action"] = True
    ev = envelope.HEADER + msgpack.packb(wire_map, use_bin_type=True)
    fast, slow = wire._fast_line(ev), full(ev)
    check(ev)
    if slow is not None and room:  # accepted by the full decoder: the fast lane takes it too
        assert fast == slow


@given(st.dictionaries(st.sampled_from(["k", "room", "seq", "nick", "body", "ts", "action", "history", "s", "x"])
                       | st.binary(max_size=2), VALUES, max_size=9))  # fmt: skip
def test_any_map_after_a_line_head_reads_the_same_or_is_left_to_the_full_decoder(
    wire_map: dict[Any, Any],
) -> None:
    body = msgpack.packb(wire_map, use_bin_type=True)
    head = bytes([0x80 | min(len(wire_map) + 1, 15)]) + wire._LINE_HEAD
    check(envelope.HEADER + head + body[1:])
    check(envelope.HEADER + msgpack.packb({"k": "deliver", **wire_map}, use_bin_type=True))


@given(NAMES, BODIES, st.data())
def test_a_line_with_bytes_changed_is_read_the_same_or_left_to_the_full_decoder(
    nick: str, body: str, data: st.DataObject
) -> None:
    line = {"k": "deliver", "room": "hall", "seq": 7, "nick": nick, "body": body, "ts": 1.5}
    ev = bytearray(envelope.HEADER + msgpack.packb(line, use_bin_type=True))
    for _ in range(data.draw(st.integers(1, 3))):
        ev[data.draw(st.integers(2, len(ev) - 1))] = data.draw(st.integers(0, 255))
    check(bytes(ev))
    check(bytes(ev[: data.draw(st.integers(0, len(ev)))]))


def test_lines_the_full_decoder_refuses_or_marks_are_left_to_it() -> None:
    good = {"k": "deliver", "room": "hall", "seq": 3, "nick": "ann", "body": "hi", "ts": 2.0}
    for bad in (
        {**good, "seq": -1},
        {**good, "seq": 2**63},
        {**good, "seq": True},
        {**good, "room": "no spaces allowed"},
        {**good, "nick": ""},
        {**good, "body": "x" * (limits.MAX_BODY + 1)},
        {**good, "ts": "now"},
        {**good, "action": 1},
        {**good, "history": True},
        {**good, "s": bytes(16)},
        {**good, b"extra": 1},
        {**good, "k": "presence"},
    ):
        assert wire._fast_line(envelope.HEADER + msgpack.packb(bad, use_bin_type=True)) is None
    line = events.Deliver(room="Hall", seq=3, nick="ann", body="hi", ts=2.0, action=True)
    assert wire._fast_line(envelope.encode(line)) == line


def test_a_message_of_lines_reads_back_as_written() -> None:
    lines = [
        (events.Deliver(room="hall", seq=9 + n, nick="ann", body=f"line {n}", ts=1.0), f"h.{n}")
        for n in range(5)
    ]
    data = wire.encode_message("hub1", lines)
    assert data == msgpack.packb(
        {"hub": "hub1", "evs": [envelope.encode(e) for e, _ in lines], "ids": [i for _, i in lines]},
        use_bin_type=True,
    )  # the very bytes the full encoder writes
    assert wire.decode_message(data, wire.room_token("hall")) == (lines, "hub1")


def test_the_stream_sequence_is_read_from_the_reply_subject_as_nats_py_reads_it() -> None:
    for reply in (
        "$JS.ACK.rc_rooms_0.cons.1.4242.17.1764600000000000000.0",
        "$JS.ACK.hub.ACCOUNTHASH.rc_rooms_0.cons.1.4243.18.1764600000000000000.3.rnd",
        "$JS.ACK._.ACCOUNTHASH.rc_rooms_0.cons.1.4244.19.1764600000000000000.3",
    ):
        assert wire.stream_seq(reply) == Msg.Metadata._from_reply(reply).sequence.stream


async def test_what_one_turn_of_the_nats_loop_brings_crosses_into_trio_in_one_go() -> None:
    wakes: list[trio.Event] = []
    woken = trio.Event()

    def wake() -> None:  # run by trio (run_sync_soon)
        wakes.append(woken)
        woken.set()

    bridge = NatsBridge(ClusterOptions(servers=("nats://127.0.0.1:4222",)), wake)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    bridge._loop = loop
    thread.start()
    try:
        items: list[m.Input] = [m.BadData(f"item {n}") for n in range(50)]
        crossed_meanwhile: list[int] = []

        def turn(chunk: list[m.Input]) -> None:
            for item in chunk:
                bridge._emit(item)
                crossed_meanwhile.append(len(bridge._inbox))

        for chunk in (items[:20], items[20:]):  # two turns of the NATS loop
            loop.call_soon_threadsafe(turn, chunk)
            with trio.fail_after(10):
                await woken.wait()
            assert bridge.take() == chunk  # all of the turn, in order, after one wake
            assert len(wakes) == 1
            assert crossed_meanwhile == [0] * len(chunk)  # nothing went before the turn's end
            wakes.clear()
            crossed_meanwhile.clear()
            woken = trio.Event()
        assert bridge.take() == []
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
