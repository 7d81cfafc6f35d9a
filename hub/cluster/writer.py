"""Publishes proposed room events to JetStream, one room subject at a time, by compare-and-set.

Runs on the NATS thread's asyncio loop.  Each room subject has a queue of this hub's
proposals; the head is published with ``Nats-Expected-Last-Subject-Sequence`` set to the
stream sequence of the subject's last message and the room seq one beyond that message's, so
JetStream stores it only if nobody else got that seq first: a partitioned or zombie hub can
never publish under a used seq.  On a conflict (10071 "wrong last sequence: N") the writer
waits until the consumer has seen message N (or reads it directly) and tries again with the
new seq.  Every publish carries ``Nats-Msg-Id`` (the proposal's id), so a publish retried
after a timeout is stored once.  On a single non-clustered server the expected-sequence check
runs before dedupe, so a retried publish that had in fact been stored gets 10071: it is
recognised because the consumer has seen its id.

One publish is in flight per room per hub (about 1,000 publishes/s per room); what queues
up meanwhile goes as one message of up to ``MAX_BATCH`` events under one compare-and-set, so
a busy room carries many more events than publishes.  A publish counts as done as soon as
this hub's own consumer sees its message stored, which often comes before JetStream's ack:
the room's next publish does not wait for the ack (its late arrival only feeds the latency
figures).  (A room lease in a KV bucket that let one writer pipeline is not done: measured,
two hubs contending for one room still carry more than 2,000 lines/s, see bench/cluster.py.)
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError

from roomcast.hub.cluster.messages import Proposal
from roomcast.hub.cluster.wire import MAX_BATCH, BadClusterData, decode_message, encode_message
from roomcast.shared import limits

WRONG_LAST = re.compile(r"wrong last sequence: (\d+)")
#: Transient JetStream conditions: no quorum or a write in progress (replicated stream),
#: temporarily unavailable.
TRANSIENT_CODES = frozenset({10164, 10163, 10008})
UNREACHABLE = (asyncio.TimeoutError, NatsTimeoutError, NoStreamResponseError, NoRespondersError,
               ConnectionClosedError)  # fmt: skip


@attrs.define(eq=False)
class SubjectState:
    """What this hub knows of one room subject: its last message and the room seq it holds."""

    last_sseq: int = 0
    room_seq: int = 0
    queue: deque[Proposal] = attrs.Factory(deque)
    busy: bool = False
    progress: asyncio.Event = attrs.Factory(asyncio.Event)
    #: The proposal id whose message the publish in flight waits for, and the future that
    #: the consumer resolves when it sees it stored (before the ack, often).
    watch: tuple[str, asyncio.Future[None]] | None = None

    def advance(self, sseq: int, room_seq: int | None) -> None:
        if sseq > self.last_sseq:
            self.last_sseq = sseq
            if room_seq is not None:
                self.room_seq = max(self.room_seq, room_seq)
            self.progress.set()


@attrs.define
class WriterStats:
    published: int = 0
    conflicts: int = 0
    retries: int = 0
    latencies: deque[float] = attrs.Factory(lambda: deque(maxlen=1000))


class RoomWriter:
    """This hub's publishes, per room subject in proposal order."""

    def __init__(
        self,
        js: JetStreamContext,
        hub_name: str,
        stream_of: Callable[[str], str],
        on_done: Callable[[Proposal, int | None], None],
        on_unreachable: Callable[[str], None],
        on_reached: Callable[[], None],
    ) -> None:
        self.js = js
        self.hub_name = hub_name
        self.stream_of = stream_of
        self.on_done = on_done
        self.on_unreachable = on_unreachable
        self.on_reached = on_reached
        self.subjects: dict[str, SubjectState] = {}
        #: Ids of this hub's proposals not yet settled, and those the consumer saw stored.
        self.inflight: set[str] = set()
        self.seen: set[str] = set()
        #: Ids of client lines (``c.``) consumed lately, oldest first: a resend of one (same id)
        #: proposed before the hub loop heard of it is marked seen, never published again.
        self.recent: dict[str, None] = {}
        self.stats = WriterStats()
        self._tasks: set[asyncio.Task[Any]] = set()

    def state(self, subject: str) -> SubjectState:
        st = self.subjects.get(subject)
        if st is None:
            st = self.subjects[subject] = SubjectState()
        return st

    def consumed(self, subject: str, sseq: int, room_seq: int | None, msg_ids: list[str]) -> None:
        """The consumer saw message ``sseq`` on ``subject`` (``room_seq`` None: bad data)."""
        st = self.state(subject)
        st.advance(sseq, room_seq)
        self.seen.update(i for i in msg_ids if i in self.inflight)
        if st.watch is not None and st.watch[0] in msg_ids:
            _resolve(st.watch[1])
        recent = self.recent
        for i in msg_ids:
            if i[:2] == "c.":
                recent[i] = None
        while len(recent) > limits.CLUSTER_RECENT_IDS_KEPT:
            del recent[next(iter(recent))]

    def submit(self, subject: str, proposal: Proposal) -> None:
        st = self.state(subject)
        st.queue.append(proposal)
        self.inflight.add(proposal.msg_id)
        if proposal.msg_id in self.recent:
            self.seen.add(proposal.msg_id)  # stored already (a line resent): it is not published
        if not st.busy:
            st.busy = True
            task = asyncio.get_running_loop().create_task(self._drain(subject, st))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, subject: str, st: SubjectState) -> None:
        """Publish the queue in order: what queued up while one publish was in flight goes as
        one message (up to MAX_BATCH events) under one compare-and-set."""
        try:
            while st.queue:
                batch = [st.queue.popleft()]
                while (
                    st.queue and len(batch) < MAX_BATCH and _batchable(batch[0]) and _batchable(st.queue[0])
                ):
                    batch.append(st.queue.popleft())
                result = await self._publish(subject, st, batch)
                for proposal in batch:
                    self.inflight.discard(proposal.msg_id)
                    self.seen.discard(proposal.msg_id)
                    self.on_done(proposal, None if result is None else result.get(proposal.msg_id, 0))
        finally:
            st.busy = False

    async def _publish(self, subject: str, st: SubjectState, batch: list[Proposal]) -> dict[str, int] | None:
        """Publish until stored: {} when stored now (the consumer brings it), the room seqs
        it got when it had been stored before (a duplicate), None when given up."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + limits.CLUSTER_PUBLISH_GIVE_UP
        first = True
        while loop.time() < give_up:
            # Stored by an earlier try whose answer we missed, or (a resend) before it was given up.
            batch = [p for p in batch if p.msg_id not in self.seen]
            if not batch:
                return {}
            msg_id = batch[0].msg_id if len(batch) == 1 else f"b.{batch[0].msg_id}.{len(batch)}"
            if not first:
                self.stats.retries += 1
            first = False
            seq, expected = st.room_seq + 1, st.last_sseq
            events = [(attrs.evolve(p.event, seq=seq + n), p.msg_id) for n, p in enumerate(batch)]
            body = encode_message(self.hub_name, events)
            headers = {"Nats-Msg-Id": msg_id, "Nats-Expected-Last-Subject-Sequence": str(expected)}
            try:
                ack = await self._ack_or_stored(subject, st, batch[0].msg_id, body, headers)
            except BadRequestError as exc:
                await self._conflict(subject, st, exc)
                continue
            except APIError as exc:
                if exc.err_code not in TRANSIENT_CODES and exc.code != 503:
                    self.on_unreachable(f"JetStream refused a publish: {exc.description}")
                await asyncio.sleep(0.1)
                continue
            except UNREACHABLE:
                self.on_unreachable("JetStream does not answer")
                await asyncio.sleep(0.2)
                continue
            self.on_reached()
            if ack is not None and ack.duplicate:
                return await self._stored_seqs(subject, ack.seq)
            self.stats.published += len(batch)
            if ack is not None:
                st.advance(ack.seq, seq + len(batch) - 1)
            return {}
        return None

    async def _ack_or_stored(
        self, subject: str, st: SubjectState, head: str, body: bytes, headers: dict[str, str]
    ) -> PubAck | None:
        """Publish: JetStream's ack (or its error, raised), or None as soon as this hub's
        consumer has seen the message stored (``head``, the first proposal's id, in it)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        publish = loop.create_task(
            self.js.publish(subject, body, timeout=limits.NATS_API_TIMEOUT, headers=headers)
        )
        self._tasks.add(publish)
        publish.add_done_callback(self._tasks.discard)
        waiter: asyncio.Future[None] = loop.create_future()
        publish.add_done_callback(lambda _: _resolve(waiter))
        st.watch = (head, waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            publish.cancel()
            raise
        finally:
            st.watch = None
        if publish.done():
            self.stats.latencies.append(loop.time() - started)
            return publish.result()
        publish.add_done_callback(lambda task: self._late_ack(task, loop.time() - started))
        return None

    def _late_ack(self, task: asyncio.Task[PubAck], elapsed: float) -> None:
        """The ack of a publish already seen stored: only its latency counts (an error here is
        a retried publish's answer for a message that is stored all the same)."""
        if not task.cancelled() and task.exception() is None:
            self.stats.latencies.append(elapsed)

    async def _stored_seqs(self, subject: str, sseq: int) -> dict[str, int]:
        """The room seqs of the events stored at stream sequence ``sseq``, by proposal id
        (empty if unreadable: the consumer brings them)."""
        try:
            msg = await self.js.get_msg(self.stream_of(subject), sseq)
            batch, _ = decode_message(msg.data or b"", subject.rsplit(".", 1)[1])
        except (APIError, BadClusterData, *UNREACHABLE):
            return {}
        return {msg_id: event.seq for event, msg_id in batch}

    async def _conflict(self, subject: str, st: SubjectState, exc: BadRequestError) -> None:
        """Someone else took the seq (or our own earlier try did): learn the subject's last
        message, from the consumer if it comes soon, else by asking the stream."""
        found = WRONG_LAST.search(exc.description or "")
        self.stats.conflicts += 1
        # 10164 (a replicated stream) does not say which: at least one more than we know of.
        last = int(found.group(1)) if found else st.last_sseq + 1
        try:
            async with asyncio.timeout(0.5):
                while st.last_sseq < last:
                    st.progress.clear()
                    await st.progress.wait()
            return
        except TimeoutError:
            pass
        try:
            msg = await self.js.get_last_msg(self.stream_of(subject), subject)
        except (APIError, *UNREACHABLE):
            return
        try:
            batch, _ = decode_message(msg.data or b"", subject.rsplit(".", 1)[1])
            st.advance(msg.seq or last, batch[-1][0].seq)
        except BadClusterData:
            st.advance(msg.seq or last, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _batchable(proposal: Proposal) -> bool:
    """ "left (hub lost)" goes alone: other hubs may announce it too, under the same id, and
    JetStream's dedupe works per message."""
    return not proposal.msg_id.startswith("lost.")


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
