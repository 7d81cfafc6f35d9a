"""Where a room's events get their seq: one small interface, two engines.

Modelled on Centrifuge's ``Broker`` (publish returns the stream position; history reads a
stream since a position): the core (``hub.core``) asks its engine to publish a room event and
never knows which engine answered.

- :class:`MemoryEngine` is the standalone hub: the room's next seq is assigned at once and
  the event is committed (kept, fanned out) in the same call.
- :class:`ClusterEngine` is cluster mode (``--nats``): no seq is assigned here.  The event goes
  out as a :class:`Proposal`; the NATS shell (``hub.cluster``) publishes it to the room's
  JetStream subject, where a compare-and-set on the subject's last sequence gives it the room's
  next seq, and every hub (this one included) commits what it consumes, in seq order, through
  :meth:`ClusterEngine.committed`.  The requester's answer waits for its own event to come
  back committed.

Both are sans-I/O: plain data in, plain data out.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import attrs
from roomcast.hub.rooms import Client, Room, RoomEvent
from roomcast.shared import events
from roomcast.shared.names import fold

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore

log = logging.getLogger("roomcast.hub")

Make = Callable[[int], RoomEvent]


class Engine(Protocol):
    """Orders and keeps room events: the one thing that differs between standalone and cluster."""

    #: False while the engine cannot take events (cluster: NATS unreachable); requests wait.
    available: bool
    #: Why not, for people.
    reason: str

    def publish(self, hub: HubCore, room: Room, make: Make, origin: Client | None, now: float) -> int:
        """Publish ``make(seq)`` to ``room``: return its seq, or 0 when it is not known yet
        (the event was proposed; it is committed when the engine orders it)."""
        ...

    def history(self, room: Room, since: int, until: int) -> tuple[list[RoomEvent], int]:
        """The room's kept events after ``since`` and up to ``until`` (0: no bound), and the seq
        of the oldest event still kept (``room.seq + 1`` when none)."""
        ...


def kept_history(room: Room, since: int, until: int) -> tuple[list[RoomEvent], int]:
    kept = [e for e in room.history if e.seq > since and (not until or e.seq <= until)]
    return kept, room.history[0].seq if room.history else room.seq + 1


@attrs.define
class MemoryEngine:
    """Standalone: the hub itself is the engine.  Seqs are assigned here, history is the room's
    ring in memory (or on disk with ``--data-dir``)."""

    available: bool = True
    reason: str = ""

    def publish(self, hub: HubCore, room: Room, make: Make, origin: Client | None, now: float) -> int:
        seq = room.next_seq()
        hub.commit(room, make(seq), origin, now)
        return seq

    def history(self, room: Room, since: int, until: int) -> tuple[list[RoomEvent], int]:
        return kept_history(room, since, until)


@attrs.frozen
class Proposal:
    """A room event for the cluster to order: ``event`` has seq 0 until JetStream gives it one.
    ``msg_id`` is its JetStream ``Nats-Msg-Id``: a publish retried under it is stored once."""

    room: str
    event: RoomEvent
    msg_id: str


@attrs.define(eq=False)
class Pending:
    """A proposal of this hub waiting to come back committed."""

    proposal: Proposal
    origin: Client | None
    since: float
    #: Called with the committed seq (the requester's answer), or with None when it failed.
    on_done: Callable[[int | None], None] | None = None


@attrs.frozen
class Committed:
    """An event the cluster ordered (from the room's JetStream subject), for every hub."""

    event: RoomEvent
    msg_id: str = ""
    hub: str = ""


@attrs.frozen
class Failed:
    """A proposal of this hub that the cluster did not take in time (NATS unreachable)."""

    msg_id: str
    reason: str


@attrs.frozen
class Status:
    """The NATS side's state: ``available`` false while events cannot be published."""

    available: bool
    reason: str = ""


@attrs.frozen
class BadData:
    """Something on a room subject that is not a room event of that room: counted, skipped."""

    what: str


EngineInput = Committed | Failed | Status | BadData


@attrs.define
class ClusterEngine:
    """Cluster mode's core-side half: proposals out (for the NATS shell), commits in."""

    hub_name: str
    available: bool = False
    reason: str = "connecting to NATS"
    pending: dict[str, Pending] = attrs.Factory(dict)
    _out: list[Proposal] = attrs.Factory(list)
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))

    def publish(self, hub: HubCore, room: Room, make: Make, origin: Client | None, now: float) -> int:
        proposal = Proposal(room.name, make(0), f"{self.hub_name}.{next(self._ids)}")
        pending = Pending(proposal, origin, now)
        self.pending[proposal.msg_id] = pending
        self._out.append(proposal)
        hub.proposed = pending
        return 0

    def history(self, room: Room, since: int, until: int) -> tuple[list[RoomEvent], int]:
        # The ring is filled by what this hub consumed from the room's subject, which keeps the
        # same last HISTORY_PER_ROOM events (max_msgs_per_subject): it is the engine's history.
        return kept_history(room, since, until)

    def proposals_to_send(self) -> list[Proposal]:
        out, self._out = self._out, []
        return out

    def receive(self, hub: HubCore, inputs: list[EngineInput], now: float) -> None:
        """What the NATS shell brought back: committed events in order, failures, status."""
        for item in inputs:
            if isinstance(item, Committed):
                self._committed(hub, item, now)
            elif isinstance(item, BadData):
                hub.counters.inc("cluster.bad-data")
                if hub.counters["cluster.bad-data"] in (1, 10, 100, 1000):
                    log.warning(
                        "skipped bad data on a room subject: %s (counted as cluster.bad-data)", item.what
                    )
            elif isinstance(item, Failed):
                hub.counters.inc("cluster.publish-failed")
                pending = self.pending.pop(item.msg_id, None)
                if pending is not None and pending.on_done is not None:
                    pending.on_done(None)
            else:
                self.available, self.reason = item.available, item.reason
                hub.counters.inc("cluster.available" if item.available else "cluster.unavailable")

    def _committed(self, hub: HubCore, item: Committed, now: float) -> None:
        event = item.event
        room = hub.registry.rooms.get(fold(event.room))
        if room is None:
            room = hub.registry.rooms[fold(event.room)] = Room(event.room)
        if event.seq <= room.seq:
            hub.counters.inc("cluster.stale")  # seen already (a consumer restarted behind us)
            return
        pending = self.pending.pop(item.msg_id, None) if item.msg_id else None
        origin = pending.origin if pending is not None else None
        if origin is not None and hub.registry.clients.get(origin.address) is not origin:
            origin = None
        room.seq = event.seq
        room.last_active = now
        if isinstance(event, events.Presence) and event.what == "topic":
            room.topic, room.topic_by, room.topic_ts = event.detail, event.nick, event.ts
        hub.counters.inc("cluster.committed")
        hub.commit(room, event, origin, now)
        if pending is not None and pending.on_done is not None:
            pending.on_done(event.seq)
