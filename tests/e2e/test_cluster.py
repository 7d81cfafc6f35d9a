"""Cluster mode with real processes: hubs started with ``--nats`` on a real nats-server node.

One room means the same room on every hub: its events get one cluster-wide, contiguous seq
from JetStream, every member on every hub sees them in that order, history and catch-up come
from the streams, and text clients see lines said on other hubs.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from roomcast.shared import events

from tests.tools.chatclient import ChatClient
from tests.tools.hubproc import BIN, HubProcess, free_udp_port, running_hub
from tests.tools.liveproc import clean_env, netcat_client
from tests.tools.natsproc import NatsNode, nats_nodes
from tests.tools.textbook import TextbookClient

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def nats1(tmp_path: Path) -> Iterator[NatsNode]:
    with nats_nodes(tmp_path, 1) as nodes:
        yield nodes[0]


@pytest.fixture
def hubs(tmp_path: Path, nats1: NatsNode) -> Iterator[list[HubProcess]]:
    with ExitStack() as stack:
        yield [stack.enter_context(running_hub(tmp_path, "--nats", nats1.url)) for _ in range(3)]


def timeline(events_seen: list[events.RoomEvent]) -> list[tuple[int, str, str]]:
    return [(e.seq, e.nick, e.body if isinstance(e, events.Deliver) else e.what) for e in events_seen]


def test_concurrent_senders_on_three_hubs_give_identical_order_and_seqs_everywhere(
    hubs: list[HubProcess],
) -> None:
    clients = [ChatClient(hub.address, f"user{n}") for n, hub in enumerate(hubs)]
    own: dict[str, dict[int, str]] = {c.nick: {} for c in clients}
    per_sender = 40
    try:
        joined = [c.join("ops") for c in clients]
        assert all(isinstance(j, events.Reply) and j.seq > 0 for j in joined), joined
        start = max(j.seq for j in joined)

        def talk(client: ChatClient) -> None:
            for i in range(per_sender):
                answer = client.say("ops", f"{client.nick} line {i}")
                assert isinstance(answer, events.Reply) and answer.seq > 0, answer
                own[client.nick][answer.seq] = answer.text

        threads = [threading.Thread(target=talk, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        last = start + 3 * per_sender
        assert max(max(seqs) for seqs in own.values()) == last, "seqs are contiguous: none skipped"
        # Each member sees every event after the joins, but its own lines (their seqs came in
        # its answers): together, each one's view is the whole room, in one order.
        for client in clients:
            wanted = set(range(start + 1, last + 1)) - set(own[client.nick])
            client.wait_for(lambda c=client, w=wanted: w <= {e.seq for e in c.seen("ops")}, "every line")
        views = [
            {s: t for s, t in ((e.seq, timeline([e])[0]) for e in c.seen("ops")) if s > start}
            for c in clients
        ]
        merged: dict[int, tuple[int, str, str]] = {}
        for view in views:
            for seq, item in view.items():
                assert merged.setdefault(seq, item) == item, f"seq {seq} differs between hubs"
        assert sorted(merged) == list(range(start + 1, last + 1))
        bodies = [body for _, _, body in merged.values()]
        assert len(set(bodies)) == len(bodies) == 3 * per_sender, "every line once"
        for client in clients:  # each sender's lines in the order it said them, at its seqs
            theirs = [(s, b) for s, (_, n, b) in sorted(merged.items()) if n == client.nick]
            assert [b for _, b in theirs] == [f"{client.nick} line {i}" for i in range(per_sender)]
            assert {s for s, _ in theirs} == set(own[client.nick])
    finally:
        for client in clients:
            client.close()


def test_history_and_catch_up_through_another_hub(hubs: list[HubProcess]) -> None:
    alice = ChatClient(hubs[0].address, "alice")
    try:
        alice.join("news")
        seqs = [alice.say("news", f"item {i}").seq for i in range(5)]  # type: ignore[union-attr]
        bob = ChatClient(hubs[1].address, "bob")
        try:
            joined = bob.join("news", history=3)
            assert isinstance(joined, events.Reply)
            assert [e.body for e in bob.history if isinstance(e, events.Deliver)] == [
                "item 2",
                "item 3",
                "item 4",
            ]
            since = bob.request(events.History(id=0, room="news", since=seqs[0], until=seqs[3]))
            assert isinstance(since, events.Reply) and since.text.startswith("3 earlier messages"), since
            caught = [e.seq for e in bob.history if e.seq > seqs[0]]
            assert caught[-3:] == seqs[1:4]
        finally:
            bob.close()
    finally:
        alice.close()


def test_text_clients_on_two_hubs_see_each_others_lines(hubs: list[HubProcess]) -> None:
    one, two = hubs[0], hubs[1]
    with netcat_client(*two.address) as nc, TextbookClient(*one.address) as guest:
        nc.send("/live on")
        nc.wait_for("live mode on")
        first = guest.say("hello from hub one")
        assert "sent to lobby" in first
        nc.wait_for(re.escape(f"[lobby] {guest.nick}: hello from hub one"))
        nc.send("and hello from hub two")
        nc.wait_for(r"guest-\d+: and hello from hub two|sent to lobby")
        answer = guest.say("")
        assert "and hello from hub two" in answer, answer


def test_bad_data_on_a_room_subject_is_counted_and_skipped(hubs: list[HubProcess], nats1: NatsNode) -> None:
    alice = ChatClient(hubs[0].address, "alice")
    bob = ChatClient(hubs[1].address, "bob")
    try:
        alice.join("lobby")
        bob.join("lobby")
        asyncio.run(_publish_junk(nats1.url, "roomcast.room.0.lobby"))
        after = alice.say("lobby", "still here")
        assert isinstance(after, events.Reply) and after.seq > 0, after
        bob.wait_for(lambda: any(getattr(e, "body", "") == "still here" for e in bob.seen("lobby")), "line")
    finally:
        alice.close()
        bob.close()
    hubs[1].stop()
    assert re.search(r"cluster\.bad-data=[1-9]", hubs[1].log()), hubs[1].log()[-2000:]


async def _publish_junk(url: str, subject: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=2.0)
        await js.publish(subject, b"\xc1not msgpack")
        await js.publish(subject, b"\x81\xa3hub\xa1x")  # a map without ev
    finally:
        await nc.close()


def test_a_hub_refuses_other_stream_shards_than_the_cluster_was_created_with(
    tmp_path: Path, nats1: NatsNode
) -> None:
    with running_hub(tmp_path, "--nats", nats1.url):
        pass  # creates the streams with --stream-shards 1
    port = free_udp_port()
    result = subprocess.run(
        [str(BIN / "roomcast-hub"), "--port", str(port), "--nats", nats1.url, "--stream-shards", "2"],
        capture_output=True, text=True, timeout=30, env=clean_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 1, result
    assert "--stream-shards 1" in result.stderr, result.stderr
