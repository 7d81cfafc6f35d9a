"""Room names in cluster mode: a new room's name is claimed cluster-wide before its first event.

Every hub knows every room (it consumes every room subject), so a look-alike of a room made
elsewhere is refused locally, as on a standalone hub.  Two look-alikes made on two hubs within
the same few milliseconds are not seen in time that way: so the first join of a room this hub
has no event of (seq 0) goes out as a :class:`~hub.cluster.messages.ClaimRoom` first, and the
room's proposals wait behind it.  The NATS side (``hub.cluster.roombook``) claims the name's
looks in the rooms bucket with create-if-absent; of two racing look-alikes exactly one wins on
every hub.  The loser's requests are answered ``name-confusable`` (the standalone hub's words)
and its local room is dropped.  Sans-I/O.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from roomcast.hub.cluster import messages as m
from roomcast.hub.engine import Deferred
from roomcast.hub.rooms import Client, Refused, Room
from roomcast.shared import events
from roomcast.shared.names import fold

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore

#: Publish a proposal that may go now: (proposal, the client it answers, its deferred answer).
Go = Callable[[m.Proposal, Client | None, Deferred], object]


@attrs.define(eq=False)
class Waiting:
    """A room whose name is being claimed, and its proposals (in the order made) behind it."""

    ref: str
    room: Room
    held: list[tuple[m.Proposal, Client | None, Deferred]] = attrs.Factory(list)


class RoomClaims:
    """Claims in flight, by folded room name; outputs go to the engine's list."""

    def __init__(self, out: list[m.Output], ids: itertools.count[int], go: Go) -> None:
        self._out = out
        self._ids = ids
        self._go = go
        self.waiting: dict[str, Waiting] = {}

    def hold(self, room: Room, proposal: m.Proposal, origin: Client | None) -> Deferred | None:
        """Keep ``proposal`` until ``room``'s name is claimed: its deferred answer; None when it
        may go now (the cluster has events of the room, or it is no join of a new room)."""
        key = fold(room.name)
        waiting = self.waiting.get(key)
        if waiting is None:
            event = proposal.event
            if room.seq or not (isinstance(event, events.Presence) and event.what == "joined"):
                return None
            waiting = self.waiting[key] = Waiting(f"room.{next(self._ids)}", room)
            self._out.append(m.ClaimRoom(waiting.ref, room.name))
        deferred = Deferred()
        waiting.held.append((proposal, origin, deferred))
        return deferred

    def claimed(self, hub: HubCore, result: m.RoomResult) -> None:
        key = next((k for k, w in self.waiting.items() if w.ref == result.ref), None)
        if key is None:
            return
        waiting = self.waiting.pop(key)
        if result.ok:
            for proposal, origin, deferred in waiting.held:
                self._go(proposal, origin, deferred)
            return
        error = events.Error(code=result.code, text=result.text)
        room = waiting.room
        for proposal, origin, deferred in waiting.held:
            joined = isinstance(proposal.event, events.Presence) and proposal.event.what == "joined"
            if joined and origin is not None and origin.address in room.members:
                with contextlib.suppress(Refused):
                    hub.registry.part(origin, room.name)  # the join did not happen
            deferred.settle(error)
        if not room.members and not room.seq:
            hub.registry.forget_room(room)
