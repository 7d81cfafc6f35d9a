"""Which hub of the user's list (``roomcast --hub A,B,C``) the client's link talks to, and when
it moves on to the next one, without I/O.

With one hub nothing changes: the link waits for that hub to come back.  With a list, the
link uses the first hub that answers; when that hub goes silent, forgets the session, says
bye or refuses to take the client (full, shutting down), the link moves on to the next hub,
round robin, and rejoins its rooms there.  It pings more often and gives up on a silent hub
sooner, so that it is on another hub well within 10 s of its hub's death.  The shell reads
:attr:`HubList.index` to know where to send and whom to listen to.
"""

from __future__ import annotations

import attrs

from roomcast.shared import limits


@attrs.define
class HubList:
    """The hubs by name (as the user wrote them), the one in use, and since when."""

    names: tuple[str, ...]
    index: int = 0
    #: When the link started on the current hub (connecting to it).
    since: float = 0.0
    #: Hubs that refused the client at hello (full) since it last had a session.
    refused: set[int] = attrs.Factory(set)

    def __attrs_post_init__(self) -> None:
        if not self.names:
            raise ValueError("a hub list needs at least one hub")

    @property
    def many(self) -> bool:
        return len(self.names) > 1

    @property
    def current(self) -> str:
        return self.names[self.index]

    def move_on(self, now: float) -> None:
        """Take the next hub of the list (round robin)."""
        self.index = (self.index + 1) % len(self.names)
        self.since = now

    def refuse(self) -> bool:
        """The current hub would not take us: True if another one in the list has not refused."""
        self.refused.add(self.index)
        return len(self.refused) < len(self.names)

    def settled(self) -> None:
        """A hub took us: every hub may be tried again next time."""
        self.refused.clear()

    def silence_timeout(self) -> float:
        """Seconds without a word from the hub after which it counts as gone."""
        return limits.FAILOVER_SILENCE_TIMEOUT if self.many else limits.HUB_SILENCE_TIMEOUT

    def ping_interval(self, idle: float) -> float:
        """Ping after this long without hearing from the hub (``idle``: the hub's eviction time)."""
        interval = limits.FAILOVER_PING_INTERVAL if self.many else limits.PING_INTERVAL
        return min(interval, idle / 3) if idle > 0 else interval

    def connect_timeout(self) -> float:
        """How long a first connection may take: long enough to try every hub once."""
        return max(limits.CONNECT_TIMEOUT, len(self.names) * limits.HUB_ANSWER_TIMEOUT)

    def answer_deadline(self, last_heard: float) -> float | None:
        """While connecting: when to give up on the current hub's answer and try the next one."""
        if not self.many:
            return None
        return max(self.since, last_heard) + limits.HUB_ANSWER_TIMEOUT

    def describe(self) -> str:
        """The hubs for a message: "the hub" or "any of the hubs A, B"."""
        return f"any of the hubs {', '.join(self.names)}" if self.many else "the hub"
