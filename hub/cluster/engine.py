"""Cluster mode's engine, the core-side half: sans-I/O, no nats-py.

Room events go out as :class:`Proposal` s and come back as :class:`Committed` in each room's
seq order (every hub consumes every room subject), and only then enter the room
(``HubCore.commit``).  Nicks are claimed in the cluster's nicks bucket before a session opens;
a ``resume`` secret handed out in ``welcome`` lets the session move to another hub and keep its
nick.  Heartbeats tell each hub who is on the others (``hub.cluster.peers``): /who, /rooms and
/msg see the whole cluster.  The NATS side (``hub.cluster.nats``) only carries these messages.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import attrs

from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster.peers import Peers
from roomcast.hub.cluster.roomclaims import RoomClaims
from roomcast.hub.cluster.sessions import Sessions, resume_hash
from roomcast.hub.engine import Deferred, Make, kept_history, local_members
from roomcast.hub.rooms import Address, Client, Room, RoomEvent
from roomcast.shared import events, limits
from roomcast.shared.names import fold

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore

log = logging.getLogger("roomcast.hub")


@attrs.define(eq=False)
class Pending:
    """A proposal of this hub waiting to come back committed."""

    proposal: m.Proposal
    origin: Client | None
    deferred: Deferred


@attrs.define
class ClusterEngine:
    """Proposals, claims, heartbeats and private lines out; commits and answers in."""

    hub_name: str
    peers: Peers
    available: bool = False
    reason: str = "connecting to NATS"
    server: str = ""
    figures: m.Figures = attrs.Factory(m.Figures)
    pending: dict[str, Pending] = attrs.Factory(dict)
    asks: dict[str, Deferred] = attrs.Factory(dict)
    next_beat: float = 0.0
    #: Room seqs of recent lines that carried a client's ``mid`` (by proposal id): a line
    #: resent through another hub after a failover is answered from here, not published again.
    mids: OrderedDict[str, int] = attrs.Factory(OrderedDict)
    #: The time of the last timer run (gauges have no clock of their own).
    now: float = 0.0
    _out: list[m.Output] = attrs.Factory(list)
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    sessions: Sessions = attrs.field(init=False)
    #: New rooms' names being claimed cluster-wide, with the proposals waiting behind them.
    room_claims: RoomClaims = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.sessions = Sessions(self.hub_name, self.peers, self._out, self._ids)
        self.room_claims = RoomClaims(self._out, self._ids, self.propose)

    def outputs(self) -> list[m.Output]:
        out = list(self._out)
        self._out.clear()  # in place: the sessions append to the same list
        return out

    # --- rooms -----------------------------------------------------------------------------------

    def publish(self, hub: HubCore, room: Room, make: Make, origin: Client | None, now: float) -> int:
        event = make(0)
        msg_id = f"{self.hub_name}.{next(self._ids)}"
        link = origin.link if origin is not None else None
        if isinstance(event, events.Deliver) and link is not None and link.resume and hub.request_mid:
            # The client numbers its lines across hubs: a line resent after a failover is stored once.
            msg_id = f"c.{resume_hash(link.resume).hex()}.{hub.request_mid}"
            stored = self.mids.get(msg_id)
            if stored is not None:  # resent through this hub after a failover: carried out once
                hub.counters.inc("cluster.duplicates")
                return stored
        proposal = m.Proposal(room.name, event, msg_id)
        hub.proposed = self.room_claims.hold(room, proposal, origin) or self.propose(proposal, origin)
        return 0

    def propose(
        self, proposal: m.Proposal, origin: Client | None, deferred: Deferred | None = None
    ) -> Deferred:
        pending = self.pending[proposal.msg_id] = Pending(proposal, origin, deferred or Deferred())
        self._out.append(proposal)
        return pending.deferred

    def history(self, room: Room, since: int, until: int) -> tuple[list[RoomEvent], int]:
        # The ring is filled by what this hub consumed from the room's subject, which keeps the
        # same last HISTORY_PER_ROOM events (max_msgs_per_subject): it is the engine's history.
        return kept_history(room, since, until)

    def members(self, hub: HubCore, room: Room) -> list[str]:
        found = self.peers.members(room.name)
        found.update(local_members(room))
        return sorted(found.values(), key=fold)

    def room_list(self, hub: HubCore) -> list[tuple[str, int, str]]:
        remote = self.peers.rooms()
        listing = []
        for key, room in hub.registry.rooms.items():
            _, members = remote.pop(key, ("", {}))
            members.update(local_members(room))
            listing.append((room.name, len(members), room.topic))
        listing += [(name, len(members), "") for name, members in remote.values() if members]
        return listing

    # --- what the NATS side brought ----------------------------------------------------------------

    def receive(self, hub: HubCore, inputs: list[m.Input], now: float) -> None:
        for item in inputs:
            if isinstance(item, m.Committed):
                self._committed(hub, item, now)
            elif isinstance(item, m.RoomResult):
                self.room_claims.claimed(hub, item)
            elif isinstance(item, m.Seen):
                self.peers.seen(item.snapshot, now)
            elif isinstance(item, m.NickResult):
                self.sessions.claimed(hub, item, now)
            elif isinstance(item, m.PrivateIn):
                self._private_in(hub, item, now)
            elif isinstance(item, m.PrivateDone):
                self._settle(self.asks.pop(item.ref, None), 0 if item.ok else _not_delivered(item.text))
            elif isinstance(item, m.Duplicate):
                hub.counters.inc("cluster.duplicates")
                pending = self.pending.pop(item.msg_id, None)
                if pending is not None:
                    pending.deferred.settle(item.seq)
            elif isinstance(item, m.Failed):
                hub.counters.inc("cluster.publish-failed")
                pending = self.pending.pop(item.msg_id, None)
                if pending is not None:
                    pending.deferred.settle(_not_delivered("the cluster did not confirm it in time"))
            elif isinstance(item, m.BadData):
                hub.counters.inc("cluster.bad-data")
                if hub.counters["cluster.bad-data"] in (1, 10, 100, 1000):
                    log.warning(
                        "skipped bad data on a room subject: %s (counted as cluster.bad-data)", item.what
                    )
            elif isinstance(item, m.Figures):
                self.figures = item
            else:
                if self.available and not item.available:
                    hub.counters.inc("cluster.outages")
                self.available, self.reason, self.server = item.available, item.reason, item.server

    @staticmethod
    def _settle(deferred: Deferred | None, result: int | events.Error) -> None:
        if deferred is not None:
            deferred.settle(result)

    def _committed(self, hub: HubCore, item: m.Committed, now: float) -> None:
        event = item.event
        room = hub.registry.rooms.get(fold(event.room))
        if room is None:
            room = Room(event.room)
            hub.registry.add_room(room)
        if event.seq <= room.seq:
            hub.counters.inc("cluster.stale")  # seen already (a consumer restarted behind us)
            return
        pending = self.pending.pop(item.msg_id, None) if item.msg_id else None
        origin = pending.origin if pending is not None else None
        if origin is not None and hub.registry.clients.get(origin.address) is not origin:
            origin = None
        room.seq, room.last_active = event.seq, now
        if isinstance(event, events.Presence):
            if event.what == "topic":
                room.topic, room.topic_by, room.topic_ts = event.detail, event.nick, event.ts
            self.peers.presence(item.hub, event, now)
        hub.counters.inc("cluster.committed")
        if item.msg_id.startswith("c."):
            self.mids[item.msg_id] = event.seq
            if len(self.mids) > limits.CLUSTER_MIDS_KEPT:
                self.mids.popitem(last=False)
        hub.commit(room, event, origin, now)
        if pending is not None:
            pending.deferred.settle(event.seq)

    # --- sessions and nicks (hub.cluster.sessions) ---------------------------------------------------

    def hello(self, hub: HubCore, address: Address, hello: events.Hello, now: float) -> bool:
        return self.sessions.hello(hub, address, hello, now)

    def claim_rename(self, hub: HubCore, client: Client, nick: str, now: float) -> bool:
        return self.sessions.claim_rename(hub, client, nick, now)

    def reserve(self, hub: HubCore, nick: str, now: float) -> bool:
        if self.peers.hub_of(nick, now) is not None:
            return False
        # Claimed in the background (a text client gets its one reply now): envelope clients
        # elsewhere then find the nick taken.
        secret = resume_hash(hub.random_bytes(16))
        alive, sure = self.peers.alive(now), self.peers.sure(now)
        self._out.append(m.ClaimNick(f"guest.{next(self._ids)}", nick, secret, alive, sure))
        return True

    def gone(self, hub: HubCore, client: Client, reason: str, now: float) -> bool:
        if reason == "timeout" and self.peers.hub_of(client.nick, now) is not None:
            return True  # it moved (resumed on another hub, which holds its nick now)
        self._out.append(m.ReleaseNick(client.nick, self.hub_name))
        return False

    def totals(self, hub: HubCore, now: float) -> list[str]:
        alive = self.peers.alive(now)
        clients = len(hub.registry.clients) + self.peers.clients()
        return [f"cluster: {len(alive)} hub{'s' if len(alive) != 1 else ''}, {clients} clients, "
                f"{len(self.room_list(hub))} rooms (NATS {self.server or 'not connected'})"]  # fmt: skip

    def gauges(self) -> dict[str, int | float]:
        f = self.figures
        return {
            "cluster.available": int(self.available), "cluster.hubs": len(self.peers.alive(self.now)),
            "cluster.published": f.published, "cluster.conflicts": f.conflicts, "cluster.retries": f.retries,
            "cluster.consumer_lag": f.consumer_lag, "cluster.publish_p50_ms": f.publish_p50_ms,
            "cluster.publish_p99_ms": f.publish_p99_ms, "cluster.pending": len(self.pending),
        }  # fmt: skip

    def report(self, hub: HubCore, now: float) -> dict[str, Any] | None:
        f = self.figures
        alive = self.peers.alive(now)
        return {
            "hub": self.hub_name, "nats_server": self.server, "available": self.available,
            "unavailable_reason": "" if self.available else self.reason,
            "publish_latency_ms": {"p50": f.publish_p50_ms, "p99": f.publish_p99_ms},
            "published": f.published, "conflicts": f.conflicts, "retries": f.retries,
            "consumer_lag": f.consumer_lag, "pending_proposals": len(self.pending),
            "hubs_alive": sorted(alive),
            "clients_total": len(hub.registry.clients) + self.peers.clients(),
            "rooms_total": len(self.room_list(hub)),
        }  # fmt: skip

    # --- private lines -----------------------------------------------------------------------------

    def direct_elsewhere(self, hub: HubCore, nick: str, sender: str, body: str, now: float) -> str | None:
        target_hub = self.peers.hub_of(nick, now)
        if target_hub is None:
            return None
        ref = f"msg.{next(self._ids)}"
        deferred = self.asks[ref] = Deferred()
        self._out.append(m.PrivateOut(ref, target_hub, nick, sender, body, hub.wall(now)))
        hub.proposed = deferred
        return self.peers.views[target_hub].nicks.get(fold(nick), nick)

    def _private_in(self, hub: HubCore, item: m.PrivateIn, now: float) -> None:
        target = hub.registry.nicks.get(fold(item.to))
        if target is None:
            self._out.append(m.PrivateAnswer(item.reply, False, f"nobody is called {item.to} now"))
            return
        hub.direct(target, item.sender, item.body, now)
        hub.counters.inc("cluster.private-in")
        self._out.append(m.PrivateAnswer(item.reply, True))

    # --- timers ------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self.next_beat

    def on_timer(self, hub: HubCore, now: float) -> None:
        self.now = now
        if now < self.next_beat:
            return
        self.next_beat = now + limits.HUB_HEARTBEAT
        self._out.append(m.Beat(snapshot(hub, self.hub_name)))
        here = set(hub.registry.nicks)
        leader = self.peers.leader(now)
        for dead, nick, rooms in self.peers.lost(now, here):
            if not leader:
                continue
            log.info("%s was on hub %s, which is lost: announcing it left %s", nick, dead, rooms)
            self._out.append(m.ReleaseNick(nick, dead))
            for name in rooms:
                event = events.Presence(
                    room=name, seq=0, nick=nick, what="left", detail="hub lost", ts=hub.wall(now)
                )
                self.propose(m.Proposal(name, event, f"lost.{dead}.{fold(nick)}.{fold(name)}"), None)


def snapshot(hub: HubCore, name: str) -> m.Snapshot:
    rooms = tuple(
        (room.name, tuple(c.nick for c in room.members.values()))
        for room in hub.registry.rooms.values()
        if room.members
    )
    nicks = tuple(c.nick for c in hub.registry.clients.values())
    return m.Snapshot(name, rooms, nicks, len(hub.registry.clients), hub.config.session_timeout)


def _not_delivered(text: str) -> events.Error:
    return events.Error(
        code="not-delivered", text=text or "the cluster did not confirm it; it may not have happened"
    )
