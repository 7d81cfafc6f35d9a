"""The hub's fast path for acks (``shared.fastwire.decode_ack``) reads exactly what the full
decoder reads, and hands anything else to it."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from roomcast.shared import envelope, events, fastwire

TOKEN = bytes(range(16))
ROOMS = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True) | st.just("")


@given(ROOMS, st.integers(0, 2**63 - 1), st.lists(st.integers(0, 2**63 - 1), max_size=16))
def test_a_well_formed_ack_reads_the_same_on_both_paths(stream: str, upto: int, sack: list[int]) -> None:
    data = envelope.encode(events.Ack(stream=stream, upto=upto, sack=tuple(sack)), token=TOKEN)
    decoded = envelope.decode(data)
    assert fastwire.decode_ack(data) == (
        decoded.token,
        decoded.event.stream,
        decoded.event.upto,
        decoded.event.sack,
    )


@given(st.binary(max_size=64))
def test_junk_after_an_ack_header_is_left_to_the_full_decoder(tail: bytes) -> None:
    data = envelope.HEADER + b"\x84\xa1k\xa3ack" + tail
    fast = fastwire.decode_ack(data)
    if fast is not None:  # then it must be an ack the full decoder reads the same way...
        try:
            decoded = envelope.decode(data)
        except envelope.RemoteProtocolError as exc:  # ...or one naming no room the hub has
            assert exc.code == "bad-name"
            return
        assert fast[1:] == (decoded.event.stream, decoded.event.upto, decoded.event.sack)


def test_acks_with_wrong_types_or_values_take_the_full_decoder() -> None:
    for wire in (
        {"k": "ack", "s": TOKEN, "stream": "hall", "upto": -1},
        {"k": "ack", "s": TOKEN, "stream": "hall", "upto": "1"},
        {"k": "ack", "s": TOKEN, "stream": 7, "upto": 1},
        {"k": "ack", "s": TOKEN, "stream": "hall", "upto": 1, "sack": [1, "x"]},
        {"k": "ack", "s": "token", "stream": "hall", "upto": 1},
    ):
        assert fastwire.decode_ack(envelope.HEADER + msgpack.packb(wire, use_bin_type=True)) is None
    ping = envelope.encode(events.Ping(id=1), token=TOKEN)
    assert fastwire.decode_ack(ping) is None


def test_the_streams_the_fast_path_remembers_stay_bounded() -> None:
    for n in range(fastwire._STREAMS_KEPT + 100):
        data = envelope.encode(events.Ack(stream=f"room{n}", upto=n), token=TOKEN)
        assert fastwire.decode_ack(data) == (TOKEN, f"room{n}", n, ())
        assert len(fastwire._STREAMS) <= fastwire._STREAMS_KEPT
