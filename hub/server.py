"""The hub's trio shell: moves datagrams between one UDP socket and the sans-I/O HubCore.

One task does the work: wait until the socket is readable or the core's next deadline comes,
drain the socket (``recvmmsg`` batches of ``RECV_BATCH`` datagrams, ``hub.recvbatch``) into the
core, run its timers, and send what it produced with non-blocking ``sendmmsg`` batches
(``hub.batch``; ``sendto`` per datagram where that is not available), awaiting writability only
on EAGAIN.  Each batch read is stamped with a fresh clock reading: a round under load can last
tens of milliseconds, and acks stamped with an older time would shrink the measured round trip
until retransmission timers fire for whole rooms.  The socket and its buffers come from
``hub.udpsocket``.  No task per datagram, no log line on the hot path.  A second task turns SIGINT/SIGTERM into a drain.
With ``--data-dir`` a third one commits the core's history records to disk every
``STORE_INTERVAL`` in a worker thread (``hub.store``), so the loop never waits for the disk.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from roomcast.hub.batch import BatchSender, open_batch_sender
from roomcast.hub.cluster.engine import ClusterEngine
from roomcast.hub.cluster.options import ClusterOptions
from roomcast.hub.cluster.peers import Peers
from roomcast.hub.core import HubConfig, HubCore
from roomcast.hub.fanout import Fanout
from roomcast.hub.monitor import serve_monitor
from roomcast.hub.recvbatch import BatchReceiver, open_batch_receiver
from roomcast.hub.rooms import Address
from roomcast.hub.stats import rss_kib
from roomcast.hub.store import HistoryStore, StoreError
from roomcast.hub.udpsocket import buffers_line
from roomcast.shared import limits

if TYPE_CHECKING:
    from roomcast.hub.cluster.bridge import NatsBridge

log = logging.getLogger("roomcast.hub")

#: A room message to fewer members than this goes out in the shared sendmmsg batch with the
#: replies and other room messages around it (one system call for many messages, each copied
#: out of its room's vector in one slice); bigger ones get their own sendmmsg over the vector.
SMALL_FANOUT = 128
#: Datagrams per sendmmsg call.
SEND_BATCH = 256
RECV_SIZE = 65535  # read whole datagrams, so an oversized one is seen (and refused) as such


@attrs.frozen
class ServerOptions:
    host: str = limits.DEFAULT_HOST
    port: int = limits.DEFAULT_PORT
    drain_seconds: float = limits.DRAIN_SECONDS
    stats_interval: float = limits.STATS_INTERVAL
    core: HubConfig = attrs.Factory(HubConfig)
    #: Where to serve the HTTP monitoring endpoint (hub.monitor); None: nowhere.
    monitor: tuple[str, int] | None = None
    #: Cluster mode (``--nats``): the NATS system and choices; None: standalone.
    cluster: ClusterOptions | None = None


class HubServer:
    """Runs a HubCore on a socket until a signal (or ``stop``) ends it after a drain."""

    def __init__(
        self, sock: socket.socket, options: ServerOptions, store: HistoryStore | None = None
    ) -> None:
        self.sock = sock
        self.options = options
        #: Sends a batch of datagrams per system call (sendmmsg); None: sendto each.
        self._batch: BatchSender | None = open_batch_sender(sock, SEND_BATCH, SMALL_FANOUT)
        #: Reads a batch of datagrams per system call (recvmmsg); None: recvfrom each.
        self._receiver: BatchReceiver | None = open_batch_receiver(sock, limits.RECV_BATCH)
        self.core = HubCore(options.core, trio.current_time(), wall_offset=time.time() - trio.current_time())
        #: Cluster mode: the NATS thread, started by serve().
        self.bridge: NatsBridge | None = None
        if options.cluster is not None:
            name = options.cluster.hub_name or self.core.hub_id.hex()
            peers = Peers(name, trio.current_time(), timeout=options.core.session_timeout)
            self.core.engine = ClusterEngine(name, peers)
        #: Where room history is kept (``--data-dir``); None: in memory only.  The caller closes it.
        self.store = store
        if store is not None:
            saved = store.load()
            self.core.restore(saved)
            kept = sum(len(room.history) for room in saved.rooms)
            log.info("history from %s: %d rooms, %d events", store.path, len(saved.rooms), kept)
        self._stopping = False
        self._wait_scope = trio.CancelScope()

    def stats_line(self) -> str:
        """The core's counters and gauges plus the process's resident memory, key=value."""
        return self.core.counters.line({**self.core.gauges(), "rss_kib": rss_kib()})

    def stop(self) -> None:
        """Begin the drain: wakes the loop if it is waiting."""
        self._stopping = True
        self._wait_scope.cancel()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.options.cluster is not None:
            from roomcast.hub.cluster.bridge import NatsBridge  # nats-py: only in cluster mode

            assert isinstance(self.core.engine, ClusterEngine)
            cluster = attrs.evolve(self.options.cluster, hub_name=self.core.engine.hub_name)
            self.bridge = NatsBridge(cluster, self._wake)
            try:
                await self.bridge.start()
            except BaseException:
                self.bridge.stop()
                raise
            # Every hub of the cluster announces the same history epoch: seqs mean the same on all.
            self.core.hub_id = self.bridge.side.epoch
            log.info("cluster mode: NATS at %s", self.bridge.side.connected_url())
        try:
            await self._serve(task_status)
        finally:
            if self.bridge is not None:
                self.bridge.stop()

    def _wake(self) -> None:
        """(from the NATS side, through run_sync_soon) engine inputs are waiting."""
        self._wait_scope.cancel()

    async def _serve(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            # SIGTERM/SIGINT drain the hub from the moment it says it listens, never before.
            await nursery.start(self._watch_signals)
            host, port = self.sock.getsockname()[:2]
            log.info("hub listening on %s port %d (%s)", host, port, buffers_line(self.sock))
            if self.store is not None:
                nursery.start_soon(self._keep_history, self.store)
            if self.options.monitor is not None:
                await nursery.start(serve_monitor, self.core, *self.options.monitor)
            task_status.started()
            await self._run()
            nursery.cancel_scope.cancel()
        log.info("hub stopped: %s", self.stats_line())

    async def _watch_signals(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                log.info(
                    "%s: draining for up to %.1f s", signal.Signals(signum).name, self.options.drain_seconds
                )
                self.stop()
                return

    async def _keep_history(self, store: HistoryStore) -> None:
        """Every STORE_INTERVAL, commit the records the core handed out since the last time, in a
        worker thread.  Cancelled at shutdown, it commits what is left before it returns."""
        try:
            while True:
                await trio.sleep(limits.STORE_INTERVAL)
                records = self.core.records_to_store()
                if not records:
                    continue
                try:
                    # Not abandoned on cancel: a batch taken from the core always reaches the disk.
                    await trio.to_thread.run_sync(store.write, records)
                except StoreError as exc:
                    self._history_lost(exc, len(records))
                else:
                    self.core.counters.inc("stored", len(records))  # committed: survives a kill -9
        finally:
            records = self.core.records_to_store()
            try:
                store.write(records)  # in this thread: the hub loop has stopped, nothing waits
            except StoreError as exc:
                self._history_lost(exc, len(records))

    def _history_lost(self, error: StoreError, count: int) -> None:
        """A batch did not reach the disk (e.g. it is full): count it, log the first time."""
        if not self.core.counters["errors.store"]:
            log.error("%s; the hub goes on, keeping less history (counted as errors.store)", error)
        self.core.counters.inc("errors.store")
        self.core.counters.inc("drops.store", count)

    async def _run(self) -> None:
        now = trio.current_time()
        next_stats = now + self.options.stats_interval
        while True:
            if self._stopping and self.core.drain_until is None:
                self.core.shutdown(now, self.options.drain_seconds)
            else:
                drain_until = math.inf if self.core.drain_until is None else self.core.drain_until
                deadline = min(self.core.next_deadline() or math.inf, next_stats, drain_until)
                if self.core.has_sends():
                    # The last flush stopped after RECV_ROUNDS with sends left (what its reads
                    # brought in): send them now.  Waiting for the socket would leave them until
                    # the next datagram, and a closed-loop sender (a text client, which sends no
                    # acks) waits for them: a stall, lines delivered only after it gives up.
                    deadline = -math.inf
                with trio.CancelScope(deadline=deadline) as self._wait_scope:
                    await trio.lowlevel.wait_readable(self.sock)
            # While datagrams keep coming, read again at once rather than go back through trio's
            # wait (a few rounds at most, so the other tasks still get their turn).  Every step
            # reads the clock afresh: one round can take tens of milliseconds under load, and an
            # ack stamped with the time of an earlier read would make the round trip look short
            # (a collapsed RTO, then spurious retransmissions to the whole room).
            for _ in range(limits.RECV_ROUNDS):
                # What NATS brought first (a commit, NATS back), so the datagrams read next meet
                # the cluster as it is now, not as it was at the last wake.
                if self.bridge is not None:
                    self._cross_in(self.bridge, trio.current_time())
                received = self._drain_socket()
                self.core.on_timer(trio.current_time())
                if self.bridge is not None:
                    self._cross_out(self.bridge)
                await self._flush()
                if not received or self._stopping:
                    break
            now = trio.current_time()
            if now >= next_stats:
                log.info("stats %s", self.stats_line())
                next_stats = now + self.options.stats_interval
            if self.core.drained(now):
                return

    def _cross_in(self, bridge: NatsBridge, now: float) -> None:
        """Cluster mode: what NATS brought since the last turn, in one batch."""
        items = bridge.take()
        if items:
            assert isinstance(self.core.engine, ClusterEngine)
            self.core.engine.receive(self.core, items, now)

    def _cross_out(self, bridge: NatsBridge) -> None:
        """Cluster mode: this turn's proposals, claims, heartbeats..., in one batch."""
        assert isinstance(self.core.engine, ClusterEngine)
        outputs = self.core.engine.outputs()
        if outputs:
            bridge.submit(outputs)

    def _drain_socket(self) -> int:
        """Read what waits on the socket into the core, stamped with the time it was read;
        how many datagrams."""
        if self._receiver is not None:
            return self._drain_batch()
        receive, recvfrom, count = self.core.receive_datagram, self.sock.recvfrom, 0
        now = trio.current_time()
        for _ in range(limits.RECV_BATCH):
            try:
                data, address = recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. an ICMP error reported on the socket: nothing to read
                self.core.counters.inc("errors.socket")
                continue
            receive(data, address, now)
            count += 1
        return count

    def _drain_batch(self) -> int:
        """Up to RECV_ROUNDS ``recvmmsg`` calls of RECV_BATCH datagrams, until the socket is
        empty: in a big room the acks of one message outnumber one batch.  Each datagram goes
        to the core as it is taken out of the batch.  How many."""
        assert self._receiver is not None
        deliver, receive, capacity = (
            self._receiver.deliver,
            self.core.receive_datagram,
            self._receiver.capacity,
        )
        current_time, count = trio.current_time, 0
        for _ in range(limits.RECV_ROUNDS):
            try:
                got = deliver(receive, current_time())
            except OSError:  # e.g. an ICMP error reported on the socket
                self.core.counters.inc("errors.socket")
                continue
            count += got
            if got < capacity:
                break
        return count

    async def _flush(self) -> None:
        """Send what the core produced, in order: replies and small room messages laid out
        together in ``sendmmsg`` batches, each big room message in one ``sendmmsg`` over its
        live vector.  After a big send the socket is read again before the next one, so that
        the acks of a big room do not overflow its buffer while the hub is sending; what that
        produces goes out too."""
        if self._batch is None:
            await self._flush_one_by_one(self.core.datagrams_to_send())
            return
        batch = self._batch
        for _ in range(limits.RECV_ROUNDS):
            items = self.core.sends()
            if not items:
                return
            index, count = 0, len(items)
            while index < count:
                taken, total = batch.load(items, index)
                if taken:
                    index += taken
                    await self._send_all(total, batch.send_loaded)
                else:  # a big room message: its own sendmmsg over its vector
                    item = items[index]
                    assert isinstance(item, Fanout)
                    index += 1
                    total = len(item)
                    await self._send_all(
                        total, functools.partial(batch.send_fanout, item.data, item.vector, item.skip)
                    )
                if total >= limits.RECV_BATCH:
                    self._drain_socket()

    async def _send_all(self, total: int, send_from: Callable[[int], int]) -> None:
        """``send_from(done)`` sends from the ``done``-th datagram on (one ``sendmmsg``) and
        says how many went; call it until all went, waiting when the socket buffer is full."""
        done = 0
        while done < total:
            try:
                done += send_from(done)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.sock)
            except InterruptedError:
                continue
            except OSError:
                self.core.counters.inc("errors.send")
                done += 1  # that datagram cannot go; the rest still can

    async def _flush_one_by_one(self, out: list[tuple[bytes, Address]]) -> None:
        """Where sendmmsg is not available: non-blocking sendto per datagram."""
        sendto = self.sock.sendto
        for data, address in out:
            while True:
                try:
                    sendto(data, address)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self.sock)
                except OSError:
                    self.core.counters.inc("errors.send")
                    break
