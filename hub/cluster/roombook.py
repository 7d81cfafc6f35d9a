"""The cluster's rooms bucket (JetStream KV ``<cluster>_rooms``), on the NATS thread.

A new room's name is claimed before its first event is published: one key per look of the
name (its UTS #39 skeletons, ``look.<token>``, as ``hub.nameindex`` keeps them on one hub),
each made with ``create`` (a compare-and-set: only if absent).  The value is a msgpack map:
``n`` (the room name as shown, named when a look-alike is refused), ``hub`` (who claimed it)
and ``s`` (1 once the claim has all its looks, 0 while it is still taking them).  A look held
for the same room (same folded name) is ours too: two hubs making one room at once both go on,
and JetStream orders their joins.  A look held for another name refuses the claim, and the
looks this claim made are deleted again (``last=revision``).  Looks are taken in sorted order
on every hub, so of two racing look-alikes exactly one wins.  A look held by a claim still in
progress is waited for (``limits.ROOM_CLAIM_SETTLE_WAIT``): that claim may yet lose to a third
name, and a refusal must name the room that was made.

Claims are never released: a cluster room lives as long as its history in JetStream (the
room streams keep each room's last events with no age limit; cluster hubs never expire a
room), and a look-alike must never take over a name whose history still exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

import msgpack
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, ServiceUnavailableError
from nats.js.kv import KeyValue

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster.nicks import look_key
from roomcast.hub.cluster.writer import UNREACHABLE
from roomcast.hub.rooms import confusable_room
from roomcast.shared import limits
from roomcast.shared.lookalikes import looks
from roomcast.shared.names import fold

log = logging.getLogger("roomcast.hub.cluster")

#: Tries to read a look that exists but was deleted before it could be read (an undone claim).
TRIES = 3


class RoomBook:
    """Room claims, one at a time, in the order the hub asked for them."""

    def __init__(self, kv: KeyValue, hub: str, emit: Callable[[m.Input], None]) -> None:
        self.kv = kv
        self.hub = hub
        self.emit = emit
        self.queue: asyncio.Queue[m.ClaimRoom] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, item: m.ClaimRoom) -> None:
        self.queue.put_nowait(item)

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                holder = await self._claim_when_answered(item.room)
            except APIError as exc:  # refused for good (answers that mean "not now" are waited out)
                log.warning("rooms bucket: %r", exc)
                text = f"the cluster cannot check room names now; try /join {item.room} again shortly"
                self.emit(m.RoomResult(item.ref, False, text, "unavailable"))
                continue
            if holder is None:
                self.emit(m.RoomResult(item.ref, True))
            else:
                self.emit(
                    m.RoomResult(item.ref, False, confusable_room(item.room, holder), "name-confusable")
                )

    async def _claim_when_answered(self, room: str) -> str | None:
        """:meth:`claim`, tried again while JetStream does not answer (the bucket's leader
        being elected, as when `make cluster` starts hubs and nodes together, or NATS lost):
        the room's requests wait behind it and are carried out once it answers, as says are.
        (Answering them "unavailable" would tell the client the hub keeps them.)"""
        for tries in itertools.count():
            try:
                return await self.claim(room)
            except (ServiceUnavailableError, *UNREACHABLE) as exc:
                if not tries:  # once per claim: it may go on for as long as NATS is lost
                    log.info("rooms bucket not answering (%r): claiming %s until it does", exc, room)
                await asyncio.sleep(limits.ROOM_CLAIM_RETRY)
        raise AssertionError("unreachable")  # pragma: no cover

    async def claim(self, room: str) -> str | None:
        """Claim each look of ``room``: None when they are all this room's now, else the name
        of the room that holds one (and the looks this claim made are given back)."""
        made: list[tuple[str, int]] = []
        for look in sorted(looks(room)):
            key = look_key(look)
            holder, revision = await self._take(key, _value(room, self.hub, settled=False), room)
            if holder is not None:
                for key_made, rev in made:
                    with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
                        await self.kv.delete(key_made, last=rev)
                return holder
            if revision:
                made.append((key, revision))
        for key, rev in made:  # all ours: settled (a look-alike now meets a room that exists)
            with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
                await self.kv.update(key, _value(room, self.hub, settled=True), last=rev)
        return None

    async def _take(self, key: str, value: bytes, room: str) -> tuple[str | None, int]:
        """Create ``key``: (None, its revision) when made now, (None, 0) when it was this room's
        already, (the other room's name, 0) when another room holds it."""
        holder, waited = "", 0.0
        for _ in range(TRIES + int(limits.ROOM_CLAIM_SETTLE_WAIT / limits.ROOM_CLAIM_STEP)):
            try:
                return None, await self.kv.create(key, value)
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                pass  # exists (nats-py sometimes says not found in a race): look at it
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue  # given back meanwhile: try again
            holder, settled = _claim(entry.value)
            if fold(holder) == fold(room):
                return None, 0
            if holder and (settled or waited >= limits.ROOM_CLAIM_SETTLE_WAIT):
                return holder, 0
            if holder:  # a claim in progress: it may yet lose, and give this look back
                await asyncio.sleep(limits.ROOM_CLAIM_STEP)
                waited += limits.ROOM_CLAIM_STEP
                continue
            with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
                return None, await self.kv.update(key, value, last=entry.revision)  # junk: nobody's
        return holder or "another room", 0

    def close(self) -> None:
        self.task.cancel()


def _value(room: str, hub: str, settled: bool) -> bytes:
    packed: bytes = msgpack.packb({"n": room, "hub": hub, "s": int(settled)}, use_bin_type=True)
    return packed


def _claim(value: bytes | None) -> tuple[str, bool]:
    """The room name in a claim and whether the claim is settled; ("", False) for junk
    (treated as nobody's)."""
    try:
        found = msgpack.unpackb(value or b"", raw=False, max_bin_len=64, max_str_len=256, max_map_len=4)
    except Exception:  # msgpack raises several unrelated types for junk
        return "", False
    name = found.get("n") if isinstance(found, dict) else None
    if not isinstance(name, str):
        return "", False
    return name, bool(found.get("s", 1))
