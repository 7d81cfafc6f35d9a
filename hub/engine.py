"""Where a room's events get their seq: one small interface, two engines.

Modelled on Centrifuge's ``Broker`` (publish returns the stream position; history reads a
stream since a position): the core (``hub.core``) asks its engine to publish a room event and
never knows which engine answered.

- :class:`MemoryEngine` is the standalone hub: the room's next seq is assigned at once and
  the event is committed (kept, fanned out) in the same call.
- ``hub.cluster.engine.ClusterEngine`` is cluster mode (``--nats``): no seq is assigned
  here.  The event goes out as a proposal; the NATS shell (``hub.cluster``) publishes it to
  the room's JetStream subject, where a compare-and-set on the subject's last sequence gives
  it the room's next seq, and every hub (this one included) commits what it consumes, in seq
  order.  The requester's answer waits (:class:`Deferred`) for its own event to come back.

Both are sans-I/O: plain data in, plain data out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from roomcast.hub.rooms import Address, Client, Room, RoomEvent
from roomcast.shared import events
from roomcast.shared.names import fold

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore

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

    def members(self, hub: HubCore, room: Room) -> list[str]:
        """Nicks in ``room`` (on every hub), sorted case-insensitively."""
        ...

    def room_list(self, hub: HubCore) -> list[tuple[str, int, str]]:
        """Every room: its name, member count (on every hub) and topic."""
        ...

    def next_deadline(self) -> float | None: ...

    def on_timer(self, hub: HubCore, now: float) -> None: ...

    def hello(self, hub: HubCore, address: Address, hello: events.Hello, now: float) -> bool:
        """Open the session (True), or leave it to the core (False)."""
        ...

    def gone(self, hub: HubCore, client: Client, reason: str, now: float) -> bool:
        """``client`` left this hub (``reason``); True when its session lives on through
        another hub (it did not quit: it went silent here and resumed there)."""
        ...

    def reserve(self, hub: HubCore, nick: str, now: float) -> bool:
        """A text client's guest nick: False if another hub is known to have it; else it is
        claimed for this hub (cluster mode: in the background)."""
        ...

    def claim_rename(self, hub: HubCore, client: Client, nick: str, now: float) -> bool:
        """Cluster mode: claim ``nick`` for ``client`` first and rename it then (True; the
        answer waits through ``hub.proposed``); standalone: False, rename now."""
        ...

    def totals(self, hub: HubCore, now: float) -> list[str]:
        """Lines for /stats about the whole cluster (none standalone)."""
        ...

    def gauges(self) -> dict[str, int | float]:
        """The engine's own figures for the stats line (``cluster.*``)."""
        ...

    def report(self, hub: HubCore, now: float) -> dict[str, Any] | None:
        """The /varz ``cluster`` section (None standalone)."""
        ...

    def direct_elsewhere(self, hub: HubCore, nick: str, sender: str, body: str, now: float) -> str | None:
        """Send a private line to ``nick`` on another hub: its display nick, or None if no hub
        has it.  The answer waits (``hub.proposed``) for the other hub's."""
        ...


@attrs.define(eq=False)
class Deferred:
    """An answer that waits for the cluster: ``on_done`` gets the committed seq (0 when the
    request made no room event) or the Error to answer instead."""

    on_done: Callable[[int | events.Error], None] | None = None
    #: Called with the committed seq before the answer (e.g. the history a join asked for).
    first: Callable[[int], object] | None = None

    def settle(self, result: int | events.Error) -> None:
        if self.first is not None and isinstance(result, int) and result:
            self.first(result)
        if self.on_done is not None:
            self.on_done(result)


def local_members(room: Room) -> dict[str, str]:
    return {fold(m.nick): m.nick for m in room.members.values()}


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

    def members(self, hub: HubCore, room: Room) -> list[str]:
        return sorted(local_members(room).values(), key=fold)

    def room_list(self, hub: HubCore) -> list[tuple[str, int, str]]:
        return [(room.name, len(room.members), room.topic) for room in hub.registry.rooms.values()]

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, hub: HubCore, now: float) -> None:
        return None

    def hello(self, hub: HubCore, address: Address, hello: events.Hello, now: float) -> bool:
        return False

    def gone(self, hub: HubCore, client: Client, reason: str, now: float) -> bool:
        return False

    def reserve(self, hub: HubCore, nick: str, now: float) -> bool:
        return True

    def claim_rename(self, hub: HubCore, client: Client, nick: str, now: float) -> bool:
        return False

    def totals(self, hub: HubCore, now: float) -> list[str]:
        return []

    def gauges(self) -> dict[str, int | float]:
        return {}

    def report(self, hub: HubCore, now: float) -> dict[str, Any] | None:
        return None

    def direct_elsewhere(self, hub: HubCore, nick: str, sender: str, body: str, now: float) -> str | None:
        return None
