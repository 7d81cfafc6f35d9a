"""Lines a cluster did not confirm in time (``not-delivered``), held to be resent: sans-I/O.

The hub gave up waiting for JetStream, but the line may have been stored all the same; it is
resent under the same ``mid``, so the cluster (JetStream's ``Nats-Msg-Id`` dedupe, the hub's
record of the mids it consumed) carries it out once and answers with the seq it got.  The
resends are bounded in count and in time (``limits.NOT_DELIVERED_*``); after that the user is
told.

A session's lines to one room keep the order typed: while a line to a room is held (waiting
for its resend, or resent and not answered yet), the lines typed after it to that room are
not sent; they wait behind it (:meth:`HeldLines.wait_behind`) and go once it is answered.  A
room's held lines are resent one at a time, oldest first.  When a held line is given up, the
lines waiting behind it are given up with it, unsent, each named to the user: sent after a
gap, they would appear without the line before them, which may not have happened.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import attrs

from roomcast.shared import events, limits
from roomcast.shared.names import fold

#: Characters of a line given up unsent that its notice quotes.
QUOTED = 40


@attrs.define
class HeldLines:
    """Lines waiting for their resend, the lines typed behind them, and how often each
    ``mid`` was refused so far."""

    #: mid -> (time of its first "not-delivered", resends so far)
    tries: dict[int, tuple[float, int]] = attrs.Factory(dict)
    #: Held lines and when each may go again, oldest line (lowest mid) first.
    due: list[tuple[float, events.Say]] = attrs.Factory(list)
    #: Folded room -> its lines held or resent and not answered yet (the room is blocked).
    blocked: Counter[str] = attrs.Factory(Counter)
    #: Folded room -> the mid of its held line resent and not answered yet (one at a time).
    out: dict[str, int] = attrs.Factory(dict)
    #: Folded room -> lines typed after its held line, not sent yet, in the order typed.
    behind: dict[str, deque[events.Say]] = attrs.Factory(dict)

    def __len__(self) -> int:
        return len(self.due) + sum(len(lines) for lines in self.behind.values())

    def blocks(self, room: str) -> bool:
        """Whether a line to ``room`` must wait behind a held one."""
        return bool(self.blocked) and fold(room) in self.blocked

    def wait_behind(self, say: events.Say) -> None:
        self.behind.setdefault(fold(say.room), deque()).append(say)

    def hold(self, say: events.Say, error: events.Error, now: float) -> str:
        """Hold ``say`` for a resend (""), or, its bound exhausted, say why it is given up."""
        key = fold(say.room)
        if self.out.get(key) == say.mid:
            del self.out[key]
        first, count = self.tries.get(say.mid, (now, 0))
        if say.mid not in self.tries:
            self.blocked[key] += 1
        if count < limits.NOT_DELIVERED_TRIES and now - first < limits.NOT_DELIVERED_WITHIN:
            self.tries[say.mid] = (first, count + 1)
            self.due.append((now + max(error.after, limits.NOT_DELIVERED_PAUSE), say))
            self.due.sort(key=lambda held: held[1].mid)
            return ""
        return self.give_up(say, error.text, now)

    def give_up(self, say: events.Say, reason: str, now: float) -> str:
        """Forget ``say``; what to tell the user."""
        first, count = self.tries.get(say.mid, (now, 0))
        self._forget(say)
        return (
            f"not delivered to {say.room}: {reason} (sent {count + 1} times over "
            f"{now - first + 0.5:.0f} s); it may not have happened: say it again if it is not shown"
        )

    def done(self, say: events.Say) -> list[events.Say]:
        """``say`` was answered: forget it; return the lines that waited behind it and may go
        now (in the order typed)."""
        if say.mid not in self.tries:
            return []
        self._forget(say)
        key = fold(say.room)
        return list(self.behind.pop(key, ())) if key not in self.blocked else []

    def given_up_behind(self, say: events.Say) -> list[tuple[events.Say, str]]:
        """``say`` was given up: the lines typed behind it that are given up with it (unless
        another held line of the room still goes first), each with the user's notice."""
        key = fold(say.room)
        if key in self.blocked:
            return []
        return [
            (
                line,
                f"not sent to {line.room}: {_quote(line.body)} was typed after a line that was not "
                "delivered; say it again if you still mean it",
            )
            for line in self.behind.pop(key, ())
        ]

    def _forget(self, say: events.Say) -> None:
        key = fold(say.room)
        self.tries.pop(say.mid, None)
        if self.out.get(key) == say.mid:
            del self.out[key]
        self.blocked[key] -= 1
        if self.blocked[key] <= 0:
            del self.blocked[key]

    def next_deadline(self) -> float | None:
        return min((at for at, say in self.due if fold(say.room) not in self.out), default=None)

    def ready(self, now: float) -> tuple[list[Any], list[tuple[events.Say, str]]]:
        """The lines to resend now (each room's oldest, if none of the room's is out), and the
        lines whose time ran out while they waited their turn, given up (with the notice)."""
        ready: list[Any] = []
        expired: list[tuple[events.Say, str]] = []
        kept: list[tuple[float, events.Say]] = []
        turn_taken: set[str] = set(self.out)
        for at, say in self.due:
            key = fold(say.room)
            if at > now or key in turn_taken:
                kept.append((at, say))
            elif now - self.tries.get(say.mid, (now, 0))[0] >= limits.NOT_DELIVERED_WITHIN:
                expired.append((say, "the cluster did not confirm it in time"))
                continue
            else:
                ready.append(say)
                self.out[key] = say.mid
            turn_taken.add(key)
        self.due = kept
        return ready, [(say, self.give_up(say, reason, now)) for say, reason in expired]

    def take_all(self) -> list[Any]:
        """Every held line, then every line behind one, each room's in the order typed (a new
        session resends them at once)."""
        held = [say for _, say in self.due] + [say for lines in self.behind.values() for say in lines]
        self.due, self.behind = [], {}
        self.blocked.clear()
        self.out.clear()
        return held


def in_typed_order(requests: list[Any]) -> list[Any]:
    """``requests`` with the numbered lines among them put in the order typed (by ``mid``),
    each in the place of one of them; the rest keep their places."""
    lines = iter(sorted((r for r in requests if isinstance(r, events.Say) and r.mid), key=lambda r: r.mid))
    return [next(lines) if isinstance(r, events.Say) and r.mid else r for r in requests]


def _quote(body: str) -> str:
    return repr(body if len(body) <= QUOTED else body[: QUOTED - 3] + "...")
