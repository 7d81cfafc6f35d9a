"""The client's fast lane for a room line: a ``deliver`` read as the hub writes it.

Why: the client spends about half of its Python time per received line in
:func:`shared.envelope.decode` (a bounded unpack, a type check of every field by the event's
schema, then the attrs converters and validators).  A ``deliver`` from the hub always has one
shape, the one :func:`shared.fastwire.encode_deliver` puts together: a map of 6 to 8 entries
that starts with the kind, no token, then ``room``, ``seq``, ``nick``, ``body``, ``ts`` and
``action`` / ``history`` only when true.  Here such a datagram is one msgpack call, a few type
tests, the (cached) name checks and an event built from its slots.

:func:`decode_deliver` gives exactly the event ``envelope.decode(data).event`` gives (pinned
by property tests in ``tests/unit/test_fastdeliver.py``), or None for anything else (other
kinds, a token, unknown keys, bad types or values, junk): the caller then takes the full
decoder, which gives its precise error.
"""

from __future__ import annotations

import msgpack

from roomcast.shared import events, limits
from roomcast.shared.names import BadName, check_nick, check_room

HEADER = bytes([limits.ENVELOPE_MAGIC, limits.ENVELOPE_VERSION])
#: The kind, the first entry of the hub's map (``fastwire.encode_deliver`` writes it first).
DELIVER_HEAD = b"\xa1k\xa7deliver"
_HEAD_END = 3 + len(DELIVER_HEAD)
#: The map's first byte: a fixmap of the 6 fields, plus ``action`` and ``history`` when true.
_FEWEST, _MOST = 0x86, 0x88
_KEYS = frozenset(("k", "room", "seq", "nick", "body", "ts", "action", "history"))
_TOP = 2**63
_unpackb = msgpack.unpackb
_SET_HISTORY = events.Deliver.history.__set__  # type: ignore[attr-defined]


def decode_deliver(data: bytes) -> events.Deliver | None:
    """The :class:`events.Deliver` of a datagram in the hub's shape, or None (take the full
    decoder)."""
    if data[3:_HEAD_END] != DELIVER_HEAD or data[:2] != HEADER or len(data) > limits.MAX_DATAGRAM:
        return None
    if not _FEWEST <= data[2] <= _MOST:
        return None
    # msgpack without the full decoder's bounds: a fixmap of at most 8 entries whose keys must
    # all be known fields, each checked below within bounds as strict (names and a body are far
    # under MAX_STR), so nothing the bounds would refuse gets through.
    try:
        wire = _unpackb(data[2:])
    except Exception:  # msgpack raises several unrelated types on junk
        return None
    get = wire.get
    room, seq, nick, body, ts = get("room"), get("seq"), get("nick"), get("body"), get("ts")
    action, history = get("action", False), get("history", False)
    if not _KEYS.issuperset(wire) or get("k") != "deliver":
        return None
    if type(room) is not str or type(seq) is not int or type(nick) is not str or type(body) is not str:
        return None
    if type(action) is not bool or type(history) is not bool or not 0 <= seq < _TOP:
        return None
    if type(ts) is not float and type(ts) is not int:
        return None
    if len(body) * 4 > limits.MAX_BODY and len(body.encode()) > limits.MAX_BODY:
        return None
    try:
        shown_room = check_room(room) if room else ""
        shown_nick = check_nick(nick)
    except BadName:
        return None
    event = events.checked_deliver(shown_room, seq, shown_nick, body, float(ts), action)
    if history:
        _SET_HISTORY(event, True)
    return event
