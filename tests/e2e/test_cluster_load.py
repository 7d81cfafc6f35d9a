"""Cluster mode under load: one room, senders on two hubs, many lines in flight at once.

Each hub then has queued proposals for the room while a publish is in flight (they go as one
message under one compare-and-set), the two hubs contend for the room's next seq, and a hub
goes on with its next publish as soon as its consumer sees the last one stored.  Whatever the
interleaving, every member on both hubs sees the same events at the same seqs, every line
once, and each sender's lines in the order it said them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomcast.shared import events
from tests.tools.chatclient import ChatClient
from tests.tools.hubproc import HubProcess
from tests.tools.natsproc import cluster_hubs, nats_nodes

pytestmark = pytest.mark.timeout(120)

#: Lines in flight at once per sender (threads), and lines each thread says one after another.
IN_FLIGHT, LINES = 10, 20


@pytest.fixture
def two_hubs(tmp_path: Path) -> Iterator[list[HubProcess]]:
    with (
        nats_nodes(tmp_path, 1) as nodes,
        cluster_hubs(tmp_path, nodes[0].url, 2, "--flood-rate", "0") as hubs,
    ):
        yield hubs


def _talk(sender: ChatClient, lane: int, replies: dict[str, int]) -> None:
    for i in range(LINES):
        body = f"{sender.nick} {lane} {i}"
        answer = sender.say("busy", body)
        assert isinstance(answer, events.Reply) and answer.seq > 0, answer
        replies[body] = answer.seq


def test_senders_on_two_hubs_with_many_lines_in_flight_give_one_order_nothing_lost_or_doubled(
    two_hubs: list[HubProcess],
) -> None:
    senders = [ChatClient(hub.address, f"load{n}") for n, hub in enumerate(two_hubs)]
    watchers = [ChatClient(hub.address, f"watch{n}") for n, hub in enumerate(two_hubs)]
    everyone = [*senders, *watchers]
    replies: dict[str, int] = {}
    try:
        start = max(c.join("busy").seq for c in everyone)  # type: ignore[union-attr]
        lanes = [
            threading.Thread(target=_talk, args=(sender, lane, replies))
            for sender in senders
            for lane in range(IN_FLIGHT)
        ]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join(timeout=60)
        total = len(senders) * IN_FLIGHT * LINES
        assert len(replies) == total, "every line answered"
        last = start + total
        assert sorted(replies.values()) == list(range(start + 1, last + 1)), "one seq each, none skipped"
        for watcher in watchers:
            watcher.wait_for(
                lambda w=watcher: len([e for e in w.seen("busy") if e.seq > start]) >= total, "every line"
            )
        views = [
            [
                (e.seq, e.nick, e.body)
                for e in w.seen("busy")
                if e.seq > start and isinstance(e, events.Deliver)
            ]
            for w in watchers
        ]
        assert views[0] == views[1], "both hubs' members see the same lines at the same seqs"
        assert {body: seq for seq, _, body in views[0]} == replies, (
            "each line once, at the seq its sender got"
        )
        for sender in senders:
            for lane in range(IN_FLIGHT):  # each lane's lines in the order it said them
                said = [body for _, nick, body in views[0] if body.startswith(f"{sender.nick} {lane} ")]
                assert said == [f"{sender.nick} {lane} {i}" for i in range(LINES)]
    finally:
        for client in everyone:
            client.close()
