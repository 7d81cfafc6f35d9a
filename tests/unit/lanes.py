"""Run the same steps through a hub with its fast lane and with the lane closed (every
datagram on the full path), to check that the lane changes nothing but the cost."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar
from unittest import mock

from hypothesis import strategies as st

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


def changed(data: bytes, draw: Any, first: int = 0) -> list[bytes]:
    """``data`` with 1 to 3 bytes (from ``first`` on) changed at random, that cut short at random,
    and that with up to 4 random bytes added: what a fast lane must read the same as the full
    decoder, or leave to it.  ``draw``: hypothesis's ``st.data()``."""
    mutated = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 3))):
        mutated[draw.draw(st.integers(first, len(mutated) - 1))] = draw.draw(st.integers(0, 255))
    return [bytes(mutated), bytes(mutated[: draw.draw(st.integers(0, len(mutated)))]),
            bytes(mutated) + draw.draw(st.binary(max_size=4))]  # fmt: skip
