"""The envelope's fast lanes (``shared.fastwire``) read and write exactly what the full path
(``shared.envelope``) does: the same fields, or None and the full decoder's error; the very
same bytes."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomcast.shared import envelope, events, fastwire, limits
from tests.unit.lanes import changed

TOKEN = bytes(range(16))
NAMES = st.from_regex(r"#?[a-z0-9][a-z0-9._-]{0,40}", fullmatch=True) | st.text(max_size=40)
SEQS = st.integers(0, 2**64 - 1)
BODIES = st.text(max_size=300) | st.text(min_size=240, max_size=1100)


def full_say(data: bytes) -> tuple[bytes, int, str, str, bool, int] | None:
    try:
        decoded = envelope.decode(data)
    except envelope.RemoteProtocolError:
        return None
    say = decoded.event
    if not isinstance(say, events.Say):
        return None
    return decoded.token, say.id, say.room, say.body, say.action, say.mid


def full_ack(data: bytes) -> tuple[bytes, str, int, tuple[int, ...]] | None:
    try:
        decoded = envelope.decode(data)
    except envelope.RemoteProtocolError as exc:
        return ("bad-name",) if exc.code == "bad-name" else None  # type: ignore[return-value]
    ack = decoded.event
    return (decoded.token, ack.stream, ack.upto, ack.sack) if isinstance(ack, events.Ack) else None


def packed(wire: dict[Any, Any]) -> bytes:
    return envelope.HEADER + msgpack.packb(wire, use_bin_type=True)


def check_say(data: bytes) -> None:
    """The fast lane gives the full decoder's fields, or leaves the datagram to it."""
    fast = fastwire.decode_say(data)
    if fast is not None:
        assert fast == full_say(data)


def check_ack(data: bytes) -> None:
    fast = fastwire.decode_ack(data)
    if fast is not None:
        full = full_ack(data)
        # The stream's name is not checked on the fast lane: the hub takes it only for a room
        # the member is in (so a valid name).
        assert full == ("bad-name",) or full == fast


def client_say(request_id: int, room: str, body: str, action: bool, mid: int) -> bytes:
    """A say in the shape the client writes it (its optional fields only when set)."""
    wire: dict[str, Any] = {"k": "say", "s": TOKEN, "id": request_id, "room": room, "body": body}
    if action:
        wire["action"] = True
    if mid:
        wire["mid"] = mid
    return packed(wire)


@given(st.integers(0, 2**63 - 1), NAMES, BODIES, st.booleans(), st.integers(0, 2**63 - 1))
def test_a_say_as_the_client_writes_it_reads_the_same_on_both_lanes(
    request_id: int, room: str, body: str, action: bool, mid: int
) -> None:
    data = client_say(request_id, room, body, action, mid)
    fast, full = fastwire.decode_say(data), full_say(data)
    assert fast == full  # None on both when a field is refused
    if full is not None:
        assert fast is not None


@given(st.integers(0, 2**63 - 1), NAMES, BODIES, st.booleans(), st.integers(0, 2**63 - 1))
def test_a_say_as_the_client_writes_it_is_read_in_place(
    request_id: int, room: str, body: str, action: bool, mid: int
) -> None:
    """The client's own shape takes the byte-by-byte lane (room names of up to 31 bytes),
    not only the map path: the same fields as the full decoder."""
    data = client_say(request_id, room, body, action, mid)
    plain, full = fastwire._plain_say(data), full_say(data)
    assert plain is None or (plain[:6] == full and plain[6] == msgpack.packb(body))
    if full is not None and len(room.encode()) < 32:
        assert plain is not None and plain[:6] == full


@given(
    NAMES, st.integers(1, 2**63 - 1), NAMES, BODIES, st.floats(allow_nan=False), st.booleans(), st.booleans()
)
def test_a_line_put_together_from_a_say_is_the_deliver_the_full_encoder_writes(
    room: str, seq: int, nick: str, body: str, ts: float, action: bool, plain: bool
) -> None:
    """The say fast lane's deliver (the body as it came in the say) is byte for byte the one
    the full path encodes, whichever lane read the say."""
    if plain:  # the client's order: read in place; another order: msgpack's map
        say = fastwire.read_say(packed({"k": "say", "s": TOKEN, "id": 7, "room": room, "body": body}))
    else:
        say = fastwire.read_say(packed({"k": "say", "s": TOKEN, "room": room, "id": 7, "body": body}))
    try:
        event = events.Deliver(room=room, seq=seq, nick=nick, body=body, ts=ts, action=action)
    except ValueError:
        return  # a room, nick or body the hub never delivers
    if say is None:
        return  # a say the hub refuses (e.g. a room name it does not take)
    packed_body = say[6]
    line = fastwire.line_deliver(event.room, seq, event.nick, packed_body, ts, action)
    assert line == envelope.encode_fields(event) == envelope.encode(event)
    assert len(line) <= limits.MAX_DATAGRAM


@given(st.dictionaries(st.sampled_from(["k", "s", "id", "room", "body", "action", "mid", "x"]) | st.binary(max_size=2),
                       st.none() | st.booleans() | SEQS | st.integers(-5, 5) | st.floats() | NAMES | st.binary(max_size=20)
                       | st.lists(st.integers(0, 9), max_size=3), max_size=8))  # fmt: skip
def test_any_map_after_a_say_head_reads_the_same_or_is_left_to_the_full_decoder(wire: dict[Any, Any]) -> None:
    body = msgpack.packb(wire, use_bin_type=True)
    check_say(envelope.HEADER + bytes([0x80 | min(len(wire) + 1, 15)]) + fastwire.SAY_HEAD + body[1:])
    check_say(packed({"k": "say", **wire}))


@given(st.integers(0, 2**63 - 1), NAMES, BODIES, st.data())
def test_a_say_with_bytes_changed_is_read_the_same_or_left_to_the_full_decoder(
    request_id: int, room: str, body: str, data: st.DataObject
) -> None:
    say = bytearray(packed({"k": "say", "s": TOKEN, "id": request_id, "room": room, "body": body}))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(2, len(say) - 1))
        say[at] = data.draw(st.integers(0, 255))
    check_say(bytes(say))
    check_say(bytes(say[: data.draw(st.integers(0, len(say)))]))


def test_says_the_full_decoder_refuses_are_left_to_it() -> None:
    good = {"k": "say", "s": TOKEN, "id": 3, "room": "hall", "body": "hi"}
    for wire in (
        {**good, "id": -1},
        {**good, "id": 2**63},
        {**good, "room": "no spaces allowed"},
        {**good, "body": "x" * (limits.MAX_BODY + 1)},
        {**good, "action": 1},
        {**good, "mid": -2},
        {**good, b"extra": 1},
        {**good, "k": "ping"},
        {**good, "s": "token"},
        {**good, "s": bytes(20)},
        {**good, "room": "hall", "extra": [1] * 100},
    ):
        assert fastwire.decode_say(packed(wire)) is None
    assert fastwire.decode_say(packed(good)) == (TOKEN, 3, "hall", "hi", False, 0)


@given(NAMES | st.just(""), st.integers(0, 2**63 - 1), st.lists(st.integers(0, 2**63 - 1), max_size=16))
def test_an_ack_as_the_client_writes_it_reads_the_same_on_both_lanes(
    stream: str, upto: int, sack: list[int]
) -> None:
    wire: dict[str, Any] = {"k": "ack", "s": TOKEN, "stream": stream, "upto": upto}
    if sack:
        wire["sack"] = sack
    data = packed(wire)
    full = full_ack(data)
    assert fastwire.decode_ack(data) == (TOKEN, stream, upto, tuple(sack))
    assert full in (("bad-name",), (TOKEN, stream, upto, tuple(sack)))


@given(NAMES, SEQS, st.data())
def test_an_ack_with_bytes_changed_is_read_the_same_or_left_to_the_full_decoder(
    stream: str, upto: int, data: st.DataObject
) -> None:
    for ack in changed(packed({"k": "ack", "s": TOKEN, "stream": stream, "upto": upto}), data, first=2):
        check_ack(ack)


@pytest.mark.parametrize("upto", [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1])
def test_a_plain_ack_reads_every_integer_size_without_msgpack(
    upto: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = envelope.encode(events.Ack(stream="hall", upto=upto), token=TOKEN)
    with monkeypatch.context() as patched:
        patched.setattr(fastwire, "_unpackb", None)  # the plain lane reads it byte by byte
        assert fastwire.decode_ack(data) == (TOKEN, "hall", upto, ())
    too_big = packed({"k": "ack", "s": TOKEN, "stream": "hall", "upto": 2**63})
    assert fastwire.decode_ack(too_big) is None


@given(NAMES.filter(bool), st.integers(0, 2**63 - 1), NAMES.filter(bool), BODIES, st.floats(allow_nan=False),
       st.booleans(), st.booleans())  # fmt: skip
def test_a_deliver_is_written_as_the_full_encoder_writes_it(
    room: str, seq: int, nick: str, body: str, ts: float, action: bool, history: bool
) -> None:
    fast = fastwire.encode_deliver(room, seq, nick, body, ts, action, history)
    try:
        event = events.Deliver(
            room=room, seq=seq, nick=nick, body=body, ts=ts, action=action, history=history
        )
    except ValueError:
        return  # not a Deliver the hub can make
    try:
        full = envelope.encode_fields(event)
    except envelope.LocalProtocolError:
        assert fast is None
        return
    assert fast in (None, full)
    assert envelope.encode(event) == full
    if len(full) < limits.MAX_DATAGRAM // 2:
        assert fast == full


@given(st.integers(0, 2**63 - 1), st.text(max_size=200), st.integers(0, 2**63 - 1))
def test_a_reply_is_written_as_the_full_encoder_writes_it(request_id: int, text: str, seq: int) -> None:
    reply = events.Reply(id=request_id, text=text, seq=seq)
    full = envelope.encode_fields(reply)
    assert envelope.encode(reply) == full
    fast = fastwire.encode_reply(request_id, text, seq)
    assert fast in (None, full)
    if text and seq:
        assert fast == full


@given(st.binary(max_size=9))
def test_every_first_byte_of_upto_reads_the_same_or_is_left_to_the_full_decoder(tail: bytes) -> None:
    head = packed({"k": "ack", "s": TOKEN, "stream": "hall", "upto": 0})[:-1]
    for first in range(256):
        check_ack(head + bytes((first,)) + tail)


@given(
    NAMES, st.integers(0, 2**63 - 1), NAMES, st.text(max_size=300), st.floats(allow_nan=False), st.booleans()
)
def test_a_deliver_of_checked_fields_is_the_deliver_the_validators_make(
    room: str, seq: int, nick: str, body: str, ts: float, action: bool
) -> None:
    try:
        event = events.Deliver(room=room, seq=seq, nick=nick, body=body, ts=ts, action=action)
    except ValueError:
        return  # fields that never reach the say path
    checked = events.checked_deliver(event.room, seq, event.nick, body, ts, action)
    assert checked == event
    assert envelope.encode(checked) == envelope.encode_fields(event)
