"""The hub's counters: one flat namespace of named integers, shown in the log and /stats."""

from __future__ import annotations

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
