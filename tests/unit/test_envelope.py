"""The binary envelope: round trips for every kind, and every way a datagram is refused."""

from __future__ import annotations

import typing
from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomcast.shared import envelope, events, limits
from roomcast.shared.envelope import (
    Envelope,
    LocalProtocolError,
    RemoteProtocolError,
    decode,
    encode,
    is_envelope,
)
from tests.unit.namegen import NICKS, ROOMS

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies built from valid field values ------------------------------------------------


def _fit_utf8(text: str, limit: int) -> str:
    return text.encode()[:limit].decode("utf-8", "ignore")


UNICODE = st.text(alphabet=st.characters(codec="utf-8"))
BODIES = st.one_of(
    UNICODE.map(lambda s: _fit_utf8(s, limits.MAX_BODY)),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=limits.MAX_BODY, max_size=limits.MAX_BODY).map(
        lambda s: _fit_utf8(s, limits.MAX_BODY)
    ),
    st.just("x" * limits.MAX_BODY),
    st.just("€" * (limits.MAX_BODY // 3)),
)
#: Free text fields with no limit of their own (reasons, codes, reply lines): kept short so the
#: whole envelope fits one datagram.
SHORT_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=50)
UINTS = st.integers(min_value=0, max_value=2**63 - 1)
TOKENS = st.binary(min_size=limits.TOKEN_BYTES, max_size=limits.TOKEN_BYTES)
SMALL_BINARY = st.binary(max_size=limits.MAX_BIN)
TIMES = st.floats(allow_nan=False)

#: Strategy for each field, by (kind, field) first, then by field name.
_BY_KIND_FIELD: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("deliver", "room"): st.one_of(st.just(""), ROOMS),
    ("ack", "stream"): st.one_of(st.just(""), ROOMS),
    ("welcome", "token"): TOKENS,
    ("topic", "text"): BODIES,
}
_BY_FIELD: dict[str, st.SearchStrategy[Any]] = {
    "nick": NICKS,
    "to": NICKS,
    "room": ROOMS,
    "body": BODIES,
    "detail": BODIES,
    "id": UINTS,
    "seq": UINTS,
    "upto": UINTS,
    "count": UINTS,
    "since": UINTS,
    "ts": TIMES,
    "cookie": SMALL_BINARY,
    "pad": SMALL_BINARY,
    "hub": SMALL_BINARY,
    "sack": st.lists(UINTS, max_size=limits.MAX_SACK).map(tuple),
    "items": st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=20), max_size=8).map(tuple),
    "action": st.booleans(),
    "set": st.booleans(),
    "text": SHORT_TEXT,
    "reason": SHORT_TEXT,
    "what": SHORT_TEXT,
    "code": SHORT_TEXT,
}
#: Fields without a rule of their own (added later, say) get any valid value of their type.
_BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    int: UINTS,
    float: TIMES,
    bool: st.booleans(),
    str: SHORT_TEXT,
    bytes: SMALL_BINARY,
}


def _field_strategy(cls: type[Any], field: attrs.Attribute[Any]) -> st.SearchStrategy[Any]:
    if (cls.KIND, field.name) in _BY_KIND_FIELD:
        return _BY_KIND_FIELD[(cls.KIND, field.name)]
    if field.name == "history":  # Join.history is a count, Deliver/Presence.history a flag
        return UINTS if typing.get_type_hints(cls)["history"] is int else st.booleans()
    if field.name in _BY_FIELD:
        return _BY_FIELD[field.name]
    return _BY_TYPE[typing.get_type_hints(cls)[field.name]]


def event_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    fields = {f.name: _field_strategy(cls, f) for f in attrs.fields(cls)}
    return st.builds(cls, **fields)


ANY_EVENT = st.one_of([event_strategy(cls) for cls in events.ALL_KINDS])


def _wire(kind: str, **fields: Any) -> bytes:
    body: bytes = msgpack.packb({"k": kind, **fields}, use_bin_type=True)
    return envelope.HEADER + body


def _refusal(data: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decode(data)
    return info.value


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", events.ALL_KINDS, ids=lambda cls: cls.KIND)
@PROPERTY
@given(data=st.data(), token=st.one_of(st.just(b""), TOKENS))
def test_every_kind_survives_encode_then_decode(cls: type[Any], data: st.DataObject, token: bytes) -> None:
    event = data.draw(event_strategy(cls))
    wire = encode(event, token)
    assert len(wire) <= limits.MAX_DATAGRAM
    assert decode(wire) == Envelope(event, token)


@PROPERTY
@given(event=ANY_EVENT)
def test_decoded_fields_keep_their_python_types(event: Any) -> None:
    decoded = decode(encode(event)).event
    for field in attrs.fields(type(event)):
        assert type(getattr(decoded, field.name)) is type(getattr(event, field.name)), field.name


def test_fields_at_their_default_are_left_off_the_wire() -> None:
    wire = encode(events.Join(id=7, room="lobby"))
    assert msgpack.unpackb(wire[2:]) == {"k": "join", "id": 7, "room": "lobby"}


def test_token_travels_under_key_s_only_when_given() -> None:
    assert "s" not in msgpack.unpackb(encode(events.Rooms(id=1))[2:])
    assert msgpack.unpackb(encode(events.Rooms(id=1), b"t" * 16)[2:])["s"] == b"t" * 16


def test_largest_body_with_longest_names_fits_one_datagram() -> None:
    event = events.Deliver(
        room="r" * limits.MAX_ROOM,
        seq=2**63 - 1,
        nick="n" * limits.MAX_NICK,
        body="€" * (limits.MAX_BODY // 3),
        ts=1.5e9,
        action=True,
        history=True,
    )
    assert decode(encode(event, b"s" * limits.TOKEN_BYTES)).event == event


def test_integer_timestamp_decodes_as_float() -> None:
    decoded = decode(_wire("deliver", room="a", seq=1, nick="bob", body="hi", ts=5)).event
    assert decoded.ts == 5.0
    assert type(decoded.ts) is float


def test_unknown_fields_are_ignored() -> None:
    data = _wire("join", id=3, room="lobby", future=[1, 2], colour="blue")
    assert decode(data) == Envelope(events.Join(id=3, room="lobby"))


# --- encode refuses what may not be sent --------------------------------------------------------


def test_encode_of_an_over_large_event_raises_local_protocol_error() -> None:
    event = events.Reply(id=1, items=tuple("x" * 100 for _ in range(20)))
    with pytest.raises(LocalProtocolError, match=str(limits.MAX_DATAGRAM)):
        encode(event)


def test_encode_refuses_a_string_that_decode_would_refuse() -> None:
    event = events.Reply(id=1, text="x" * (limits.MAX_STR + 1))
    with pytest.raises(LocalProtocolError):
        encode(event)


def test_encode_refuses_an_array_that_decode_would_refuse() -> None:
    event = events.Reply(id=1, items=("a",) * (limits.MAX_ARRAY + 1))
    with pytest.raises(LocalProtocolError):
        encode(event)


# --- envelope versus text ---------------------------------------------------------------------


@PROPERTY
@given(event=ANY_EVENT, token=st.one_of(st.just(b""), TOKENS))
def test_no_envelope_decodes_as_utf8_text(event: Any, token: bytes) -> None:
    wire = encode(event, token)
    assert wire[0] == 0xC1
    with pytest.raises(UnicodeDecodeError):
        wire.decode("utf-8")


@PROPERTY
@given(line=st.text(alphabet=st.characters(codec="utf-8")))
def test_no_utf8_text_is_taken_for_an_envelope(line: str) -> None:
    assert not is_envelope(line.encode("utf-8"))


def test_empty_datagram_is_not_an_envelope() -> None:
    assert not is_envelope(b"")
    assert _refusal(b"").code == "not-envelope"


# --- every refusal, with its code ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"hello", b"\xc1", b"\xc1\x01", b"\x00\x01\x80", b"{}"],
    ids=["text", "magic-only", "header-only", "wrong-magic", "json"],
)
def test_datagram_without_header_and_body_is_refused_as_not_envelope(data: bytes) -> None:
    error = _refusal(data)
    assert error.code == "not-envelope"
    assert "0xC1" in error.text


@pytest.mark.parametrize("version", [0, 2, 255])
def test_other_envelope_version_is_refused_as_bad_version(version: int) -> None:
    error = _refusal(bytes([0xC1, version]) + msgpack.packb({"k": "ping"}))
    assert error.code == "bad-version"
    assert str(version) in error.text
    assert str(limits.ENVELOPE_VERSION) in error.text


def test_datagram_over_max_datagram_is_refused_as_too_large() -> None:
    error = _refusal(envelope.HEADER + b"\x00" * (limits.MAX_DATAGRAM - 1))
    assert error.code == "too-large"
    assert str(limits.MAX_DATAGRAM) in error.text


def test_datagram_of_exactly_max_datagram_is_not_too_large() -> None:
    error = _refusal(envelope.HEADER + b"\x00" * (limits.MAX_DATAGRAM - 2))
    assert error.code == "malformed"  # refused for its content, not its size


def test_truncated_msgpack_is_refused_as_malformed() -> None:
    wire = encode(events.Say(id=1, room="lobby", body="hello there"))
    for cut in range(3, len(wire)):
        assert _refusal(wire[:cut]).code == "malformed", cut


def test_trailing_bytes_after_the_map_are_refused_as_malformed() -> None:
    assert _refusal(encode(events.Rooms(id=1)) + b"\x00").code == "malformed"


def test_invalid_utf8_string_is_refused_as_malformed_saying_utf8() -> None:
    data = envelope.HEADER + b"\x82\xa1k\xa3say\xa4body\xa2\xff\xfe"
    error = _refusal(data)
    assert error.code == "malformed"
    assert "UTF-8" in error.text


@pytest.mark.parametrize(
    "body",
    [[1, 2], "join", 7, None, b"k"],
    ids=["array", "str", "int", "nil", "bin"],
)
def test_body_that_is_not_a_map_is_refused_as_malformed(body: Any) -> None:
    assert _refusal(envelope.HEADER + msgpack.packb(body, use_bin_type=True)).code == "malformed"


@pytest.mark.parametrize(
    "body",
    [{1: "join"}, {b"k": "join"}, {(1, 2): 3}],
    ids=["int-key", "bin-key", "array-key"],
)
def test_map_with_non_string_keys_is_refused_as_malformed(body: Any) -> None:
    assert _refusal(envelope.HEADER + msgpack.packb(body, use_bin_type=True)).code == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB
        b"\xc6\xff\xff\xff\xff",  # bin32 claiming 4 GiB
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 G items
        b"\xdf\xff\xff\xff\xff",  # map32 claiming 4 G pairs
        b"\xc9\xff\xff\xff\xff\x05",  # ext32 claiming 4 GiB
    ],
    ids=["str32", "bin32", "array32", "map32", "ext32"],
)
def test_huge_declared_length_is_refused_as_malformed(body: bytes) -> None:
    assert _refusal(envelope.HEADER + body).code == "malformed"


def test_strings_binaries_arrays_and_maps_over_their_limits_are_refused_as_malformed() -> None:
    over = {
        "str": {"k": "bye", "reason": "x" * (limits.MAX_STR + 1)},
        "bin": {"k": "hello", "nick": "bob", "pad": b"\x00" * (limits.MAX_BIN + 1)},
        "array": {"k": "ack", "stream": "", "upto": 1, "sack": list(range(limits.MAX_ARRAY + 1))},
        "map": {"k": "ping", **{f"x{i}": 0 for i in range(limits.MAX_MAP)}},
    }
    for what, body in over.items():
        error = _refusal(envelope.HEADER + msgpack.packb(body, use_bin_type=True))
        assert error.code == "malformed", what


def test_deeply_nested_arrays_are_refused_as_malformed() -> None:
    assert _refusal(envelope.HEADER + b"\x91" * (limits.MAX_DATAGRAM - 2)).code == "malformed"


def test_ext_types_are_refused_as_malformed() -> None:
    timestamp = msgpack.packb({"k": "ping", "when": msgpack.Timestamp(1, 0)})
    assert _refusal(envelope.HEADER + timestamp).code == "malformed"


@pytest.mark.parametrize("kind", ["shout", "", "JOIN", 1, None, b"join", ["join"]])
def test_unknown_or_non_string_kind_is_refused_as_unknown_kind(kind: Any) -> None:
    error = _refusal(envelope.HEADER + msgpack.packb({"k": kind, "id": 1}, use_bin_type=True))
    assert error.code == "unknown-kind"


def test_missing_kind_is_refused_as_unknown_kind() -> None:
    assert _refusal(envelope.HEADER + msgpack.packb({"id": 1})).code == "unknown-kind"


@pytest.mark.parametrize(
    ("kind", "fields", "missing"),
    [
        ("join", {"room": "lobby"}, "id"),
        ("join", {"id": 1}, "room"),
        ("say", {"id": 1, "room": "lobby"}, "body"),
        ("msg", {"id": 1, "body": "hi"}, "to"),
        ("hello", {}, "nick"),
        ("welcome", {"token": b"t" * 16, "nick": "bob"}, "hub"),
        ("deliver", {"room": "", "seq": 1, "nick": "bob", "body": "hi"}, "ts"),
        ("error", {"code": "x"}, "text"),
    ],
)
def test_required_field_absent_is_refused_as_missing_field_naming_it(
    kind: str, fields: dict[str, Any], missing: str
) -> None:
    error = _refusal(_wire(kind, **fields))
    assert error.code == "missing-field"
    assert repr(missing) in error.text
    assert kind in error.text


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        ("join", {"id": True, "room": "lobby"}, "id"),  # bool is not an int here
        ("join", {"id": 1.0, "room": "lobby"}, "id"),
        ("join", {"id": "1", "room": "lobby"}, "id"),
        ("join", {"id": 1, "room": b"lobby"}, "room"),
        ("hello", {"nick": "bob", "cookie": "abc"}, "cookie"),  # str given for bytes
        ("say", {"id": 1, "room": "a", "body": "x", "action": 1}, "action"),
        ("deliver", {"room": "", "seq": 1, "nick": "b", "body": "x", "ts": True}, "ts"),
        ("deliver", {"room": "", "seq": 1, "nick": "b", "body": "x", "ts": "now"}, "ts"),
        ("ack", {"stream": "", "upto": 1, "sack": 3}, "sack"),
        ("ack", {"stream": "", "upto": 1, "sack": [1, "2"]}, "sack"),
        ("ack", {"stream": "", "upto": 1, "sack": [1, True]}, "sack"),
        ("reply", {"id": 1, "items": ["a", 2]}, "items"),
        ("reply", {"id": 1, "items": "ab"}, "items"),
        ("error", {"code": None, "text": "x"}, "code"),
    ],
)
def test_field_of_the_wrong_type_is_refused_as_bad_type_naming_it(
    kind: str, fields: dict[str, Any], field: str
) -> None:
    error = _refusal(_wire(kind, **fields))
    assert error.code == "bad-type"
    assert f"{kind}.{field}" in error.text


@pytest.mark.parametrize("token", [b"short", b"x" * 17, "x" * 16, 16], ids=["5B", "17B", "str", "int"])
def test_session_token_not_16_bytes_is_refused_as_bad_type(token: Any) -> None:
    error = _refusal(_wire("rooms", id=1, s=token))
    assert error.code == "bad-type"
    assert str(limits.TOKEN_BYTES) in error.text


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("join", {"id": -1, "room": "lobby"}),
        ("join", {"id": 2**63, "room": "lobby"}),
        ("join", {"id": 2**64 - 1, "room": "lobby"}),
        ("join", {"id": 1, "room": "lobby", "history": -5}),
        ("deliver", {"room": "", "seq": -1, "nick": "bob", "body": "x", "ts": 0.0}),
        ("ack", {"stream": "", "upto": -1}),
        ("history", {"id": 1, "room": "a", "since": -(2**63)}),
    ],
)
def test_integer_out_of_range_is_refused_as_bad_value(kind: str, fields: dict[str, Any]) -> None:
    error = _refusal(_wire(kind, **fields))
    assert error.code == "bad-value"
    assert "2**63-1" in error.text


def test_body_over_max_body_is_refused_as_bad_value() -> None:
    error = _refusal(_wire("say", id=1, room="lobby", body="x" * (limits.MAX_BODY + 1)))
    assert error.code == "bad-value"


def test_a_negative_message_id_is_refused_as_bad_value_naming_the_request() -> None:
    error = _refusal(_wire("say", id=7, room="lobby", body="x", mid=-1))
    assert error.code == "bad-value" and error.request_id == 7


def test_message_id_and_resume_secret_are_optional_and_round_trip() -> None:
    say = events.Say(id=1, room="lobby", body="x", mid=2**40)
    assert decode(encode(say)).event == say
    assert b"mid" not in encode(events.Say(id=1, room="lobby", body="x")), "absent when 0"
    hello = events.Hello(nick="bob", resume=b"r" * 16)
    assert decode(encode(hello)).event == hello
    old = decode(_wire("welcome", token=bytes(16), hub=b"h", nick="bob")).event
    assert isinstance(old, events.Welcome) and old.resume == b""


def test_body_over_max_body_is_refused() -> None:
    for kind, fields in [
        ("say", {"id": 1, "room": "lobby"}),
        ("msg", {"id": 1, "to": "bob"}),
        ("deliver", {"room": "", "seq": 1, "nick": "bob", "ts": 0.0}),
    ]:
        with pytest.raises(RemoteProtocolError):
            decode(_wire(kind, body="é" * (limits.MAX_BODY // 2 + 1), **fields))


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("join", {"id": 1, "room": "bad room"}),
        ("join", {"id": 1, "room": ""}),
        ("join", {"id": 1, "room": "r" * (limits.MAX_ROOM + 1)}),
        ("join", {"id": 1, "room": "-leading-dash"}),
        ("hello", {"nick": "bob!"}),
        ("hello", {"nick": "n" * (limits.MAX_NICK + 1)}),
        ("hello", {"nick": "b\u200bb"}),
        ("hello", {"nick": "小 明"}),
        ("hello", {"nick": "明" * 22}),
        ("msg", {"id": 1, "to": "", "body": "hi"}),
        ("welcome", {"token": b"t" * 16, "hub": b"h", "nick": "a b"}),
        ("ack", {"stream": "no way", "upto": 1}),
        ("deliver", {"room": "##x", "seq": 1, "nick": "bob", "body": "x", "ts": 0.0}),
        ("join", {"id": 1, "room": "聊\u202e天"}),
    ],
)
def test_name_breaking_the_rule_is_refused_as_bad_name(kind: str, fields: dict[str, Any]) -> None:
    error = _refusal(_wire(kind, **fields))
    assert error.code == "bad-name"
    assert error.text


def test_refusal_text_is_for_people_and_code_for_programs() -> None:
    error = _refusal(_wire("join", id=1, room="bad room"))
    assert str(error) == error.text
    assert "contains a space" in error.text


# --- junk never escapes as anything but RemoteProtocolError ---------------------------------------


def _decode_or_refuse(data: bytes) -> None:
    try:
        result = decode(data)
    except RemoteProtocolError as error:
        assert error.code in {
            "not-envelope",
            "bad-version",
            "too-large",
            "malformed",
            "unknown-kind",
            "missing-field",
            "bad-type",
            "bad-value",
            "bad-name",
        }
    else:
        assert isinstance(result, Envelope)
        assert isinstance(result.event, events.ALL_KINDS)


@PROPERTY
@given(data=st.binary(max_size=limits.MAX_DATAGRAM + 10))
def test_random_bytes_decode_or_raise_remote_protocol_error(data: bytes) -> None:
    _decode_or_refuse(data)


@PROPERTY
@given(body=st.binary(max_size=200))
def test_random_bytes_after_a_valid_header_decode_or_raise_remote_protocol_error(body: bytes) -> None:
    _decode_or_refuse(envelope.HEADER + body)


_ALL_FIELD_NAMES = sorted({f.name for cls in events.ALL_KINDS for f in attrs.fields(cls)} | {"s", "k"})
_JUNK_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(),
        st.text(max_size=30),
        st.binary(max_size=30),
        st.sampled_from([cls.KIND for cls in events.ALL_KINDS]),
        NICKS,
    ),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)


@PROPERTY
@given(
    kind=st.sampled_from([cls.KIND for cls in events.ALL_KINDS]),
    fields=st.dictionaries(st.sampled_from(_ALL_FIELD_NAMES), _JUNK_VALUES, max_size=10),
)
def test_maps_of_plausible_keys_and_junk_values_decode_or_raise_remote_protocol_error(
    kind: str, fields: dict[str, Any]
) -> None:
    data = envelope.HEADER + msgpack.packb({"k": kind, **fields}, use_bin_type=True)
    _decode_or_refuse(data)


@PROPERTY
@given(event=ANY_EVENT, data=st.data())
def test_bit_flipped_envelopes_decode_or_raise_remote_protocol_error(event: Any, data: st.DataObject) -> None:
    wire = bytearray(encode(event))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        bit = data.draw(st.integers(min_value=0, max_value=len(wire) * 8 - 1))
        wire[bit // 8] ^= 1 << (bit % 8)
    _decode_or_refuse(bytes(wire))


@PROPERTY
@given(event=ANY_EVENT, data=st.data())
def test_truncated_or_extended_envelopes_decode_or_raise_remote_protocol_error(
    event: Any, data: st.DataObject
) -> None:
    wire = encode(event)
    cut = data.draw(st.integers(min_value=0, max_value=len(wire)))
    extra = data.draw(st.binary(max_size=8))
    _decode_or_refuse(wire[:cut] + extra)
