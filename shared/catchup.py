"""A room's catch-up after a rejoin, without I/O: what was missed, collected and put in order.

After a rejoin (a hub restart, a lost session, a drop for falling behind) a client asks the hub
for the room's events after the last seq it showed and before its rejoin (a ``History`` with
``since`` and ``until``).  The hub replays them as single datagrams (best effort) and then
answers, saying the seq of the last one it replayed.  Meanwhile new deliveries already arrive.

:class:`CatchUp` holds the new deliveries back and collects the replayed events; when the hub
answers, it looks for gaps in what it collected and asks about each gap again (``since`` and
``until`` bounded by the events around it), at most ``CATCH_UP_ASKS`` times each.  A gap the
hub answers with nothing replayed is settled: it holds nothing there (seqs skipped after a crash, or
messages too old to be kept).  Then the collected events and the held deliveries are shown,
each once, in the room's order.
"""

from __future__ import annotations

import itertools
from collections import Counter

import attrs

from roomcast.shared import events, limits

Shown = events.RoomEvent


@attrs.define
class CatchUp:
    """One room's catch-up: seqs after ``since``, up to ``until``, are being asked for."""

    since: int
    until: int
    #: Replayed events collected so far, by seq.
    caught: dict[int, Shown] = attrs.Factory(dict)
    #: New deliveries (after ``until``) released meanwhile, shown after the history.
    held: list[Shown] = attrs.Factory(list)
    #: The highest seq the hub said it replayed.
    replayed_to: int = 0
    #: Gaps (exclusive bounds) the hub said it holds nothing in.
    settled: set[tuple[int, int]] = attrs.Factory(set)
    #: How often each gap was asked about.
    asked: Counter[tuple[int, int]] = attrs.Factory(Counter)

    def first_ask(self, room: str) -> events.History:
        return events.History(id=0, room=room, since=self.since, until=self.until)

    def wants(self, seq: int) -> bool:
        return self.since < seq <= self.until

    def collect(self, event: Shown) -> None:
        self.caught.setdefault(event.seq, event)

    def answered(self, room: str, asked: events.History, last: int) -> events.History | None:
        """The hub answered ``asked``, having replayed up to seq ``last`` (0: nothing).  The
        next question (about the first gap not settled), or None: the catch-up is complete."""
        if last == 0:
            self.settled.add((asked.since, asked.until + 1))
        self.replayed_to = max(self.replayed_to, last)
        for gap in self._gaps():
            if gap not in self.settled and self.asked[gap] < limits.CATCH_UP_ASKS:
                self.asked[gap] += 1
                return events.History(id=0, room=room, since=gap[0], until=gap[1] - 1)
        return None

    def _gaps(self) -> list[tuple[int, int]]:
        """Runs of seqs neither collected nor known to be empty, as exclusive bounds."""
        points = [self.since, *sorted(self.caught)]
        if self.replayed_to > points[-1]:
            points.append(self.replayed_to + 1)
        return [(low, high) for low, high in itertools.pairwise(points) if high - low > 1]

    def ready(self) -> list[Shown]:
        """Everything to show now the catch-up is over: the history, then the held deliveries."""
        return [self.caught[seq] for seq in sorted(self.caught)] + self.held
