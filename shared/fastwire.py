"""The envelope's fast lanes: the hub's most frequent datagrams read and written without
event objects.

Why: a room message costs the hub one ``say`` in, one reply and one ``deliver`` out, and an
ack per member every few messages.  Through :mod:`shared.envelope` each of these builds a map,
an attrs event (converters, validators) and walks the event's fields; here each is one msgpack
call and a few type tests, or bytes put together from a prefix that depends only on the room
and the sender.

Each function gives exactly what the full path gives (pinned by property tests in
``tests/unit/test_fastwire.py``): a decoder returns the fields the full decoder would put in
its event, or None for anything it is not sure of (unusual keys, bad types or values, junk),
which then takes :func:`shared.envelope.decode` and gets its precise error; an encoder returns
the very bytes :func:`shared.envelope.encode` writes, or None when the event is not of the
shape it knows.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from roomcast.shared import limits
from roomcast.shared.names import BadName, check_room

HEADER = bytes([limits.ENVELOPE_MAGIC, limits.ENVELOPE_VERSION])
#: How an ack and a say start: the kind first (this code, the client and the generator write it
#: first; a datagram that does not start so simply takes the full decoder).
ACK_HEAD = b"\xa1k\xa3ack"
SAY_HEAD = b"\xa1k\xa3say"
#: Exactly the bounds of the full decoder, so both accept the same msgpack.
LIMITS: dict[str, Any] = {
    "raw": False,
    "use_list": False,
    "strict_map_key": True,
    "max_str_len": limits.MAX_STR,
    "max_bin_len": limits.MAX_BIN,
    "max_array_len": limits.MAX_ARRAY,
    "max_map_len": limits.MAX_MAP,
    "max_ext_len": 0,
}
_unpackb = msgpack.unpackb
_TOP = 2**63
_ACK_KEYS = frozenset(("k", "s", "stream", "upto", "sack"))
_SAY_KEYS = frozenset(("k", "s", "id", "room", "body", "action", "mid"))


def _map(data: bytes, head: bytes) -> dict[Any, Any] | None:
    """The datagram's map if it starts with ``head`` and is well-formed msgpack within the
    bounds; None otherwise."""
    if data[3:9] != head or data[:2] != HEADER or len(data) > limits.MAX_DATAGRAM:
        return None
    try:
        wire = _unpackb(data[2:], **LIMITS)
    except Exception:  # msgpack raises several unrelated types on junk
        return None
    return wire if type(wire) is dict else None


def decode_ack(data: bytes) -> tuple[bytes, str, int, tuple[int, ...]] | None:
    """(token, stream, upto, sack) of a well-formed ack; the stream's name is not checked (the
    hub takes the fast path only for a room the member is in).  The plain ack, as the client
    writes it (no sack, a stream name of at most 31 bytes), is read byte by byte, cheaper than
    msgpack for these few fields; any other shape takes :func:`_any_ack`."""
    try:
        end = _STREAM_AT + 1 + data[_STREAM_AT] - 0xA0  # where the stream's fixstr ends
        first, rest = data[end + 5], len(data) - end - 6  # upto's first byte, the bytes after it
    except IndexError:
        return _any_ack(data)
    middle = data[_STREAM_KEY_AT : end + 5]  # from the stream's key to upto's
    stream = _STREAMS.get(middle)
    if stream is None:
        stream = _plain_stream(middle)
    if (
        stream is not None
        and data[:_TOKEN_AT] == _PLAIN_ACK
        and (_UINT_SIZES.get(first) == rest if rest else first < 0x80)  # fixint, or uint 8-64
    ):
        upto = int.from_bytes(data[end + 6 :], "big") if rest else first
        if upto < _TOP:
            return data[_TOKEN_AT:_STREAM_KEY_AT], stream, upto, ()
    return _any_ack(data)


def _plain_stream(middle: bytes) -> str | None:
    """The stream's name if ``middle`` is a plain ack's from the stream's key to upto's (the
    key, a fixstr of at most 31 bytes of UTF-8, upto's key); kept in ``_STREAMS``."""
    size = len(middle) - len(_STREAM_KEY) - 1 - len(_UPTO_KEY)
    if (
        not 0 <= size < 32
        or not middle.startswith(_STREAM_KEY)
        or middle[len(_STREAM_KEY)] != 0xA0 + size
        or not middle.endswith(_UPTO_KEY)
    ):
        return None
    try:
        stream = middle[len(_STREAM_KEY) + 1 : -len(_UPTO_KEY)].decode()
    except UnicodeDecodeError:
        return None
    if len(_STREAMS) >= _STREAMS_KEPT:
        _STREAMS.clear()  # junk, or many rooms: start again (bounded)
    _STREAMS[middle] = stream
    return stream


def _any_ack(data: bytes) -> tuple[bytes, str, int, tuple[int, ...]] | None:
    """:func:`decode_ack` for every shape, through msgpack."""
    wire = _map(data, ACK_HEAD)
    if wire is None or wire.get("k") != "ack" or not _ACK_KEYS.issuperset(wire):
        return None
    get = wire.get
    token, stream, upto, sack = get("s"), get("stream"), get("upto"), get("sack", ())
    if type(token) is not bytes or type(stream) is not str or type(upto) is not int or not 0 <= upto < _TOP:
        return None
    if type(sack) is not tuple or (sack and not all(type(seq) is int for seq in sack)):
        return None
    return token, stream, upto, sack


#: The plain ack as the client writes it: a map of 4 (kind, 16-byte token, stream, upto).
_PLAIN_ACK = HEADER + b"\x84" + ACK_HEAD + b"\xa1s\xc4" + bytes((limits.TOKEN_BYTES,))
_STREAM_KEY = b"\xa6stream"
_UPTO_KEY = b"\xa4upto"
_TOKEN_AT = len(_PLAIN_ACK)
_STREAM_KEY_AT = _TOKEN_AT + limits.TOKEN_BYTES
_STREAM_AT = _STREAM_KEY_AT + len(_STREAM_KEY)  # its fixstr byte: 0xa0 plus its length
#: msgpack's unsigned integers: how many bytes follow the first.
_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
#: A plain ack's bytes from the stream's key to upto's -> the stream's name: each stream's are
#: read and checked once, then looked up.
_STREAMS: dict[bytes, str] = {}
_STREAMS_KEPT = 4096


def decode_say(data: bytes) -> tuple[bytes, int, str, str, bool, int] | None:
    """(token, id, room as shown, body, action, mid) of a well-formed say."""
    say = read_say(data)
    return None if say is None else say[:6]


def read_say(data: bytes) -> tuple[bytes, int, str, str, bool, int, bytes] | None:
    """:func:`decode_say`, and the body as msgpack packs it (taken from the say as it came, so
    that the deliver is put together without packing it again: :func:`line_deliver`)."""
    say = _plain_say(data)
    if say is not None:
        return say
    fields = _say_map(data)
    return None if fields is None else (*fields, _pack(fields[3]))


#: A say as the client and the generator write it, up to the first byte of its id: the header,
#: a map of 5, 6 or 7 (the kind, the token, id, room and body, then action and mid when set),
#: the kind, the token's key; the token; the id's key.
_SAY_OPENING = struct.Struct(f"{len(HEADER) + 1 + len(SAY_HEAD) + 4}s{limits.TOKEN_BYTES}s3sB")
#: The opening's first part -> how many of the optional fields follow the body.
_SAY_OPENINGS = {
    HEADER + bytes((0x85 + extra,)) + SAY_HEAD + b"\xa1s\xc4" + bytes((limits.TOKEN_BYTES,)): extra
    for extra in range(3)
}
_ID_AT = _SAY_OPENING.size
#: msgpack's unsigned integers (after their first byte), by that byte.
_UINTS = {
    0xCC: struct.Struct(">B"),
    0xCD: struct.Struct(">H"),
    0xCE: struct.Struct(">I"),
    0xCF: struct.Struct(">Q"),
}
#: The room's key, its name (a fixstr) and the body's key as they are written -> the room's
#: name as shown; valid names only (PARTS_KEPT at most, then it starts again).
_room_items: dict[bytes, str] = {}


def _plain_say(data: bytes) -> tuple[bytes, int, str, str, bool, int, bytes] | None:
    """A say in the shape the client writes (its keys in that order, its strings in their
    shortest form), read in place: cheaper than building msgpack's map and reading it.  None
    for any other shape (the map path reads it then)."""
    if not _ID_AT + 12 < len(data) <= limits.MAX_DATAGRAM:
        return None
    opening, token, id_key, first = _SAY_OPENING.unpack_from(data)
    extra = _SAY_OPENINGS.get(opening)
    if extra is None or id_key != b"\xa2id":
        return None
    try:
        if first < 0x80:  # a positive fixint
            request_id, at = first, _ID_AT
        else:
            reader = _UINTS[first]  # KeyError: not an unsigned integer
            (request_id,) = reader.unpack_from(data, _ID_AT)
            at = _ID_AT + reader.size
        room_end = at + 11 + data[at + 5] - 0xA0  # b"\xa4room", its fixstr, b"\xa4body"
        item = data[at:room_end]
        shown = _room_items.get(item) or _room_item(item)
        body_at, body_end = _str_at(data, room_end)  # the body as packed starts at room_end
        action, mid = (False, 0) if body_end == len(data) and not extra else _say_tail(data, body_end, extra)
        if request_id >= _TOP or not shown or not body_at or body_end - body_at > limits.MAX_BODY:
            return None
        packed = data[room_end:body_end]
        return token, request_id, shown, packed[body_at - room_end :].decode(), action, mid, packed
    except (IndexError, KeyError, UnicodeDecodeError, ValueError, struct.error):
        return None


def _room_item(item: bytes) -> str:
    """The room's name as shown, from its key, name and the body's key as written; "" when
    they are not so or the name is not valid."""
    if item[:5] != b"\xa4room" or item[-5:] != b"\xa4body" or not 0xA1 <= item[5] <= 0xBF:
        return ""
    try:
        shown = check_room(item[6:-5].decode())
    except (UnicodeDecodeError, BadName):
        return ""
    if len(_room_items) >= PARTS_KEPT:
        _room_items.clear()
    _room_items[item] = shown
    return shown


def _say_tail(data: bytes, at: int, extra: int) -> tuple[bool, int]:
    """The optional fields after the body (action, then mid); ValueError when they are not
    exactly ``extra`` of them, in that order."""
    action, mid = False, 0
    if extra and data[at : at + 7] == b"\xa6action":
        flag = data[at + 7]
        if flag != 0xC3 and flag != 0xC2:
            raise ValueError("not a bool")
        action, at, extra = flag == 0xC3, at + 8, extra - 1
    if extra and data[at : at + 4] == b"\xa3mid":
        mid, at = _uint_at(data, at + 4)
        extra -= 1
    if extra or at != len(data) or mid < 0:
        raise ValueError("not a say's tail")  # also for a bool that is not one
    return action, mid


def _uint_at(data: bytes, at: int) -> tuple[int, int]:
    """The msgpack unsigned integer at ``at`` (-1: another type, or 2**63 or more) and where
    the next item starts.  Raises IndexError or struct.error past the end."""
    first = data[at]
    if first < 0x80:  # a positive fixint
        return first, at + 1
    reader = _UINTS.get(first)
    if reader is None:
        return -1, at + 1
    (value,) = reader.unpack_from(data, at + 1)  # struct.error past the end
    return (value if value < _TOP else -1), at + 1 + reader.size


def _str_at(data: bytes, at: int) -> tuple[int, int]:
    """Where the bytes of the msgpack str at ``at``, in its shortest form, start and end
    ((0, 0) for anything else).  Raises IndexError past the end."""
    first = data[at]
    if 0xA0 <= first <= 0xBF:
        return at + 1, at + 1 + first - 0xA0
    if first == 0xD9 and data[at + 1] >= 32:
        return at + 2, at + 2 + data[at + 1]
    if first == 0xDA and data[at + 1]:  # 256 bytes or more
        return at + 3, at + 3 + int.from_bytes(data[at + 1 : at + 3], "big")
    return 0, 0


def _say_map(data: bytes) -> tuple[bytes, int, str, str, bool, int] | None:
    """:func:`decode_say` through msgpack's map, for any other key order or form."""
    # msgpack without the full decoder's bounds (they cost as much as the rest): a fixmap has
    # at most 15 entries, every key must be a known field and every field is checked below,
    # within bounds as strict (a body, a room name and a token are far under MAX_STR and MAX_BIN).
    if (
        data[3:9] != SAY_HEAD
        or data[:2] != HEADER
        or not 0x85 <= data[2] <= 0x8F
        or len(data) > limits.MAX_DATAGRAM
    ):
        return None
    try:
        wire = _unpackb(data[2:])
    except Exception:  # msgpack raises several unrelated types on junk
        return None
    get = wire.get
    token, request_id, room, body = get("s"), get("id"), get("room"), get("body")
    action, mid = get("action", False), get("mid", 0)
    if len(wire) != 5 and not _SAY_KEYS.issuperset(wire):  # 5: exactly the ones read above
        return None
    if type(token) is not bytes or type(request_id) is not int or type(room) is not str or get("k") != "say":
        return None
    if type(body) is not str or type(action) is not bool or type(mid) is not int:
        return None
    if not (0 <= request_id < _TOP and 0 <= mid < _TOP) or len(token) != limits.TOKEN_BYTES:
        return None
    if len(body) * 4 > limits.MAX_BODY and len(body.encode()) > limits.MAX_BODY:
        return None
    try:
        shown = check_room(room)
    except BadName:
        return None
    return token, request_id, shown, body, action, mid


# --- encoding ------------------------------------------------------------------------------

_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack
#: Distinct constant parts kept per kind (rooms, nicks, reply texts); past it, it starts again.
PARTS_KEPT = 4096
_rooms: dict[str, bytes] = {}
_nicks: dict[str, bytes] = {}
_texts: dict[str, bytes] = {}


def _part(kept: dict[str, bytes], key: str, *items: Any) -> bytes:
    """The packed bytes of the constant ``items`` (bytes are taken as they are), kept by ``key``."""
    if len(kept) >= PARTS_KEPT:
        kept.clear()
    part = kept[key] = b"".join(i if type(i) is bytes else _pack(i) for i in items)
    return part


def _fits(text: object) -> bool:
    """A string the full encoder takes (at most MAX_STR bytes of UTF-8)."""
    return type(text) is str and (len(text) * 4 <= limits.MAX_STR or len(text.encode()) <= limits.MAX_STR)


_TS = _pack("ts")
_ACTION, _HISTORY = _pack("action") + _pack(True), _pack("history") + _pack(True)
#: By ``action + 2 * history``: the map's first byte (6 entries, and these), and its tail.
_STARTS = tuple(HEADER + bytes((0x86 + n,)) for n in (0, 1, 1, 2))
_TAILS = (b"", _ACTION, _HISTORY, _ACTION + _HISTORY)


def encode_deliver(
    room: str, seq: int, nick: str, body: str, ts: float, action: bool = False, history: bool = False
) -> bytes | None:
    """The envelope of ``Deliver(room, seq, nick, body, ts, action, history)``; the kind and
    the room, and the nick, are packed once."""
    if type(seq) is not int or type(ts) is not float or type(action) is not bool or type(history) is not bool:
        return None
    if type(room) is not str or type(nick) is not str or type(body) is not str:
        return None
    if (len(room) + len(nick) + len(body)) * 4 > limits.MAX_STR and not (
        _fits(room) and _fits(nick) and _fits(body)
    ):
        return None
    head = _rooms.get(room) or _part(_rooms, room, "k", "deliver", "room", room, "seq")
    middle = _nicks.get(nick) or _part(_nicks, nick, "nick", nick, "body")
    shape = action + 2 * history
    data = b"".join((_STARTS[shape], head, _pack(seq), middle, _pack(body), _TS, _pack(ts), _TAILS[shape]))
    return data if len(data) <= limits.MAX_DATAGRAM else None  # the full encoder raises


def line_deliver(room: str, seq: int, nick: str, packed_body: bytes, ts: float, action: bool) -> bytes:
    """:func:`encode_deliver` of a live room line whose fields are known to be right (a room's
    and a member's names as shown, a body read by :func:`read_say` with its packed form, a
    float time): no checks; a room name, a nick and a body within their limits are far under
    MAX_DATAGRAM together."""
    head = _rooms.get(room) or _part(_rooms, room, "k", "deliver", "room", room, "seq")
    middle = _nicks.get(nick) or _part(_nicks, nick, "nick", nick, "body")
    return b"".join((_STARTS[action], head, _pack(seq), middle, packed_body, _TS, _pack(ts), _TAILS[action]))


_REPLY = HEADER + b"\x84" + b"".join(_pack(i) for i in ("k", "reply", "id"))


def encode_reply(request_id: int, text: str, seq: int) -> bytes | None:
    """The envelope of ``Reply(id, text, seq)`` with a text and a seq (the answer to a say);
    the text is packed once."""
    if type(request_id) is not int or type(seq) is not int or not seq or type(text) is not str or not text:
        return None
    if len(text) * 4 > limits.MAX_STR and not _fits(text):
        return None
    data = say_reply(request_id, text, seq)
    return data if len(data) <= limits.MAX_DATAGRAM else None


def say_reply(request_id: int, text: str, seq: int) -> bytes:
    """:func:`encode_reply` for fields known to be right: a request id and a seq (a positive
    integer) that fit in 64 bits, a short text (a say's answer names its room)."""
    middle = _texts.get(text) or _part(_texts, text, "text", text, "seq")
    return b"".join((_REPLY, _pack(request_id), middle, _pack(seq)))
