"""What goes over NATS, as pure functions: names of streams and subjects, the message format.

- Rooms map to one of ``shards`` streams ``<cluster>_rooms_<i>`` by a stable hash (CRC-32) of
  the folded room name; stream ``i`` holds the subjects ``<cluster>.room.<i>.*``, one per room:
  ``<cluster>.room.<i>.<token>`` with ``token = shared.names.subject_token(folded name)``.
- A message body is a msgpack map: ``hub`` (the publishing hub's name), ``evs`` (1 to
  ``MAX_BATCH`` room events of the room, contiguous seqs, each a Roomcast envelope, see
  ``shared.envelope``) and ``ids`` (each event's proposal id).  Headers: ``Nats-Msg-Id``
  (dedupe) and ``Nats-Expected-Last-Subject-Sequence`` (order).
- Anything else found on a room subject is bad data: counted and skipped.
"""

from __future__ import annotations

import functools
import itertools
import re
import zlib
from typing import Any

import attrs
import msgpack

from roomcast.hub.cluster.messages import Snapshot
from roomcast.shared import envelope, events, fastwire, limits
from roomcast.shared.names import BadName, check_nick, check_room, fold, subject_token

#: Room events one stored message may carry (published under one compare-and-set).
MAX_BATCH = 64

CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


class BadClusterData(ValueError):
    """A message on a room subject that is not a room event of that room."""


def check_cluster_name(name: str) -> str:
    if not CLUSTER_NAME.fullmatch(name):
        raise ValueError(f"cluster name {name!r} must be 1-32 letters, digits, '_' or '-'")
    return name


@functools.lru_cache(maxsize=4096)
def room_token(room: str) -> str:
    """The subject token of ``room`` (its folded name, encoded): folding is dear and every
    message of a busy room needs it, so the busiest rooms' tokens are kept."""
    return subject_token(fold(room))


def shard_of(room: str, shards: int) -> int:
    """The stream a room lives in: stable across hubs, runs and Python versions."""
    return zlib.crc32(fold(room).encode()) % shards


@attrs.frozen
class Names:
    """Every stream and subject name of one roomcast cluster on a NATS system."""

    cluster: str = "roomcast"
    shards: int = 1

    def stream(self, shard: int) -> str:
        return f"{self.cluster}_rooms_{shard}"

    def stream_subjects(self, shard: int) -> str:
        return f"{self.cluster}.room.{shard}.*"

    def subject(self, room: str) -> str:
        return f"{self.cluster}.room.{shard_of(room, self.shards)}.{room_token(room)}"

    def heartbeat(self, hub: str) -> str:
        return f"{self.cluster}.hub.{hub}"

    def heartbeats(self) -> str:
        return f"{self.cluster}.hub.*"

    def private(self, hub: str) -> str:
        return f"{self.cluster}.msg.{hub}"

    def nicks_bucket(self) -> str:
        return f"{self.cluster}_nicks"

    def rooms_bucket(self) -> str:
        return f"{self.cluster}_rooms"

    def description(self) -> str:
        """Written on every room stream: a hub started with other shards refuses to run."""
        return f"roomcast cluster {self.cluster}: room events, stream-shards={self.shards}"

    @staticmethod
    def shards_in(description: str) -> int | None:
        found = re.search(r"stream-shards=(\d+)", description or "")
        return int(found.group(1)) if found else None


def stream_seq(reply: str) -> int:
    """The stream sequence of a JetStream message, from its reply subject: ``$JS.ACK.<stream>.
    <consumer>.<delivered>.<stream seq>...`` (9 tokens), or with ``<domain>.<account hash>``
    after ``ACK`` (12, or 11 from older servers).  nats-py's ``Msg.metadata`` parses the same,
    and a timestamp, into three objects, for every message."""
    tokens = reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


#: One stored message: the room events it carries (contiguous seqs), each with its proposal id.
Batch = list[tuple[events.RoomEvent, str]]


def encode_message(hub: str, batch: Batch) -> bytes:
    body = {"hub": hub, "evs": [_encoded(event) for event, _ in batch], "ids": [i for _, i in batch]}
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def decode_message(data: bytes, token: str) -> tuple[Batch, str]:
    """The room events (with their proposal ids) and the publishing hub of a message found on
    the subject ending in ``token``; raise :class:`BadClusterData` for anything else."""
    try:
        body: Any = msgpack.unpackb(
            data, raw=False, max_bin_len=4096, max_str_len=256, max_array_len=MAX_BATCH
        )
    except Exception as exc:  # msgpack raises several unrelated types for junk
        raise BadClusterData(f"not msgpack: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("hub"), str):
        raise BadClusterData("not a map with hub (str)")
    evs, ids = body.get("evs"), body.get("ids")
    if not isinstance(evs, list) or not isinstance(ids, list) or not evs or len(evs) != len(ids):
        raise BadClusterData("evs and ids are not two lists of the same length")
    batch = [(_room_event(ev), i) for ev, i in zip(evs, ids, strict=True)]
    if not all(isinstance(i, str) for _, i in batch):
        raise BadClusterData("ids are not strings")
    for room in {event.room for event, _ in batch}:  # one name (one cached fold) in a usual batch
        if room_token(room) != token:
            raise BadClusterData(f"an event is for room {room}, not this subject")
    if any(b[0].seq != a[0].seq + 1 for a, b in itertools.pairwise(batch)):
        raise BadClusterData("the events' seqs are not contiguous")
    return batch, body["hub"]


def _encoded(event: events.RoomEvent) -> bytes:
    """A room event's envelope: a line through the fast lane (the very same bytes)."""
    if type(event) is events.Deliver:
        fast = fastwire.encode_deliver(
            event.room, event.seq, event.nick, event.body, event.ts, event.action, event.history
        )
        if fast is not None:
            return fast
    return envelope.encode(event)


def _room_event(ev: object) -> events.RoomEvent:
    if not isinstance(ev, bytes):
        raise BadClusterData("an event is not bytes")
    event = _fast_line(ev)
    if event is None:
        try:
            event = envelope.decode(ev).event
        except envelope.RemoteProtocolError as exc:
            raise BadClusterData(f"an event is not an envelope: {exc.text}") from None
    if not isinstance(event, events.Deliver | events.Presence) or not event.room:
        raise BadClusterData(f"an event is a {type(event).__name__}, not a room event")
    if event.seq <= 0 or event.history:
        raise BadClusterData(f"an event of room {event.room} has seq {event.seq} or is marked as history")
    return event


#: How a line's envelope starts (as ``shared.fastwire.encode_deliver`` writes it): the header,
#: a fixmap of 6 to 8 entries, then the kind.
_LINE_HEAD = b"\xa1k\xa7deliver"
_LINE_KEYS = frozenset(("k", "room", "seq", "nick", "body", "ts", "action", "history"))
_TOP = 2**63


def _fast_line(ev: bytes) -> events.Deliver | None:
    """A line's event read without the full decoder (one msgpack call, a few type tests, the
    names checked through their caches): the very event ``envelope.decode`` gives, or None for
    anything else (another kind, an unusual shape, a refused field), which then takes the full
    decoder and its precise error.  Pinned against it by property tests."""
    if ev[3:13] != _LINE_HEAD or ev[:2] != fastwire.HEADER or not 0x86 <= ev[2] <= 0x88:
        return None
    if len(ev) > limits.MAX_DATAGRAM:
        return None
    try:
        wire = msgpack.unpackb(ev[2:])
    except Exception:  # msgpack raises several unrelated types on junk
        return None
    get = wire.get
    room, seq, nick, body, ts = get("room"), get("seq"), get("nick"), get("body"), get("ts")
    action = get("action", False)
    if len(wire) != 6 and not _LINE_KEYS.issuperset(wire):  # 6: exactly the ones read here
        return None
    if type(room) is not str or type(seq) is not int or type(nick) is not str or type(body) is not str:
        return None
    if get("history", False) is not False or type(action) is not bool or type(ts) not in (float, int):
        return None
    if not 0 <= seq < _TOP or (len(body) * 4 > limits.MAX_BODY and len(body.encode()) > limits.MAX_BODY):
        return None
    try:
        room, nick = check_room(room) if room else "", check_nick(nick)
    except BadName:
        return None
    return events.checked_deliver(room, seq, nick, body, float(ts), action)


# --- heartbeats and private lines (core NATS, not stored) -------------------------------------------
#
# ``<cluster>.hub.<hub>``: a hub's heartbeat, msgpack {hub, rooms: {room: [nick...]}, nicks: [...],
# clients}.  ``<cluster>.msg.<hub>``: a request carrying a private line, msgpack {to, from, body,
# ts}, answered with msgpack {ok, text}.

LIMITS: dict[str, Any] = {
    "max_str_len": 1024,
    "max_bin_len": 64,
    "max_array_len": 100_000,
    "max_map_len": 100_000,
}


#: Largest heartbeat with member lists; NATS refuses messages over its max_payload (1 MB).
MAX_HEARTBEAT = 900_000


def encode_snapshot(snapshot: Snapshot) -> bytes:
    body = {"hub": snapshot.hub, "rooms": {room: list(nicks) for room, nicks in snapshot.rooms},
            "nicks": list(snapshot.nicks), "clients": snapshot.clients, "timeout": snapshot.timeout}  # fmt: skip
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    if len(packed) > MAX_HEARTBEAT:  # a sign of life still goes, or the others take us for dead
        body.update(rooms={}, nicks=[], partial=True)
        packed = msgpack.packb(body, use_bin_type=True)
    return packed


def decode_snapshot(data: bytes) -> Snapshot:
    try:
        body = msgpack.unpackb(data, raw=False, **LIMITS)
        rooms = tuple((str(room), tuple(str(n) for n in nicks)) for room, nicks in body["rooms"].items())
        nicks = tuple(str(n) for n in body["nicks"])
        partial = bool(body.get("partial", False))
        return Snapshot(str(body["hub"]), rooms, nicks, int(body["clients"]), float(body["timeout"]), partial)
    except Exception as exc:  # junk from the network: one bad heartbeat, counted by the caller
        raise BadClusterData(f"bad heartbeat: {exc!r}") from None


def encode_private(to: str, sender: str, body: str, ts: float) -> bytes:
    packed: bytes = msgpack.packb({"to": to, "from": sender, "body": body, "ts": ts}, use_bin_type=True)
    return packed


def decode_private(data: bytes) -> tuple[str, str, str, float]:
    try:
        body = msgpack.unpackb(data, raw=False, **LIMITS)
        to, sender, text = (
            events.Msg(id=0, to=body["to"], body=body["body"]).to,
            str(body["from"]),
            body["body"],
        )
        events.Deliver(room="", seq=1, nick=sender, body=text, ts=float(body["ts"]))  # validates the fields
        return to, sender, text, float(body["ts"])
    except Exception as exc:
        raise BadClusterData(f"bad private line: {exc!r}") from None


def encode_answer(ok: bool, text: str) -> bytes:
    packed: bytes = msgpack.packb({"ok": ok, "text": text}, use_bin_type=True)
    return packed


def decode_answer(data: bytes) -> tuple[bool, str]:
    try:
        body = msgpack.unpackb(data, raw=False, **LIMITS)
        return bool(body["ok"]), str(body.get("text", ""))
    except Exception as exc:
        raise BadClusterData(f"bad answer: {exc!r}") from None
