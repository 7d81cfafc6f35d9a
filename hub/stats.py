"""The hub's counters: one flat namespace of named integers, shown in the log and /stats."""

from __future__ import annotations

import os
import resource
from collections import Counter

#: The counters every datagram or room message moves: plain attributes, so the hot paths add
#: to them without a call or a dict (``counters.deliveries += n``).
HOT = ("datagrams_in", "bytes_in", "datagrams_out", "bytes_out", "deliveries", "messages")


class Counters:
    """Monotonic counters by name, e.g. ``datagrams_in``, ``errors.bad-name``, ``drops.bad-token``.
    The :data:`HOT` ones are attributes; :attr:`values` shows them all together."""

    __slots__ = ("_named", *HOT)

    def __init__(self) -> None:
        self._named: Counter[str] = Counter()
        self.datagrams_in = self.bytes_in = self.datagrams_out = self.bytes_out = 0
        self.deliveries = self.messages = 0

    def inc(self, name: str, amount: int = 1) -> None:
        if name in HOT:
            setattr(self, name, getattr(self, name) + amount)
        else:
            self._named[name] += amount

    def __getitem__(self, name: str) -> int:
        return int(getattr(self, name)) if name in HOT else self._named[name]

    @property
    def values(self) -> Counter[str]:
        """Every counter that moved, by name (a copy)."""
        values = Counter(self._named)
        for name in HOT:
            if getattr(self, name):
                values[name] = getattr(self, name)
        return values

    def line(self, gauges: dict[str, int | float]) -> str:
        """``key=value`` pairs, gauges first, then counters in name order."""
        pairs = [*gauges.items(), *sorted(self.values.items())]
        return " ".join(f"{key}={value}" for key, value in pairs)


def rss_kib() -> int:
    """Resident set size of this process in KiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
