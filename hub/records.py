"""What the core hands its shell to keep on disk, and what it gets back at start.

With ``--data-dir`` the hub keeps room history in SQLite (``hub.store``).  The core stays
sans-I/O: it lists what must be stored (:meth:`HubCore.records_to_store`, like
``datagrams_to_send``) and starts from a :class:`SavedHistory` the shell loaded
(:meth:`HubCore.restore`).  These plain values are all the two sides share.
"""

from __future__ import annotations

import attrs

from roomcast.hub.rooms import RoomEvent


@attrs.frozen
class RoomTopic:
    """A room's topic was set (``text`` empty: cleared) by ``by`` at wall-clock ``ts``."""

    room: str
    text: str
    by: str
    ts: float


@attrs.frozen
class RoomGone:
    """The hub forgot a room (no members, no topic, quiet too long): so does the store."""

    room: str


#: One thing to store: a room event that went into its history, a topic change, a room gone.
Record = RoomEvent | RoomTopic | RoomGone


@attrs.frozen
class SavedRoom:
    """A room as the store kept it: ``seq`` is where its numbering goes on."""

    name: str
    seq: int
    #: The last events of the room, oldest first.
    history: tuple[RoomEvent, ...] = ()
    topic: RoomTopic | None = None


@attrs.frozen
class SavedHistory:
    """Everything a hub restores from its data directory.

    ``epoch`` names this history; the hub announces it as ``Welcome.hub`` so that a client
    that saw it before knows its room seqs still mean the same messages."""

    epoch: bytes
    rooms: tuple[SavedRoom, ...] = ()
