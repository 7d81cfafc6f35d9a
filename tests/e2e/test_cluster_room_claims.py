"""The rooms bucket (hub.cluster.roombook) against a real nats-server: three hubs' books, each
on its own connection, claim look-alike room names at the same instant, many times over."""

from __future__ import annotations

import asyncio
import string
from pathlib import Path

import nats
import pytest

from roomcast.hub.cluster.nicks import open_bucket
from roomcast.hub.cluster.roombook import RoomBook
from roomcast.shared import limits
from tests.tools.natsproc import nats_nodes

pytestmark = pytest.mark.timeout(60)

ROUNDS = 15


def look_alikes(n: int) -> list[str]:
    """Three names that share a look two by two (``l``/``I``/``1``, ``0``/``O``), and with
    another look each, so a claim can take one look and lose the next."""
    tag = string.ascii_lowercase[n % 26] + string.ascii_lowercase[n // 26]
    return [f"lake{tag}0", f"Iake{tag}0", f"1ake{tag}0"]


async def _race(url: str) -> list[tuple[list[str | None], list[str]]]:
    connections = [await nats.connect(url) for _ in range(3)]
    try:
        books = []
        for n, nc in enumerate(connections):
            kv = await open_bucket(nc.jetstream(timeout=limits.NATS_API_TIMEOUT), "race_rooms", 1)
            books.append(RoomBook(kv, f"hub{n}", lambda _item: None))
        rounds = []
        for r in range(ROUNDS):
            names = look_alikes(r)
            names = names[r % 3 :] + names[: r % 3]  # each book goes first in turn
            rounds.append(
                (list(await asyncio.gather(*(b.claim(n) for b, n in zip(books, names, strict=True)))), names)
            )
        holders, names = rounds[-1]
        winner = names[holders.index(None)]
        assert [await book.claim(winner.upper()) for book in books] == [None] * 3, "the same room, again"
        for book in books:
            book.close()
        return rounds
    finally:
        for nc in connections:
            await nc.close()


def test_of_look_alike_room_names_claimed_at_once_on_three_hubs_exactly_one_wins(tmp_path: Path) -> None:
    with nats_nodes(tmp_path, 1) as (node,):
        rounds = asyncio.run(_race(node.url))
    for holders, names in rounds:
        winners = [name for name, holder in zip(names, holders, strict=True) if holder is None]
        assert len(winners) == 1, (names, holders)
        refused = [holder for holder in holders if holder is not None]
        assert refused == [winners[0]] * 2, f"each refusal names the room that was made: {names} {holders}"
