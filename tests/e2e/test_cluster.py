"""Cluster mode with real processes: hubs started with ``--nats`` on a real nats-server node.

One room means the same room on every hub: its events get one cluster-wide, contiguous seq
from JetStream, every member on every hub sees them in that order, history and catch-up come
from the streams, and text clients see lines said on other hubs.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roomcast.shared import events, limits
from tests.tools import screen
from tests.tools.chatclient import ChatClient, HelloRefused
from tests.tools.hubproc import BIN, HubProcess, free_udp_port, running_hub
from tests.tools.liveproc import clean_env, netcat_client, roomcast_client
from tests.tools.natsproc import NatsNode, cluster_hubs, free_tcp_port, nats_nodes
from tests.tools.processes import end, spawn
from tests.tools.textbook import TextbookClient

pytestmark = pytest.mark.timeout(120)


# One NATS node and three hubs for the whole module (starting them is most of the time these
# tests take): each test uses its own nicks and rooms.


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def nats1(module_tmp: Path) -> Iterator[NatsNode]:
    with nats_nodes(module_tmp, 1) as nodes:
        yield nodes[0]


@pytest.fixture(scope="module")
def hubs(module_tmp: Path, nats1: NatsNode) -> Iterator[list[HubProcess]]:
    with cluster_hubs(module_tmp, nats1.url, 3, "--stats-interval", "1") as started:
        yield started


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
        # Hub one has the line a moment after hub two confirmed it: an empty line collects.
        deadline, answers = time.monotonic() + 10, ""
        while "and hello from hub two" not in answers and time.monotonic() < deadline:
            answers += guest.say("") + "\n"
            time.sleep(0.05)
        assert "and hello from hub two" in answers, answers
        with pytest.raises(HelloRefused):  # a guest's nick is taken cluster-wide too
            ChatClient(two.address, guest.nick)


def test_bad_data_on_a_room_subject_is_counted_and_skipped(hubs: list[HubProcess], nats1: NatsNode) -> None:
    alice = ChatClient(hubs[0].address, "alice")
    bob = ChatClient(hubs[1].address, "bob")
    try:
        alice.join("junkyard")
        bob.join("junkyard")
        asyncio.run(_publish_junk(nats1.url, "roomcast.room.0.junkyard"))
        after = alice.say("junkyard", "still here")
        assert isinstance(after, events.Reply) and after.seq > 0, after
        bob.wait_for(
            lambda: any(getattr(e, "body", "") == "still here" for e in bob.seen("junkyard")), "line"
        )
    finally:
        alice.close()
        bob.close()
    deadline = time.monotonic() + 20  # the stats line comes every second
    while not re.search(r"cluster\.bad-data=2\b", hubs[1].log()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(r"cluster\.bad-data=2\b", hubs[1].log()), hubs[1].log()[-2000:]


async def _publish_junk(url: str, subject: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=2.0)
        await js.publish(subject, b"\xc1not msgpack")
        await js.publish(subject, b"\x81\xa3hub\xa1x")  # a map without evs
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


# --- nicks, presence and private lines across hubs ----------------------------------------------------


def race(hubs: list[HubProcess], nicks: list[str]) -> tuple[list[ChatClient], list[HelloRefused]]:
    """Hello ``nicks[n]`` on ``hubs[n]``, all at once: the sessions opened, and the refusals."""
    results: list[ChatClient | HelloRefused] = []

    def hello(hub: HubProcess, nick: str) -> None:
        try:
            results.append(ChatClient(hub.address, nick))
        except HelloRefused as refused:
            results.append(refused)

    threads = [threading.Thread(target=hello, args=pair) for pair in zip(hubs, nicks, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [r for r in results if isinstance(r, ChatClient)]
    return winners, [r for r in results if isinstance(r, HelloRefused)]


def test_a_nick_race_across_hubs_has_one_winner(hubs: list[HubProcess]) -> None:
    winners, losers = race(hubs, ["racer"] * 3)
    try:
        assert len(winners) == 1 and len(losers) == 2, (winners, losers)
        assert all(r.error.code == "nick-taken" for r in losers)
    finally:
        for winner in winners:
            winner.close()


def test_a_race_of_look_alike_nicks_across_hubs_has_one_winner(hubs: list[HubProcess]) -> None:
    winners, losers = race(hubs, ["lacer", "Iacer", "1acer"])  # all look like "lacer"
    try:
        assert len(winners) == 1 and len(losers) == 2, (winners, losers)
        assert all(r.error.code == "name-confusable" for r in losers), losers
    finally:
        for winner in winners:
            winner.close()


def test_a_nick_is_released_on_quit_and_kept_by_a_resumed_session(hubs: list[HubProcess]) -> None:
    first = ChatClient(hubs[0].address, "dana")
    assert len(first.welcome.resume) == 16
    with pytest.raises(HelloRefused):
        ChatClient(hubs[1].address, "dana")  # held by a live session on hub 0
    moved = ChatClient(hubs[1].address, "dana", resume=first.welcome.resume)  # the same session, moving
    assert moved.welcome.nick == "dana"
    moved.close()
    first.close(bye=False)
    hello_once_free(hubs[2], "dana").close()  # released on quit


def test_a_look_alike_of_a_nick_on_another_hub_is_refused_until_it_quits(hubs: list[HubProcess]) -> None:
    """``аlicia`` (Cyrillic а) on hub 1 while ``alicia`` is on hub 0: refused as name-confusable,
    naming alicia, as a standalone hub does; a Latin-only look-alike (capital I for l) too, by
    hello and by rename.  Once alicia quits, the look is free again."""
    alice = ChatClient(hubs[0].address, "alicia")
    bert = ChatClient(hubs[1].address, "bert")
    try:
        with pytest.raises(HelloRefused) as refused:
            ChatClient(hubs[1].address, "\u0430licia")
        assert refused.value.error.code == "name-confusable", refused.value.error
        assert "looks like alicia" in refused.value.error.text, refused.value.error
        with pytest.raises(HelloRefused) as refused:
            ChatClient(hubs[2].address, "AIicia")
        assert refused.value.error.code == "name-confusable", refused.value.error
        renamed = bert.request(events.Nick(id=0, nick="aIicia"))
        assert isinstance(renamed, events.Error) and renamed.code == "name-confusable", renamed
        lena = ChatClient(hubs[1].address, "lena")
        own = lena.request(events.Nick(id=0, nick="Iena"))  # looks like its own nick only: fine
        lena.close()
        assert isinstance(own, events.Reply), own
        moved = ChatClient(hubs[2].address, "alicia", resume=alice.welcome.resume)  # still its own
        moved.close()
    finally:
        alice.close(bye=False)
        bert.close()
    hello_once_free(hubs[1], "AIicia").close()  # released on quit: its looks too
    with pytest.raises(HelloRefused) as refused:
        ChatClient(hubs[1].address, "\u0430licia")
    assert refused.value.error.code == "name-mixed-scripts", refused.value.error


def test_a_hub_started_later_has_the_rooms_last_events_from_jetstream_and_says_older_are_gone(
    tmp_path: Path, hubs: list[HubProcess], nats1: NatsNode
) -> None:
    """History lives in JetStream: a hub that was not there when the lines were said answers
    /history and since-seq catch-up from the stream's last HISTORY_PER_ROOM events, and says
    "older messages are gone" for the rest, as every other hub does."""
    kept = limits.HISTORY_PER_ROOM
    with cluster_hubs(tmp_path, nats1.url, 1, "--flood-rate", "0") as (quick,):  # no pacing
        alice = ChatClient(quick.address, "ringer")
        try:
            alice.join("ring")  # seq 1: the join
            said = [alice.say("ring", f"r{i}") for i in range(kept + 4)]
            assert all(isinstance(s, events.Reply) for s in said), said[-1]
            last = max(s.seq for s in said if isinstance(s, events.Reply))
        finally:
            alice.close()
    with cluster_hubs(tmp_path, nats1.url, 1) as (late,):
        for hub in (late, hubs[1]):
            bob = ChatClient(hub.address, "ringreader")
            try:
                assert isinstance(bob.join("ring"), events.Reply)
                caught = bob.request(events.History(id=0, room="ring", since=1, until=last))
                assert isinstance(caught, events.Reply), caught
                assert caught.text.endswith("older messages are gone"), caught
                bodies = [e.body for e in bob.history if isinstance(e, events.Deliver)]
                assert bodies[-1] == f"r{kept + 3}" and last - bob.history[0].seq < kept, bodies[:3]
                assert len(bodies) == len(set(bodies)), "each once"
            finally:
                bob.close()


def test_two_clusters_on_one_nats_system_share_no_room_and_no_nick(
    tmp_path: Path, hubs: list[HubProcess], nats1: NatsNode
) -> None:
    """``--cluster NAME`` prefixes every stream, bucket and subject: a hub of another cluster on
    the same NATS sees none of this cluster's rooms and nicks.  The stats line of this
    cluster's hubs carries its ``cluster.*`` counters."""
    twin = ChatClient(hubs[0].address, "twin")
    try:
        assert isinstance(twin.join("twinroom"), events.Reply)
        with cluster_hubs(tmp_path, nats1.url, 1, "--cluster", "other") as (other,):
            stranger = ChatClient(other.address, "twin")  # the same nick: another cluster's
            try:
                rooms = stranger.request(events.Rooms(id=0))
                assert isinstance(rooms, events.Reply) and not any("twinroom" in i for i in rooms.items), (
                    rooms
                )
                stats = stranger.request(events.Stats(id=0))
                assert isinstance(stats, events.Reply)
                assert any(re.match(r"cluster: 1 hub, 1 clients", i) for i in stats.items), stats.items
            finally:
                stranger.close()
    finally:
        twin.close()
    wanted = re.compile(r"cluster\.available=1 .*cluster\.hubs=3\b.*cluster\.committed=\d")
    deadline = time.monotonic() + 10  # a stats line each second (--stats-interval 1)
    while not wanted.search(hubs[0].log()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert wanted.search(hubs[0].log()), hubs[0].log()[-1500:]


def test_a_room_like_one_made_on_another_hub_is_refused(hubs: list[HubProcess]) -> None:
    """Every hub knows every room (it consumes every room subject), so a room whose name looks
    like one made elsewhere is refused as on a standalone hub."""
    roomer, lookr = ChatClient(hubs[0].address, "roomer"), ChatClient(hubs[1].address, "lookr")
    try:
        assert isinstance(roomer.join("ape"), events.Reply)
        eventually(lookr, events.Rooms(id=0), lambda r: any(i.startswith("ape") for i in r.items))
        answer = lookr.join("\u0430\u0440\u0435")  # Cyrillic а р е
        assert isinstance(answer, events.Error), answer
        assert answer.code == "name-confusable" and "looks like ape" in answer.text, answer
    finally:
        roomer.close()
        lookr.close()


def race_joins(clients: list[ChatClient], rooms: list[str]) -> list[events.Reply | events.Error]:
    """``clients[n]`` joins ``rooms[n]``, all at once: the answers, in that order."""
    answers: dict[int, events.Reply | events.Error] = {}
    start = threading.Barrier(len(clients), timeout=30)

    def join(n: int) -> None:
        start.wait()
        answers[n] = clients[n].join(rooms[n])

    threads = [threading.Thread(target=join, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return [answers[n] for n in range(len(clients))]


def test_a_race_of_look_alike_room_names_across_hubs_has_one_winner_on_every_hub(
    hubs: list[HubProcess],
) -> None:
    """``lakeN``, ``IakeN`` (capital I) and ``1akeN`` look alike; joined on three hubs at once
    (before any hub has seen another's join), exactly one is made: the others are refused
    ``name-confusable`` naming it, as a standalone hub refuses a look-alike of a room that
    exists, and every hub lists the winner and none of the losers.  A loser is in no room and
    can join the winner's."""
    clients = [ChatClient(hub.address, f"laker{n}") for n, hub in enumerate(hubs)]
    try:
        for r in range(3):
            names = [f"lake{r}", f"Iake{r}", f"1ake{r}"][r:] + [f"lake{r}", f"Iake{r}", f"1ake{r}"][:r]
            answers = race_joins(clients, names)
            won = [
                name for name, answer in zip(names, answers, strict=True) if isinstance(answer, events.Reply)
            ]
            assert len(won) == 1, answers
            for answer in answers:
                if isinstance(answer, events.Error):
                    assert answer.code == "name-confusable", answer
                    assert answer.text.endswith(
                        f"looks like {won[0]}, which exists; /join {won[0]} or choose another name"
                    )
            item = f"{won[0]} (1)"
            for client in clients:
                listing = eventually(client, events.Rooms(id=0), lambda a, item=item: item in a.items)  # type: ignore[misc]
                assert isinstance(listing, events.Reply) and item in listing.items, listing
                assert not [i for i in listing.items if i.split(" ")[0] in set(names) - {won[0]}], listing
        loser = next(c for c, a in zip(clients, answers, strict=True) if isinstance(a, events.Error))
        assert isinstance(loser.join(won[0]), events.Reply)
        assert isinstance(loser.say(won[0], "I came in by the right name"), events.Reply)
    finally:
        for client in clients:
            client.close()


def test_who_rooms_and_stats_see_every_hub(hubs: list[HubProcess]) -> None:
    clients = [ChatClient(hub.address, f"member{n}") for n, hub in enumerate(hubs)]
    try:
        for client in clients:
            client.join("hall")
        topic = clients[2].request(events.Topic(id=0, room="hall", text="all hands", set=True))
        assert isinstance(topic, events.Reply)
        # Each hub learns of the others' events a moment after their own members are answered.
        who = eventually(clients[0], events.Who(id=0, room="hall"), lambda r: len(r.items) == 3)
        assert isinstance(who, events.Reply) and who.items == ("member0", "member1", "member2"), who
        rooms = eventually(clients[1], events.Rooms(id=0), lambda r: "hall (3) all hands" in r.items)
        assert isinstance(rooms, events.Reply) and "hall (3) all hands" in rooms.items, rooms
        shown = eventually(clients[0], events.Topic(id=0, room="hall"), lambda r: "all hands" in r.text)
        assert isinstance(shown, events.Reply) and "all hands" in shown.text
        seen = clients[0].seen("hall")
        assert any(getattr(e, "what", "") == "joined" and e.nick == "member2" for e in seen)
        # Client counts of other hubs come with their heartbeats (every second).  Other tests'
        # text clients may still be on the hubs: at least these three.
        wanted = re.compile(r"cluster: 3 hubs, ([3-9]|\d\d) clients, \d+ rooms")
        stats = eventually(clients[0], events.Stats(id=0), lambda a: bool(wanted.match(_cluster_line(a))))
        assert isinstance(stats, events.Reply)
        cluster = _cluster_line(stats)
        assert wanted.match(cluster), cluster
    finally:
        for client in clients:
            client.close()


def test_a_private_message_reaches_a_nick_on_another_hub(hubs: list[HubProcess]) -> None:
    alice, bob = ChatClient(hubs[0].address, "alice"), ChatClient(hubs[2].address, "bob")
    try:
        bob.wait_for(lambda: True, "nothing")
        # Hubs learn of each other's clients by heartbeat (every second): ask until bob is known.
        answer = eventually(alice, events.Msg(id=0, to="bob", body="psst"), lambda _: True)
        assert isinstance(answer, events.Reply) and answer.text == "sent privately to bob", answer
        bob.wait_for(lambda: [p.body for p in bob.private] == ["psst"], "the private line")
        assert bob.private[0].nick == "alice"
        missing = alice.request(events.Msg(id=0, to="nobody", body="hello?"))
        assert isinstance(missing, events.Error) and missing.code == "no-such-nick"
    finally:
        alice.close()
        bob.close()


def _cluster_line(stats: events.Reply) -> str:
    return next(item for item in stats.items if item.startswith("cluster:"))


# --- a hub lost --------------------------------------------------------------------------------------

SESSION_TIMEOUT = "4"


@pytest.fixture
def two_hubs(tmp_path: Path, nats1: NatsNode) -> Iterator[list[HubProcess]]:
    with cluster_hubs(tmp_path, nats1.url, 2, "--idle-timeout", SESSION_TIMEOUT) as started:
        yield started


def test_a_lost_hubs_members_leave_unless_they_come_back_through_another_hub(
    two_hubs: list[HubProcess], nats1: NatsNode
) -> None:
    doomed, survivor = two_hubs
    watcher = ChatClient(survivor.address, "watcher")
    before = _cluster_clients(watcher)
    carol, erin = ChatClient(doomed.address, "carol"), ChatClient(doomed.address, "erin")
    quiet = ChatClient(survivor.address, "quiet")  # goes silent on a live hub: it times out
    try:
        # Wait until the doomed hub's heartbeat told the others who is on it (and its timeout).
        watcher.wait_for(lambda: _cluster_clients(watcher) >= before + 2, "the doomed hub's heartbeat")
        for client in (watcher, carol, erin):
            client.join("ops")
        said = erin.request(events.Say(id=0, room="ops", body="before the crash", mid=7))
        assert isinstance(said, events.Reply) and said.seq > 0
        watcher.wait_for(
            lambda: any(getattr(e, "body", "") == "before the crash" for e in watcher.seen("ops")), "line"
        )
        doomed.stop(signal.SIGKILL)
        quiet.close(bye=False)
        missed = watcher.say("ops", "while erin moves")
        assert isinstance(missed, events.Reply)
        # erin moves to the survivor, keeps her nick, and resends her line: carried out once.
        moved = ChatClient(survivor.address, "erin", resume=erin.welcome.resume)
        try:
            assert moved.welcome.nick == "erin" and moved.welcome.hub == erin.welcome.hub
            rejoined = moved.join("ops")
            assert isinstance(rejoined, events.Reply)
            again = moved.request(events.Say(id=0, room="ops", body="before the crash", mid=7))
            assert isinstance(again, events.Reply) and again.seq == said.seq, (again, said)
            # She catches up from her last seq through the survivor: what she missed, once.
            caught = moved.request(events.History(id=0, room="ops", since=said.seq, until=rejoined.seq - 1))
            assert isinstance(caught, events.Reply), caught
            assert [e.body for e in moved.history if isinstance(e, events.Deliver)] == ["while erin moves"]
            watcher.wait_for(
                lambda: any(
                    e.nick == "carol" and getattr(e, "detail", "") == "hub lost" for e in watcher.seen("ops")
                ),
                "carol announced as left (hub lost)",
                timeout=30,
            )
            lines = [e for e in watcher.seen("ops") if getattr(e, "body", "") == "before the crash"]
            assert len(lines) == 1, lines
            assert not any(e.nick == "erin" and getattr(e, "what", "") == "left" for e in watcher.seen("ops"))
            who = watcher.request(events.Who(id=0, room="ops"))
            assert isinstance(who, events.Reply) and who.items == ("erin", "watcher"), who
            # carol's nick was released by the survivor for the lost hub, and quiet's when it timed
            # out on the live hub: nicks and looks are out of the bucket.
            gone = ["carol", "look.carol", "quiet", "look.quiet"]
            deadline = time.monotonic() + 20
            while (held := nick_keys(nats1.url, gone)) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not held, held
            ChatClient(survivor.address, "carol").close()  # and carol's nick is free for anyone
        finally:
            moved.close()
    finally:
        for client in (watcher, carol, erin, quiet):
            client.close(bye=False)


def nick_keys(url: str, keys: list[str]) -> list[str]:
    """Which of ``keys`` the default cluster's nicks bucket holds (read with nats-py)."""
    import nats
    from nats.js.errors import KeyNotFoundError

    async def read() -> list[str]:
        nc = await nats.connect(url)
        try:
            kv = await nc.jetstream().key_value("roomcast_nicks")
            held = []
            for key in keys:
                try:
                    await kv.get(key)
                    held.append(key)
                except KeyNotFoundError:
                    pass
            return held
        finally:
            await nc.close()

    return asyncio.run(read())


def _cluster_clients(client: ChatClient) -> int:
    stats = client.request(events.Stats(id=0))
    assert isinstance(stats, events.Reply)
    line = _cluster_line(stats)
    found = re.search(r"(\d+) clients", line)
    assert found, line
    return int(found.group(1))


def test_a_rename_claims_the_new_nick_across_hubs(hubs: list[HubProcess]) -> None:
    gina, hank = ChatClient(hubs[0].address, "gina"), ChatClient(hubs[1].address, "hank")
    try:
        gina.join("names")
        taken = gina.request(events.Nick(id=0, nick="HANK"))
        assert isinstance(taken, events.Error) and taken.code == "nick-taken", taken
        renamed = gina.request(events.Nick(id=0, nick="ginny"))
        assert isinstance(renamed, events.Reply) and renamed.text == "you are now ginny", renamed
        with pytest.raises(HelloRefused):
            ChatClient(hubs[2].address, "ginny")
        hello_once_free(hubs[2], "gina").close()  # the old nick was released
        who = hank.request(events.Who(id=0, room="names"))
        assert isinstance(who, events.Reply) and who.items == ("ginny",), who
    finally:
        gina.close()
        hank.close()


def eventually(
    client: ChatClient, request: events.Request, done: Callable[[events.Reply], bool], timeout: float = 10.0
) -> events.Reply | events.Error:
    """Ask until the answer satisfies ``done`` (or the time is up): return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.request(request)
        if (isinstance(answer, events.Reply) and done(answer)) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_roomcast_clients_on_two_hubs_chat_and_see_each_other(hubs: list[HubProcess]) -> None:
    with (
        roomcast_client(hubs[0].hub_arg, "ivy", "porch") as ivy,
        roomcast_client(hubs[1].hub_arg, "jon", "porch") as jon,
    ):
        ivy.wait_for(screen.presence("porch", "jon", "joined"), "err", timeout=20)
        ivy.send("hi jon, from hub one")
        jon.wait_for(screen.said("porch", "ivy", "hi jon, from hub one"), timeout=20)
        jon.send("/msg ivy a secret across hubs")
        ivy.wait_for(screen.private("jon", "a secret across hubs"), timeout=20)
        jon.send("hello ivy")
        ivy.wait_for(screen.said("porch", "jon", "hello ivy"), timeout=20)
        jon.wait_for(screen.said("porch", "jon", "hello ivy"), timeout=20)  # confirmed by the cluster


def hello_once_free(hub: HubProcess, nick: str, timeout: float = 10.0) -> ChatClient:
    """A session under ``nick``: the hub that held it releases it just after it answered, so
    the first hellos may still find it taken."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ChatClient(hub.address, nick)
        except HelloRefused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_hub_whose_nats_is_not_there_says_so_and_exits_1() -> None:
    nowhere = f"nats://127.0.0.1:{free_tcp_port()}"  # nothing listens there
    result = subprocess.run(
        [str(BIN / "roomcast-hub"), "--port", str(free_udp_port()), "--nats", nowhere],
        capture_output=True, text=True, timeout=60, env=clean_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 1, result
    assert f"cannot reach NATS at {nowhere}" in result.stderr, result.stderr


def test_the_first_line_after_a_cluster_hub_says_it_listens_is_carried_out(
    tmp_path: Path, nats1: NatsNode
) -> None:
    """NATS became available while the hub started: the first datagram it reads must meet that
    news, not an 'unavailable' from before it (no probe may wake the hub first)."""
    port = free_udp_port()
    log_path = tmp_path / "fresh-hub.log"
    with log_path.open("wb") as log_file:
        proc = spawn(
            [str(BIN / "roomcast-hub"), "--host", "127.0.0.1", "--port", str(port), "--nats", nats1.url,
             "--cluster", "fresh"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "hub listening on" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.02)
        with TextbookClient("127.0.0.1", port) as guest:
            first = guest.say("/join fresh-start")
        assert "unavailable" not in first and "fresh-start" in first, first
    finally:
        end(proc)
