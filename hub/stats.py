"""The hub's counters: one flat namespace of named integers, shown in the log and /stats."""

from __future__ import annotations

import os
import resource
from collections import Counter


class Counters:
    """Monotonic counters by name, e.g. ``datagrams_in``, ``errors.bad-name``, ``drops.bad-token``."""

    def __init__(self) -> None:
        self.values: Counter[str] = Counter()

    def inc(self, name: str, amount: int = 1) -> None:
        self.values[name] += amount

    def __getitem__(self, name: str) -> int:
        return self.values[name]

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
