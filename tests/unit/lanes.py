"""Run the same steps through a hub with its fast lane and with the lane closed (every
datagram on the full path), to check that the lane changes nothing but the cost."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar
from unittest import mock

T = TypeVar("T")


def both_lanes(module: ModuleType, run: Callable[[], T]) -> tuple[T, T, list[bool]]:
    """``run()`` with ``module._fast_say`` open, then closed: both outcomes, and whether the
    lane took each datagram offered to it in the first run."""
    used: list[bool] = []
    fast_say = module._fast_say

    def counted(*args: Any) -> bool:
        taken = bool(fast_say(*args))
        used.append(taken)
        return taken

    with mock.patch.object(module, "_fast_say", counted):
        fast = run()
    with mock.patch.object(module, "_fast_say", lambda *args: False):
        full = run()
    return fast, full, used
