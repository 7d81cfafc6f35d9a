"""The hub's brain, without I/O: datagrams and the time go in, datagrams to send come out.

The trio shell (``hub.server``) feeds every received datagram to
:meth:`HubCore.receive_datagram`, calls :meth:`HubCore.on_timer` at
:meth:`HubCore.next_deadline`, and sends what :meth:`HubCore.datagrams_to_send` returns.
This module owns sessions (validation, tokens, timeouts), fan-out and retransmission; the
meaning of each request is in ``hub.requests``, the text dialect in ``hub.textfront``.

Room events enter through :meth:`HubCore.publish` (which gives them their seq) and
:meth:`HubCore.commit` (history, store, fan-out).  A room message costs the same Python work
whatever the room's size: it is encoded once, kept in the room's ring and handed to the
shell as one :class:`~hub.fanout.Fanout` (one ``sendmmsg``); each member's state is an
:class:`~shared.ackrange.AckRange`, and retransmission is a per-room timer scan
(``hub.fanout``).  Private messages keep the per-delivery ``shared.outbox`` path.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import os
from collections.abc import Callable, Iterable

import attrs

from roomcast.hub import delivery, envelopefront, textfront
from roomcast.hub.engine import Deferred, Engine, MemoryEngine
from roomcast.hub.fanout import Fanout
from roomcast.hub.records import Record, RoomGone, SavedHistory
from roomcast.hub.rooms import Address, Client, Link, Refused, Registry, Room, RoomEvent
from roomcast.hub.stats import Counters
from roomcast.shared import envelope, events, limits
from roomcast.shared.flood import TokenBucket
from roomcast.shared.names import fold
from roomcast.shared.reliable import too_far_behind

log = logging.getLogger("roomcast.hub")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: What the core hands the shell: one datagram, or one room message to a live vector.
Outgoing = tuple[bytes, Address] | Fanout
_MAGIC = bytes([limits.ENVELOPE_MAGIC])  # how an envelope starts (shared.envelope.is_envelope)
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@attrs.frozen
class HubConfig:
    """Operator choices that shape the core (the CLI fills it in)."""

    #: Text clients from these networks need no code to chat.
    trusted: tuple[Network, ...] = LOOPBACK
    #: Requests per second per session after a burst; 0 turns flood control off.
    flood_rate: float = limits.FLOOD_RATE
    flood_burst: float = limits.FLOOD_BURST
    max_clients: int = limits.MAX_CLIENTS
    #: Sessions from one IP address (``--max-clients-per-host``); None: the limit in
    #: ``shared.limits`` (64).  Operators behind NAT raise it.
    max_clients_per_host: int | None = None
    #: Silence after which an envelope client, or a text client, is evicted.
    session_timeout: float = limits.SESSION_TIMEOUT
    text_session_timeout: float = limits.TEXT_SESSION_TIMEOUT
    #: Cluster mode: while NATS is unreachable, requests are held this long between tries.
    unavailable_after: float = limits.CLUSTER_RETRY_AFTER


class HubCore:
    """Every client, room and pending delivery of one hub run."""

    def __init__(
        self,
        config: HubConfig,
        now: float,
        wall_offset: float = 0.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
        engine: Engine | None = None,
    ) -> None:
        self.config = config
        #: Orders room events: the hub itself standalone, JetStream in cluster mode.
        self.engine: Engine = engine or MemoryEngine()
        #: The proposal the request being carried out made (cluster mode), so its answer can
        #: wait for the commit; the fronts reset it before each request.
        self.proposed: Deferred | None = None
        #: The ``mid`` of the line being carried out (cluster dedupe across a failover).
        self.request_mid = 0
        self.registry = Registry(max_clients=config.max_clients, max_per_host=config.max_clients_per_host)
        self.counters = Counters()
        self.random_bytes = random_bytes
        self.secret = random_bytes(32)
        #: Identifies this run: a client that sees another id knows the hub restarted.
        self.hub_id = random_bytes(8)
        self.started = now
        #: Wall clock minus the monotonic clock the shell passes as ``now``.
        self.wall_offset = wall_offset
        self.accepting = True
        #: Set by :meth:`shutdown`: the drain ends then at the latest.
        self.drain_until: float | None = None
        self._out: list[Outgoing] = []
        self._wakes: list[tuple[float, int, Address]] = []
        #: Rooms' retransmission scans: (when, tiebreak, room key).
        self._scans: list[tuple[float, int, str]] = []
        self._tiebreak = itertools.count()
        self._address_buckets: dict[str, TokenBucket] = {}
        self._last_logged: dict[str, float] = {}
        #: History records for the shell's store; None while history is kept in memory only.
        self._records: list[Record] | None = None
        self._next_sweep = now + limits.ROOM_SWEEP_INTERVAL

    # --- the shell's interface ------------------------------------------------------------------

    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        counters = self.counters
        counters.datagrams_in += 1
        counters.bytes_in += len(data)
        if data[:1] == _MAGIC:
            envelopefront.receive(self, data, address, now)
        else:
            textfront.receive(self, data, address, now)

    def sends(self) -> list[Outgoing]:
        """What to send, in order: datagrams, and room messages as :class:`Fanout` items (one
        ``sendmmsg`` each in the shell)."""
        out, self._out = self._out, []
        return out

    def has_sends(self) -> bool:
        """Is something waiting to be sent (the shell must not wait for the socket then)?"""
        return bool(self._out)

    def queue_fanout(self, item: Fanout) -> None:
        """Queue a room message for its live vector (``hub.delivery``)."""
        self._out.append(item)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """What to send, one datagram per address (room messages spelt out)."""
        out: list[tuple[bytes, Address]] = []
        for item in self.sends():
            if isinstance(item, Fanout):
                out += [(item.data, address) for address in item.targets()]
            else:
                out.append(item)
        return out

    def records_to_store(self) -> list[Record]:
        """Room events and topic changes since the last call, oldest first, for the store
        (empty unless the hub was :meth:`restore`-d from one)."""
        if not self._records:
            return []
        records, self._records = self._records, []
        return records

    def restore(self, saved: SavedHistory) -> None:
        """Start from the history a store kept: its rooms with their seqs, last events and
        topics, and its epoch as ``hub_id`` (clients that know it keep their seqs).  From now
        on :meth:`records_to_store` hands out what to keep."""
        self.hub_id = saved.epoch
        self._records = []
        for kept in saved.rooms[: limits.MAX_ROOMS]:
            room = Room(kept.name, seq=kept.seq)
            room.history.extend(kept.history)  # the deque keeps the last HISTORY_PER_ROOM
            if kept.history:  # it expires as if the hub had never stopped
                room.last_active = kept.history[-1].ts - self.wall_offset
            if kept.topic is not None:
                room.topic, room.topic_by, room.topic_ts = kept.topic.text, kept.topic.by, kept.topic.ts
            self.registry.add_room(room)

    def keep(self, record: Record) -> None:
        """Queue ``record`` for the store, never waiting for it: past ``STORE_BACKLOG`` queued
        records (the disk is not keeping up) newer ones are dropped and counted."""
        if self._records is None:
            return
        if len(self._records) >= limits.STORE_BACKLOG:
            if not self.counters["drops.store-backlog"]:
                log.warning(
                    "history store is %d records behind: dropping new ones (counted as "
                    "drops.store-backlog, logged once)",
                    limits.STORE_BACKLOG,
                )
            self.counters.inc("drops.store-backlog")
            return
        self._records.append(record)

    def drained(self, now: float) -> bool:
        """After :meth:`shutdown`: may the hub stop now?  Once every delivery is acknowledged,
        or when the drain time is up, whichever comes first."""
        if self.drain_until is None:
            return False
        return now >= self.drain_until or self.gauges()["unacked"] == 0

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` has work (the shell also wakes at ``drain_until``)."""
        soonest = min(self._wakes[0][0], self._next_sweep) if self._wakes else self._next_sweep
        soonest = min(soonest, self._scans[0][0]) if self._scans else soonest
        engine = self.engine.next_deadline()
        return soonest if engine is None else min(soonest, engine)

    def on_timer(self, now: float) -> None:
        self.engine.on_timer(self, now)
        if now >= self._next_sweep:
            self._next_sweep = now + limits.ROOM_SWEEP_INTERVAL
            # In cluster mode a room lives in its stream: it stays, so its seq is never lost.
            expired = self.registry.expire(now, limits.ROOM_EXPIRY) if self.standalone else []
            for name in expired:
                self.counters.inc("rooms_expired")
                self.keep(RoomGone(name))
                log.info("room %s expired: no members, no topic, quiet for %.0f s", name, limits.ROOM_EXPIRY)
        while self._scans and self._scans[0][0] <= now:
            at, _, key = heapq.heappop(self._scans)
            room = self.registry.rooms.get(key)
            if room is not None and room.fanout.scan_at == at:
                delivery.scan(self, room, now)
        while self._wakes and self._wakes[0][0] <= now:
            at, _, address = heapq.heappop(self._wakes)
            client = self.registry.clients.get(address)
            if client is None or client.wake != at:
                continue  # a stale entry: the client left or was rescheduled
            client.wake = float("inf")
            self._wake(client, now)

    def shutdown(self, now: float, drain_seconds: float, reason: str = "the hub is restarting") -> None:
        """Refuse new joins, tell every client the hub is going, and drain: deliveries held
        are still retransmitted until acknowledged, for ``drain_seconds`` at most."""
        self.accepting = False
        self.drain_until = now + drain_seconds
        bye = envelope.encode(events.Bye(reason=reason))
        for client in self.registry.clients.values():
            if client.link is not None:
                self.send(bye, client.address)
            elif client.text is not None and client.text.live:
                self.send(f"hub: {reason}".encode(), client.address)

    def take_proposed(self) -> Deferred | None:
        """The proposal the last request made (cluster mode), and forget it."""
        proposed, self.proposed = self.proposed, None
        return proposed

    @property
    def standalone(self) -> bool:
        return isinstance(self.engine, MemoryEngine)

    def wall(self, now: float) -> float:
        """Wall-clock time (seconds since the epoch) for the monotonic ``now``: message stamps."""
        return now + self.wall_offset

    def gauges(self) -> dict[str, int | float]:
        clients = self.registry.clients.values()
        text = sum(1 for c in clients if c.text is not None)
        return {
            "clients_envelope": len(self.registry.clients) - text,
            "clients_text": text,
            "rooms": len(self.registry.rooms),
            "unacked": sum(len(c.link.window) for c in clients if c.link is not None),
            "ring": sum(len(r.fanout.ring) for r in self.registry.rooms.values()),
            "history": sum(len(r.history) for r in self.registry.rooms.values()),
            "amplification": round(
                self.counters["unvalidated_bytes_out"] / max(1, self.counters["unvalidated_bytes_in"]), 3
            ),
            **self.engine.gauges(),
        }

    # --- sending ---------------------------------------------------------------------------------

    def send(self, data: bytes, address: Address) -> None:
        self._out.append((data, address))
        counters = self.counters
        counters.datagrams_out += 1
        counters.bytes_out += len(data)

    def send_unvalidated(self, data: bytes, address: Address, received: int) -> None:
        """Send to an address that has not proved it receives: only within the 3x budget
        (addresses on trusted networks count as validated)."""
        if self.trusted(address):
            self.send(data, address)
            return
        if len(data) > limits.AMPLIFICATION_FACTOR * received:
            self.counters.inc("drops.amplification")
            return
        self.counters.inc("unvalidated_bytes_in", received)
        self.counters.inc("unvalidated_bytes_out", len(data))
        self.send(data, address)

    def trusted(self, address: Address) -> bool:
        """Is ``address`` on a network the operator trusts (``--trust``, loopback by default)?"""
        try:
            ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        except ValueError:
            return False
        return any(ip in network for network in self.config.trusted)

    def note_bad_input(self, code: str, text: str, address: Address, now: float) -> None:
        """Count a refused datagram and log it, at most one line per code every 10 s."""
        self.counters.inc(f"errors.{code}")
        if now - self._last_logged.get(code, -1e9) >= 10.0:
            self._last_logged[code] = now
            log.warning(
                "bad input from %s: %s (%s); similar ones are counted, not logged", address, text, code
            )

    # --- sessions ------------------------------------------------------------------------------

    def refuse(self, address: Address, code: str, text: str) -> None:
        """An error envelope not tied to a request (counted by code)."""
        self.counters.inc(f"errors.{code}")
        self.send(envelope.encode(events.Error(code=code, text=text)), address)

    def new_client(self, address: Address, nick: str, now: float, link: Link | None = None) -> Client | None:
        """Register a validated client, or tell it why not (and return None)."""
        bucket = TokenBucket(self.config.flood_rate, self.config.flood_burst, updated=now)
        client = Client(address, nick, now, bucket, link=link, timeout=self.config.session_timeout)
        if link is None:
            client.text = textfront.new_mode()
            client.timeout = self.config.text_session_timeout
        try:
            self.registry.add(client)
        except Refused as refusal:
            if link is None:
                self.counters.inc(f"errors.{refusal.code}")
                self.send(f"error: {refusal.text}".encode(), address)
            else:
                self.refuse(address, refusal.code, refusal.text)
            return None
        self.counters.inc(f"sessions.{client.kind}")
        log.info("%s client %s joined the hub from %s", client.kind, nick, address)
        self.schedule(client, now + client.timeout)
        return client

    def welcome(self, client: Client) -> None:
        """Tell an envelope client its session is open."""
        assert client.link is not None
        welcome = events.Welcome(
            token=client.link.token,
            hub=self.hub_id,
            nick=client.nick,
            idle=self.config.session_timeout,
            resume=client.link.resume,
        )
        self.send(envelope.encode(welcome), client.address)

    def allow(self, client: Client, now: float) -> bool:
        """Flood control: one token from the session's bucket and its address's bucket."""
        if self.config.flood_rate <= 0:  # off (every bucket has a rate of 0)
            return True
        host = str(client.address[0])
        shared = self._address_buckets.get(host)
        if shared is None:
            rate = self.config.flood_rate * limits.ADDRESS_FLOOD_SESSIONS
            shared = self._address_buckets[host] = TokenBucket(
                rate, self.config.flood_burst * limits.ADDRESS_FLOOD_SESSIONS, updated=now
            )
        if client.bucket.take(now) and shared.take(now):
            return True
        self.counters.inc("errors.slow-down")
        return False

    def slow_down_text(self, client: Client) -> str:
        wait = max(client.bucket.wait_time(), 0.05)
        return f"slow down: at most {self.config.flood_rate:g} messages a second; retry in {wait:.1f} s"

    # --- rooms and delivery ----------------------------------------------------------------------

    def publish(self, room: Room, make: Callable[[int], RoomEvent], origin: Client | None, now: float) -> int:
        """The one entry through which a request makes a room event: the engine gives the
        event ``make`` builds the room's next seq and it is committed (:meth:`commit`).
        Standalone, that happens now and the seq is returned; in cluster mode the event is
        proposed, 0 is returned, and ``self.proposed`` says what to wait for."""
        room.last_active = now
        return self.engine.publish(self, room, make, origin, now)

    def commit(
        self, room: Room, event: RoomEvent, origin: Client | None, now: float, data: bytes | None = None
    ) -> None:
        """The one path by which a room event whose seq is fixed enters the room's history,
        the store and the live fan-out to this hub's members (all but ``origin``).  The event
        is encoded once (``data``, if the caller has it already) and kept once, in the room's
        ring; the live members get it in one :class:`Fanout` (one ``sendmmsg``), whatever the
        room's size."""
        room.last_active = now
        room.history.append(event)
        if self._records is not None:
            self.keep(event)
        delivery.fan_out(self, room, event, origin, now, data)

    def deliver(
        self,
        members: Iterable[Client],
        key: tuple[str, int],
        event: RoomEvent,
        origin: Client | None,
        now: float,
    ) -> None:
        """The slow path, for private messages: each member's outbox holds the delivery until
        it is acknowledged."""
        data = envelope.encode(event)
        stream, seq = key
        for member in members:
            if member is origin:
                continue
            link = member.link
            if link is not None:
                window = link.direct
                if window.offer(stream, seq, data, now):
                    self.send(data, member.address)
                    self.counters.inc("deliveries")
                if len(window) > limits.MEMBER_WINDOW or window.bytes_in_flight > limits.MEMBER_WINDOW_BYTES:
                    if too_far_behind(len(window), window.bytes_in_flight, window.stalled_for(now)):
                        self.drop_from_rooms(member, "too slow", now)
                        continue
                    self.schedule(member, now + limits.ACK_STALL_TIMEOUT - window.stalled_for(now))
                if window.timer is not None and window.timer < member.wake:
                    self.schedule(member, window.timer)
            elif member.text is not None:
                textfront.deliver(self, member, textfront.line_of(event))

    def send_history(self, client: Client, event: RoomEvent) -> None:
        """A replayed old event: best effort to envelope clients, into a text client's reply."""
        if client.link is not None:
            self.send(envelope.encode(event), client.address)
        elif client.text is not None:
            textfront.deliver(self, client, textfront.line_of(event), live=False)

    def direct(self, target: Client, sender: str, body: str, now: float) -> None:
        """A private message to ``target``, on its own reliable stream ("")."""
        if target.link is not None:
            target.link.direct_seq += 1
            seq = target.link.direct_seq
        else:
            seq = 1
        event = events.Deliver(room="", seq=seq, nick=sender, body=body, ts=self.wall(now))
        self.deliver([target], ("", seq), event, None, now)

    def leave(self, client: Client, reason: str, now: float) -> None:
        """Remove ``client`` from the hub and tell its rooms why it left."""
        rooms = self.registry.remove(client)
        moved = self.engine.gone(self, client, reason, now)
        host = str(client.address[0])
        if host not in self.registry.per_host:
            self._address_buckets.pop(host, None)  # kept only while the address has clients
        if not moved:  # cluster mode: a session that moved to another hub has not left its rooms
            self._tell_rooms_left(rooms, client, reason, now)
        client.wake = float("inf")
        self.counters.inc(f"departures.{reason.replace(' ', '-')}")
        log.info("%s left the hub (%s)", client.nick, reason)

    def drop_from_rooms(self, client: Client, reason: str, now: float) -> None:
        """A member too far behind: out of its rooms, its held deliveries dropped, and told so.
        Its session stays (requests already carried out are not carried out again); the
        client rejoins and catches up on what the rooms still keep."""
        assert client.link is not None
        client.link.direct.pop_all()
        client.link.direct_seq = 0  # the client restarts its private stream too
        rooms = self.registry.leave_rooms(client)
        self._tell_rooms_left(rooms, client, reason, now)
        client.link.dropped = True
        self.tell_too_slow(client)
        self.counters.inc(f"departures.{reason.replace(' ', '-')}")
        log.info("%s dropped from its rooms (%s)", client.nick, reason)

    def tell_too_slow(self, client: Client) -> None:
        self.refuse(client.address, "too-slow", "you fell too far behind acknowledging, so you left your "
                    "rooms; rejoining catches up on what they still keep")  # fmt: skip

    def _tell_rooms_left(self, rooms: list[Room], client: Client, reason: str, now: float) -> None:
        for room in rooms:
            self.publish(
                room,
                lambda seq, room=room: events.Presence(  # type: ignore[misc]
                    room=room.name, seq=seq, nick=client.nick, what="left", detail=reason, ts=self.wall(now)
                ),
                client,
                now,
            )

    # --- timers ----------------------------------------------------------------------------------

    def schedule_scan(self, room: Room, at: float) -> None:
        """Run the room's retransmission scan (``hub.delivery.scan``) at ``at``."""
        room.fanout.scan_at = at
        heapq.heappush(self._scans, (at, next(self._tiebreak), fold(room.name)))

    def schedule(self, client: Client, at: float) -> None:
        """Make sure the hub looks at ``client`` no later than ``at``."""
        if at < client.wake:
            client.wake = at
            heapq.heappush(self._wakes, (at, next(self._tiebreak), client.address))

    def _wake(self, client: Client, now: float) -> None:
        if now - client.last_seen >= client.timeout:
            self.counters.inc("evictions")
            self.leave(client, "timeout", now)
            return
        at = client.last_seen + client.timeout
        if client.link is not None:
            window = client.link.direct
            if too_far_behind(len(window), window.bytes_in_flight, window.stalled_for(now)):
                self.drop_from_rooms(client, "too slow", now)
            for data in window.due(now):
                self.send(data, client.address)
                self.counters.inc("retransmits")
            at = min(at, window.next_deadline() or at)
            if len(window) > limits.MEMBER_WINDOW:  # look again when its acks would count as stalled
                at = min(at, now + limits.ACK_STALL_TIMEOUT - window.stalled_for(now))
            link = client.link
            if link.waiting:
                envelopefront.carry_out_waiting(self, client, now)
                if link.next_id in link.waiting and link.held_until > now:
                    at = min(at, link.held_until)
        self.schedule(client, at)
