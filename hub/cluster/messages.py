"""What crosses between the hub's core (trio thread) and the NATS side (asyncio thread).

Plain frozen values only: the core hands out the outputs, the NATS side brings back the
inputs, each side in batches (``hub.cluster.bridge``).  Nothing here imports nats-py.
"""

from __future__ import annotations

import attrs

from roomcast.hub.rooms import RoomEvent
from roomcast.shared import limits

# --- core -> NATS side -----------------------------------------------------------------------------


@attrs.frozen
class Proposal:
    """A room event for the cluster to order: ``event`` has seq 0 until JetStream gives it one.
    ``msg_id`` is its JetStream ``Nats-Msg-Id``: a publish retried under it is stored once."""

    room: str
    event: RoomEvent
    msg_id: str


@attrs.frozen
class ClaimNick:
    """Claim ``nick`` in the nicks bucket for this hub.  An existing claim is taken over when
    it carries the same ``resume`` hash (the same session, moving hubs) or belongs to a hub
    not in ``alive`` (when ``sure``: the core has watched long enough to know who is alive).
    Its looks (UTS #39 skeletons) are claimed with it, so a look-alike held on any hub is
    refused (``name-confusable``).  A ``probe`` claims nothing: it only says whether the nick,
    or one like it, is held (for a nick the hub refuses anyway, to name the reason standalone
    gives first)."""

    ref: str
    nick: str
    resume: bytes
    alive: frozenset[str]
    sure: bool
    probe: bool = False


@attrs.frozen
class ReleaseNick:
    """Drop ``nick``'s claim if ``owner`` still holds it."""

    nick: str
    owner: str


@attrs.frozen
class ClaimRoom:
    """Claim the looks (UTS #39 skeletons) of a new room's name in the rooms bucket before its
    first event is published: a look held for another room name refuses it
    (``name-confusable``), so of two look-alikes made on two hubs at once exactly one exists."""

    ref: str
    room: str


@attrs.frozen
class Snapshot:
    """One hub's heartbeat: its members per room (display names) and its client count."""

    hub: str
    rooms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    nicks: tuple[str, ...] = ()
    clients: int = 0
    #: The hub's session timeout: how long its members have to come back if it is lost.
    timeout: float = limits.SESSION_TIMEOUT
    #: Only a sign of life: the member lists were too large for one NATS message (the others
    #: keep what they know, kept current by presence events).
    partial: bool = False


@attrs.frozen
class Beat:
    """Publish this hub's heartbeat."""

    snapshot: Snapshot


@attrs.frozen
class PrivateOut:
    """A private line to ``to`` on hub ``hub``; the answer comes back as :class:`PrivateDone`."""

    ref: str
    hub: str
    to: str
    sender: str
    body: str
    ts: float


@attrs.frozen
class PrivateAnswer:
    """This hub's answer to a :class:`PrivateIn`."""

    reply: str
    ok: bool
    text: str = ""


Output = Proposal | ClaimNick | ReleaseNick | ClaimRoom | Beat | PrivateOut | PrivateAnswer

# --- NATS side -> core -------------------------------------------------------------------------------


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
class Duplicate:
    """A proposal of this hub that JetStream had stored already under its ``Nats-Msg-Id`` (a
    line resent through another hub after a failover): it holds room seq ``seq``."""

    msg_id: str
    seq: int


@attrs.frozen
class Status:
    """The NATS side's state: ``available`` false while events cannot be published."""

    available: bool
    reason: str = ""
    server: str = ""


@attrs.frozen
class BadData:
    """Something on a room subject that is not a room event of that room: counted, skipped."""

    what: str


@attrs.frozen
class NickResult:
    ref: str
    ok: bool
    text: str = ""
    #: Why not: "nick-taken", "name-confusable", or "unavailable" when the bucket could not be asked.
    code: str = "nick-taken"


@attrs.frozen
class RoomResult:
    """The answer to a :class:`ClaimRoom`: ``code`` "name-confusable" (``text`` names the room
    it looks like) or "unavailable" when not ``ok``."""

    ref: str
    ok: bool
    text: str = ""
    code: str = ""


@attrs.frozen
class Seen:
    """Another hub's heartbeat."""

    snapshot: Snapshot


@attrs.frozen
class PrivateIn:
    """A private line for a client of this hub; answer with :class:`PrivateAnswer` to ``reply``."""

    reply: str
    to: str
    sender: str
    body: str
    ts: float


@attrs.frozen
class PrivateDone:
    ref: str
    ok: bool
    text: str = ""


@attrs.frozen
class Figures:
    """The NATS side's measurements, for /varz and the stats line."""

    publish_p50_ms: float = 0.0
    publish_p99_ms: float = 0.0
    published: int = 0
    conflicts: int = 0
    retries: int = 0
    consumer_lag: int = 0


Input = (
    Committed
    | Duplicate
    | Failed
    | Status
    | BadData
    | NickResult
    | RoomResult
    | Seen
    | PrivateIn
    | PrivateDone
    | Figures
)
