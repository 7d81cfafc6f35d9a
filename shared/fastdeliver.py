"""The client's fast lane for a room line: a ``deliver`` read as the hub writes it.

Why: the client spends about half of its Python time per received line in
:func:`shared.envelope.decode` (a bounded unpack into a map, a type check of every field by
the event's schema, then the attrs converters and validators).  A ``deliver`` from the hub
always has one shape, the one :func:`shared.fastwire.encode_deliver` puts together: a map of
6 to 8 entries, in this order: the kind, ``room`` (with the kind, the hub's prefix kept per
room), ``seq``, ``nick``, ``body``, ``ts`` (a float64), then ``action`` and ``history`` only
when true; no token.  Here such a datagram is read byte by byte, its room and nick looked up
by their bytes (checked once), and its event built from its slots.

:func:`decode_deliver` gives exactly the event ``envelope.decode(data).event`` gives (pinned
by property tests in ``tests/unit/test_fastdeliver.py``), or None for anything else (other
kinds, a token, other keys, orders or encodings, bad values, junk): the caller then takes the
full decoder, which gives its precise error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from roomcast.shared import events, limits
from roomcast.shared.fastwire import HEADER, PARTS_KEPT
from roomcast.shared.names import BadName, check_nick, check_room

#: The kind, then the room's key: how the hub's map starts, after its first byte.
DELIVER_HEAD = b"\xa1k\xa7deliver\xa4room"
_ROOM_AT = 3 + len(DELIVER_HEAD)
_SEQ, _NICK, _BODY, _TS = b"\xa3seq", b"\xa4nick", b"\xa4body", b"\xa2ts\xcb"  # ts: a float64
#: (the map's first byte, what follows the ts): (action, history).
_TAILS = {
    (0x86, b""): (False, False),
    (0x87, b"\xa6action\xc3"): (True, False),
    (0x87, b"\xa7history\xc3"): (False, True),
    (0x88, b"\xa6action\xc3\xa7history\xc3"): (True, True),
}
#: msgpack's unsigned integers and longer strings: how many bytes follow the first.
_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_STR_SIZES = {0xD9: 1, 0xDA: 2}
_TOP = 2**63
_float64 = struct.Struct(">d").unpack_from
_SET_HISTORY = events.Deliver.history.__set__  # type: ignore[attr-defined]
#: A room's and a nick's bytes on the wire -> the name as shown (None: refused).
_rooms: dict[bytes, str | None] = {}
_nicks: dict[bytes, str | None] = {}


def decode_deliver(data: bytes) -> events.Deliver | None:
    """The :class:`events.Deliver` of a datagram in the hub's shape, or None (take the full
    decoder)."""
    if data[3:_ROOM_AT] != DELIVER_HEAD or data[:2] != HEADER or len(data) > limits.MAX_DATAGRAM:
        return None
    try:
        start, at = _str_at(data, _ROOM_AT)
        room = _name(_rooms, data[start:at], _room)
        if room is None or data[at : at + 4] != _SEQ:
            return None
        seq, at = _uint_at(data, at + 4)
        if data[at : at + 5] != _NICK:
            return None
        start, at = _str_at(data, at + 5)
        nick = _name(_nicks, data[start:at], check_nick)
        if nick is None or data[at : at + 5] != _BODY or seq >= _TOP:
            return None
        start, at = _str_at(data, at + 5)
        if at - start > limits.MAX_BODY or data[at : at + 4] != _TS:
            return None
        body = data[start:at].decode()
        (ts,) = _float64(data, at + 4)
    except (IndexError, KeyError, UnicodeDecodeError, struct.error):  # cut short, or not this shape
        return None
    flags = _TAILS.get((data[2], data[at + 12 :]))
    if flags is None:
        return None
    event = events.checked_deliver(room, seq, nick, body, ts, flags[0])
    if flags[1]:
        _SET_HISTORY(event, True)
    return event


def _str_at(data: bytes, at: int) -> tuple[int, int]:
    """Where the bytes of the msgpack string at ``at`` start and end (KeyError: not a string
    the hub writes; past the end if cut short, which the next test of the caller catches)."""
    first = data[at]
    if 0xA0 <= first <= 0xBF:  # a fixstr
        return at + 1, at + 1 + first - 0xA0
    start = at + 1 + _STR_SIZES[first]
    return start, start + int.from_bytes(data[at + 1 : start], "big")


def _uint_at(data: bytes, at: int) -> tuple[int, int]:
    """The msgpack unsigned integer at ``at`` and where it ends (KeyError: not one)."""
    first = data[at]
    if first < 0x80:  # a positive fixint
        return first, at + 1
    end = at + 1 + _UINT_SIZES[first]
    return int.from_bytes(data[at + 1 : end], "big"), end


def _room(room: str) -> str:
    return check_room(room) if room else ""  # empty: a private message


def _name(kept: dict[bytes, str | None], raw: bytes, check: Callable[[str], str]) -> str | None:
    """The name of these UTF-8 bytes as shown, or None if refused; checked once, then kept."""
    try:
        return kept[raw]
    except KeyError:
        pass
    if len(kept) >= PARTS_KEPT:
        kept.clear()
    try:
        shown: str | None = check(raw.decode())
    except BadName:
        shown = None
    kept[raw] = shown
    return shown
