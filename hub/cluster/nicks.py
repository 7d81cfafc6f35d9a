"""The cluster's nicks bucket (JetStream KV ``<cluster>_nicks``), on the NATS thread.

One key per nick (``subject_token`` of the folded nick), and one per look of it (its UTS #39
skeletons, ``look.<token>``, as ``hub.nameindex`` keeps them on one hub); the value is a
msgpack map: ``hub`` (the hub that holds the session), ``r`` (a hash of the session's resume
secret) and ``n`` (the nick as shown, named when a look-alike is refused).  A claim
is ``create``; when the key exists it is taken over with ``update(last=revision)`` only when
the resume hash matches (the same session moving hubs) or the holder is known not to be alive.
A release deletes the key with ``last=revision`` when the given hub still holds it.  All
operations run one at a time, in the order the hub asked for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster.writer import UNREACHABLE
from roomcast.shared.lookalikes import looks
from roomcast.shared.names import fold, subject_token

log = logging.getLogger("roomcast.hub.cluster")


async def open_bucket(js: JetStreamContext, name: str, replicas: int) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(bucket=name, history=1, replicas=replicas, direct=True)
        except APIError:  # another hub made it meanwhile
            return await js.key_value(name)


class NickBook:
    """Claims and releases, in order."""

    def __init__(self, kv: KeyValue, hub: str, emit: Callable[[m.Input], None]) -> None:
        self.kv = kv
        self.hub = hub
        self.emit = emit
        self.queue: asyncio.Queue[m.ClaimNick | m.ReleaseNick] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, item: m.ClaimNick | m.ReleaseNick) -> None:
        self.queue.put_nowait(item)

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                if isinstance(item, m.ClaimNick):
                    ok, text, code = await self._claim(item)
                    self.emit(m.NickResult(item.ref, ok, text, code=code or "nick-taken"))
                else:
                    await self._release(item)
            except (APIError, *UNREACHABLE) as exc:
                log.warning("nicks bucket: %r", exc)
                if isinstance(item, m.ClaimNick):
                    self.emit(
                        m.NickResult(
                            item.ref,
                            False,
                            "the cluster cannot check nicks now; try again shortly",
                            code="unavailable",
                        )
                    )

    async def _claim(self, claim: m.ClaimNick) -> tuple[bool, str, str]:
        """Claim the folded nick, then each of its looks; a clash on a look undoes the claim."""
        taken = f"nick {claim.nick} is taken on another hub; choose another with --nick"
        if claim.probe:
            return await self._probe(claim, taken)
        value = msgpack.packb({"hub": self.hub, "r": claim.resume, "n": claim.nick}, use_bin_type=True)
        if await self._take(nick_key(claim.nick), value, lambda h: self._yields_nick(claim, h)) is not None:
            return False, taken, "nick-taken"
        for look in sorted(looks(claim.nick)):
            holder = await self._take(look_key(look), value, lambda h: self._yields_look(claim, h))
            if holder is not None:
                await self._release(m.ReleaseNick(claim.nick, self.hub))
                return False, self._confusable(claim.nick, holder), "name-confusable"
        return True, "", ""

    async def _probe(self, claim: m.ClaimNick, taken: str) -> tuple[bool, str, str]:
        """Whether ``claim.nick`` or a look-alike is held by someone else: claims nothing."""
        holder = await self._holder(nick_key(claim.nick))
        if holder is not None and not await self._yields_nick(claim, holder):
            return False, taken, "nick-taken"
        for look in sorted(looks(claim.nick)):
            holder = await self._holder(look_key(look))
            if holder is not None and not await self._yields_look(claim, holder):
                return False, self._confusable(claim.nick, holder), "name-confusable"
        return True, "", ""

    def _confusable(self, nick: str, holder: dict[str, Any]) -> str:
        where = "here" if holder.get("hub") == self.hub else "on another hub"
        return f"nick {nick} looks like {holder.get('n', '')}, who is {where}; choose another with --nick"

    async def _take(
        self, key: str, value: bytes, yields: Callable[[dict[str, Any]], Awaitable[bool]]
    ) -> dict[str, Any] | None:
        """Create ``key``, or take it over when its holder ``yields``: None when it is ours now,
        else the holder that keeps it."""
        holder: dict[str, Any] = {}
        for _ in range(3):
            try:
                await self.kv.create(key, value)
                return None
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                pass  # exists (nats-py sometimes says not found in a race): look at it
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue
            holder = _decode(entry.value)
            if not await yields(holder):
                return holder
            try:
                await self.kv.update(key, value, last=entry.revision)
                return None
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                continue
        return holder

    async def _holder(self, key: str) -> dict[str, Any] | None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        return _decode(entry.value)

    async def _yields_nick(self, claim: m.ClaimNick, holder: dict[str, Any]) -> bool:
        """The nick's holder is this hub, the same session (moving hubs), or a lost hub."""
        mine = holder.get("hub") == self.hub or holder.get("r") == claim.resume
        return mine or (claim.sure and holder.get("hub") not in claim.alive)

    async def _yields_look(self, claim: m.ClaimNick, holder: dict[str, Any]) -> bool:
        """A look is held for the same nick (ours now), by the same session (renamed to a
        look-alike of its own nick), by a lost hub, or by a claim whose nick is no longer held
        (a release cut short): a live look-alike keeps it."""
        held = str(holder.get("n", ""))
        if fold(held) == fold(claim.nick) or holder.get("r") == claim.resume:
            return True
        if claim.sure and holder.get("hub") not in claim.alive:
            return True
        owner = await self._holder(nick_key(held)) if held else None
        return owner is None or owner.get("r") != holder.get("r")  # the session, on whichever hub

    async def _release(self, release: m.ReleaseNick) -> None:
        """Drop the nick's looks, then the nick, where ``release.owner`` still holds them."""
        for look in sorted(looks(release.nick)):
            await self._drop(look_key(look), release, same_nick=True)
        await self._drop(nick_key(release.nick), release, same_nick=False)

    async def _drop(self, key: str, release: m.ReleaseNick, same_nick: bool) -> None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return
        holder = _decode(entry.value)
        if holder.get("hub") != release.owner:
            return  # claimed again meanwhile: then it is someone's now
        if same_nick and fold(str(holder.get("n", ""))) != fold(release.nick):
            return  # the look of another nick of this hub
        with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
            await self.kv.delete(key, last=entry.revision)

    def close(self) -> None:
        self.task.cancel()


def nick_key(nick: str) -> str:
    return subject_token(fold(nick))


def look_key(look: str) -> str:
    """A look's key: never a nick's (those have no dot)."""
    return "look." + subject_token(look)


def _decode(value: bytes | None) -> dict[str, Any]:
    try:
        found = msgpack.unpackb(value or b"", raw=False, max_bin_len=64, max_str_len=256, max_map_len=4)
    except Exception:  # junk in the bucket: treat as nobody's
        return {}
    return found if isinstance(found, dict) else {}
