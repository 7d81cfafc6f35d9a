"""The NATS side of cluster mode, on an asyncio loop (nats-py is asyncio-only).

It connects, makes sure the room streams exist (and were made with the same
``--stream-shards``), consumes every room subject with one ordered push consumer per stream
from the start (so this hub's room rings hold what the streams keep), and publishes this hub's
proposals through :class:`~hub.cluster.writer.RoomWriter`.  Everything it learns goes to the
hub as :mod:`hub.engine` inputs through ``emit``; it decides nothing about rooms or clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster import wire
from roomcast.hub.cluster.nicks import NickBook, open_bucket
from roomcast.hub.cluster.options import ClusterError, ClusterOptions
from roomcast.hub.cluster.roombook import RoomBook
from roomcast.hub.cluster.wire import BadClusterData, Names, decode_message, stream_seq
from roomcast.hub.cluster.writer import UNREACHABLE, RoomWriter
from roomcast.shared import limits

log = logging.getLogger("roomcast.hub.cluster")

#: Tries per server at start: a hub whose NATS is not there says so and exits 1.
START_ATTEMPTS = 3
#: What a JetStream still electing its leaders answers (a cluster started with its hubs): at
#: start, waited out for up to JETSTREAM_START_WAIT.  A stream or bucket still not found after
#: its creation failed is one of them: the creation was refused as "unavailable" (seen with
#: `make cluster`, where the hubs start with the nodes), or another hub's is not visible yet.
NOT_YET = (*UNREACHABLE, ServiceUnavailableError, NotFoundError)

T = TypeVar("T")


class NatsSide:
    """One hub's NATS connection, streams, consumers and writer."""

    def __init__(self, options: ClusterOptions, emit: Callable[[m.Input], None]) -> None:
        self.options = options
        self.names = Names(options.cluster, options.shards)
        self.emit = emit
        self.nc: NatsClient | None = None
        self.writer: RoomWriter | None = None
        self.available = False
        self.replicas = 1
        self.epoch = b""
        #: Stream sequence each stream had at start: the hub is ready when its consumers got there.
        self._catch_up: dict[int, int] = {}
        self._probe: asyncio.Task[None] | None = None
        self.nicks: NickBook | None = None
        self.rooms: RoomBook | None = None
        self._subs: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            self.nc = await nats.connect(
                servers=list(self.options.servers), name=self.options.hub_name, connect_timeout=2,
                reconnect_time_wait=0.5, max_reconnect_attempts=START_ATTEMPTS, ping_interval=2,
                max_outstanding_pings=2, disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                error_cb=self._error,
            )  # fmt: skip
        except Exception as exc:
            raise ClusterError(
                f"cannot reach NATS at {','.join(self.options.servers)} ({exc or type(exc).__name__}); "
                "is nats-server running (with -js)? check --nats"
            ) from None
        # Connected once: from now on, never stop reconnecting (requests wait, "unavailable").
        self.nc.options["max_reconnect_attempts"] = -1
        js = self.nc.jetstream(timeout=limits.NATS_API_TIMEOUT)
        servers = len(self.nc._server_info.get("connect_urls") or []) or 1
        self.replicas = self.options.replicas or (3 if servers >= 3 else 1)
        for shard in range(self.options.shards):
            info = await self._ensure_stream(shard)
            self._catch_up[shard] = info.state.last_seq if info.state.messages else 0
            if shard == 0:
                created = str(info.created or info.config.description)
                self.epoch = hashlib.sha256(f"{self.options.cluster}:{created}".encode()).digest()[:8]
        self.writer = RoomWriter(js, self.options.hub_name, self._stream_of, self._done,
                                 self._unreachable, self._reached)  # fmt: skip
        nicks, rooms = self.names.nicks_bucket(), self.names.rooms_bucket()
        kv = await self._when_jetstream_answers(lambda: open_bucket(js, nicks, self.replicas))
        self.nicks = NickBook(kv, self.options.hub_name, self.emit)
        rooms_kv = await self._when_jetstream_answers(lambda: open_bucket(js, rooms, self.replicas))
        self.rooms = RoomBook(rooms_kv, self.options.hub_name, self.emit)
        await self.nc.subscribe(self.names.heartbeats(), cb=self._on_heartbeat)
        await self.nc.subscribe(self.names.private(self.options.hub_name), cb=self._on_private)
        for shard in range(self.options.shards):
            self._subs.append(await js.subscribe(
                self.names.stream_subjects(shard), stream=self.names.stream(shard), cb=self._on_msg,
                ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL, idle_heartbeat=1.0,
                pending_msgs_limit=1_000_000,
            ))  # fmt: skip
        self._check_ready()

    async def _when_jetstream_answers(self, step: Callable[[], Awaitable[T]]) -> T:
        """A start-up step (a stream or bucket found or made), tried again while JetStream is
        still electing its leaders (a cluster started together with its hubs), up to
        JETSTREAM_START_WAIT."""
        deadline = asyncio.get_running_loop().time() + limits.JETSTREAM_START_WAIT
        while True:
            try:
                return await step()
            except NOT_YET as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    raise ClusterError(
                        f"JetStream does not answer ({exc!r}) within {limits.JETSTREAM_START_WAIT:g} s; "
                        "is nats-server running with -js?"
                    ) from None
                log.info("waiting for JetStream (%r)", exc)
                await asyncio.sleep(limits.JETSTREAM_START_RETRY)

    async def _ensure_stream(self, shard: int) -> api.StreamInfo:
        """The shard's stream, made if missing."""
        info = await self._when_jetstream_answers(lambda: self._stream_info_or_create(shard))
        found = Names.shards_in(info.config.description or "")
        if found != self.options.shards:
            raise ClusterError(
                f"stream {info.config.name} was created with --stream-shards {found}, not {self.options.shards}; "
                f"every hub of cluster {self.options.cluster} must use --stream-shards {found}"
            )
        return info

    async def _stream_info_or_create(self, shard: int) -> api.StreamInfo:
        assert self.nc is not None
        jsm = self.nc.jsm(timeout=5.0)  # creating a replicated stream takes longer than a publish
        name = self.names.stream(shard)
        try:
            return await jsm.stream_info(name)
        except NotFoundError:
            config = api.StreamConfig(
                name=name, description=self.names.description(), subjects=[self.names.stream_subjects(shard)],
                max_msgs_per_subject=limits.HISTORY_PER_ROOM, storage=api.StorageType.FILE,
                num_replicas=self.replicas, duplicate_window=limits.NATS_DUPLICATE_WINDOW,
                discard=api.DiscardPolicy.OLD, allow_direct=True,
            )  # fmt: skip
            try:
                info = await jsm.add_stream(config)
                log.info("created stream %s (%d replicas)", name, self.replicas)
                return info
            except APIError:  # made meanwhile by another hub (its choices hold), or refused for now
                return await jsm.stream_info(name)

    def _stream_of(self, subject: str) -> str:
        return self.names.stream(int(subject.split(".")[-2]))

    # --- consuming -------------------------------------------------------------------------------

    async def _on_msg(self, msg: Msg) -> None:
        """One stored message: its events go to the hub (gathered with the rest of this read,
        see ``hub.cluster.bridge``), the writer learns the subject's last sequence."""
        subject = msg.subject
        sseq = stream_seq(msg.reply)
        assert self.writer is not None
        try:
            batch, hub = decode_message(msg.data, subject.rsplit(".", 1)[-1])
        except BadClusterData as exc:
            self.writer.consumed(subject, sseq, None, [(msg.headers or {}).get("Nats-Msg-Id", "")])
            self.emit(m.BadData(f"{subject} #{sseq}: {exc}"))
        else:
            self.writer.consumed(subject, sseq, batch[-1][0].seq, [i for _, i in batch])
            emit = self.emit
            for event, event_id in batch:
                emit(m.Committed(event, event_id, hub))
        if self._catch_up:
            shard = int(subject.split(".")[-2]) if subject.count(".") >= 3 else 0
            if shard in self._catch_up and sseq >= self._catch_up[shard]:
                del self._catch_up[shard]
                self._check_ready()

    def _check_ready(self) -> None:
        for shard, last in list(self._catch_up.items()):
            if last == 0:
                del self._catch_up[shard]
        if not self._catch_up:
            self._reached()

    # --- availability ----------------------------------------------------------------------------

    def _reached(self) -> None:
        if not self.available and not self._catch_up:
            self.available = True
            self.emit(m.Status(True, server=self.connected_url()))
            log.info("NATS JetStream available")

    def _unreachable(self, reason: str) -> None:
        if self.available:
            self.available = False
            self.emit(m.Status(False, reason, self.connected_url()))
            log.warning("NATS unavailable: %s", reason)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        """While unavailable and nothing is being published, ask the first stream's info."""
        assert self.nc is not None
        jsm = self.nc.jsm(timeout=limits.NATS_API_TIMEOUT)
        while not self.available:
            try:
                await jsm.stream_info(self.names.stream(0))
                self._reached()
            except (APIError, *UNREACHABLE):
                await asyncio.sleep(0.25)
            except Exception:  # e.g. a connection being replaced
                await asyncio.sleep(0.25)

    async def _disconnected(self) -> None:
        self._unreachable("disconnected from NATS")

    async def _reconnected(self) -> None:
        log.info(
            "reconnected to NATS at %s",
            self.nc.connected_url.netloc if self.nc and self.nc.connected_url else "?",
        )

    async def _error(self, exc: Exception) -> None:
        log.debug("NATS: %r", exc)

    # --- publishing ------------------------------------------------------------------------------

    def submit(self, outputs: list[m.Output]) -> None:
        """(NATS thread) What the hub handed over in one loop turn."""
        assert self.writer is not None and self.nicks is not None and self.rooms is not None
        for item in outputs:
            if isinstance(item, m.Proposal):
                self.writer.submit(self.names.subject(item.room), item)
            elif isinstance(item, m.ClaimNick | m.ReleaseNick):
                self.nicks.submit(item)
            elif isinstance(item, m.ClaimRoom):
                self.rooms.submit(item)
            elif isinstance(item, m.Beat):
                self._spawn(self._beat(item.snapshot))
            elif isinstance(item, m.PrivateOut):
                self._spawn(self._send_private(item))
            else:
                self._spawn(self._answer_private(item))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _beat(self, snapshot: m.Snapshot) -> None:
        assert self.nc is not None and self.writer is not None
        if self.nc.is_connected:
            try:
                await self.nc.publish(
                    self.names.heartbeat(self.options.hub_name), wire.encode_snapshot(snapshot)
                )
            except Exception as exc:  # a heartbeat lost while reconnecting: the next one goes
                log.debug("heartbeat: %r", exc)
        stats = self.writer.stats
        times = sorted(stats.latencies)
        lag = sum(int(getattr(sub, "pending_msgs", 0)) for sub in self._subs)
        self.emit(m.Figures(
            publish_p50_ms=round(1000 * times[len(times) // 2], 3) if times else 0.0,
            publish_p99_ms=round(1000 * times[int(len(times) * 0.99)], 3) if times else 0.0,
            published=stats.published, conflicts=stats.conflicts, retries=stats.retries, consumer_lag=lag,
        ))  # fmt: skip

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            snapshot = wire.decode_snapshot(msg.data)
        except BadClusterData as exc:
            self.emit(m.BadData(str(exc)))
            return
        if snapshot.hub != self.options.hub_name:
            self.emit(m.Seen(snapshot))

    async def _on_private(self, msg: Msg) -> None:
        try:
            to, sender, body, ts = wire.decode_private(msg.data)
        except BadClusterData as exc:
            self.emit(m.BadData(str(exc)))
            return
        if msg.reply:
            self.emit(m.PrivateIn(msg.reply, to, sender, body, ts))

    async def _send_private(self, out: m.PrivateOut) -> None:
        assert self.nc is not None
        data = wire.encode_private(out.to, out.sender, out.body, out.ts)
        try:
            answer = await self.nc.request(
                self.names.private(out.hub), data, timeout=2 * limits.NATS_API_TIMEOUT
            )
            ok, text = wire.decode_answer(answer.data)
        except (BadClusterData, *UNREACHABLE) as exc:
            ok, text = False, f"the hub of {out.to} did not answer ({type(exc).__name__}); try again"
        self.emit(m.PrivateDone(out.ref, ok, text))

    async def _answer_private(self, answer: m.PrivateAnswer) -> None:
        assert self.nc is not None
        try:
            await self.nc.publish(answer.reply, wire.encode_answer(answer.ok, answer.text))
        except Exception as exc:  # the asker times out and says so
            log.debug("private answer: %r", exc)

    def _done(self, proposal: m.Proposal, result: int | None) -> None:
        if result is None:
            self.emit(m.Failed(proposal.msg_id, "not confirmed in time"))
        elif result:
            self.emit(m.Duplicate(proposal.msg_id, result))

    def connected_url(self) -> str:
        url = self.nc.connected_url if self.nc is not None else None
        return f"{url.hostname}:{url.port}" if url is not None else ""

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        if self.nicks is not None:
            self.nicks.close()
        if self.rooms is not None:
            self.rooms.close()
        for task in list(self._tasks):
            task.cancel()
        if self._probe is not None:
            self._probe.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 2.0)
            except Exception as exc:  # closing is best effort: the process is going anyway
                log.debug("closing NATS: %r", exc)
