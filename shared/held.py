"""Lines a cluster did not confirm in time (``not-delivered``), held to be resent: sans-I/O.

The hub gave up waiting for JetStream, but the line may have been stored all the same; it is
resent under the same ``mid``, so the cluster (JetStream's ``Nats-Msg-Id`` dedupe, the hub's
record of the mids it consumed) carries it out once and answers with the seq it got.  The
resends are bounded in count and in time (``limits.NOT_DELIVERED_*``); after that the user is
told.
"""

from __future__ import annotations

from typing import Any

import attrs

from roomcast.shared import events, limits


@attrs.define
class HeldLines:
    """Lines waiting for their resend, and how often each ``mid`` was refused so far."""

    #: mid -> (time of its first "not-delivered", resends so far)
    tries: dict[int, tuple[float, int]] = attrs.Factory(dict)
    due: list[tuple[float, events.Say]] = attrs.Factory(list)

    def __len__(self) -> int:
        return len(self.due)

    def hold(self, say: events.Say, error: events.Error, now: float) -> str:
        """Hold ``say`` for a resend (""), or, its bound exhausted, say why it is given up."""
        first, count = self.tries.get(say.mid, (now, 0))
        if count < limits.NOT_DELIVERED_TRIES and now - first < limits.NOT_DELIVERED_WITHIN:
            self.tries[say.mid] = (first, count + 1)
            self.due.append((now + max(error.after, limits.NOT_DELIVERED_PAUSE), say))
            return ""
        self.tries.pop(say.mid, None)
        return (
            f"not delivered to {say.room}: {error.text} (sent {count + 1} times over "
            f"{now - first + 0.5:.0f} s); it may not have happened: say it again if it is not shown"
        )

    def done(self, mid: int) -> None:
        """The line was answered: forget it."""
        self.tries.pop(mid, None)

    def next_deadline(self) -> float | None:
        return min((at for at, _ in self.due), default=None)

    def ready(self, now: float) -> list[Any]:
        """The lines to resend now, in the order they were held."""
        ready = [say for at, say in self.due if at <= now]
        if ready:
            self.due = [(at, say) for at, say in self.due if at > now]
        return ready

    def take_all(self) -> list[Any]:
        """Every held line (a new session resends them at once)."""
        held, self.due = [say for _, say in self.due], []
        return held
