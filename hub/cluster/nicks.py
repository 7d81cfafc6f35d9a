"""The cluster's nicks bucket (JetStream KV ``<cluster>_nicks``), on the NATS thread.

One key per nick (``subject_token`` of the folded nick); the value is a msgpack map: ``hub``
(the hub that holds the session) and ``r`` (a hash of the session's resume secret).  A claim
is ``create``; when the key exists it is taken over with ``update(last=revision)`` only when
the resume hash matches (the same session moving hubs) or the holder is known not to be alive.
A release deletes the key with ``last=revision`` when the given hub still holds it.  All
operations run one at a time, in the order the hub asked for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import msgpack
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster.writer import UNREACHABLE
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
                    ok, text = await self._claim(item)
                    self.emit(m.NickResult(item.ref, ok, text))
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

    async def _claim(self, claim: m.ClaimNick) -> tuple[bool, str]:
        key = subject_token(fold(claim.nick))
        value = msgpack.packb({"hub": self.hub, "r": claim.resume}, use_bin_type=True)
        taken = f"nick {claim.nick} is taken on another hub; choose another with --nick"
        for _ in range(3):
            try:
                await self.kv.create(key, value)
                return True, ""
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                pass  # exists (nats-py sometimes says not found in a race): look at it
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue
            holder = _decode(entry.value)
            mine = holder.get("hub") == self.hub or holder.get("r") == claim.resume
            gone = claim.sure and holder.get("hub") not in claim.alive
            if not (mine or gone):
                return False, taken
            try:
                await self.kv.update(key, value, last=entry.revision)
                return True, ""
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                continue
        return False, taken

    async def _release(self, release: m.ReleaseNick) -> None:
        key = subject_token(fold(release.nick))
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return
        if _decode(entry.value).get("hub") == release.owner:
            # Claimed again meanwhile: then it is someone's now.
            with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
                await self.kv.delete(key, last=entry.revision)

    def close(self) -> None:
        self.task.cancel()


def _decode(value: bytes | None) -> dict[str, Any]:
    try:
        found = msgpack.unpackb(value or b"", raw=False, max_bin_len=64, max_str_len=128, max_map_len=4)
    except Exception:  # junk in the bucket: treat as nobody's
        return {}
    return found if isinstance(found, dict) else {}
