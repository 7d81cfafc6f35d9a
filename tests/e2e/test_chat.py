"""Three ``roomcast`` clients in two rooms, as real processes against a real hub on loopback.

Each client is ``roomcast --hub H:P --nick N --room R`` with stdin a pipe (piped mode): the
test types lines into stdin and reads what the client prints, each wait bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.tools import screen
from tests.tools.hubproc import HubProcess
from tests.tools.liveproc import LiveProcess, roomcast_client


@pytest.fixture
def trio_of_clients(hub: HubProcess) -> Iterator[tuple[LiveProcess, LiveProcess, LiveProcess]]:
    """alice in lobby and ops (ops current), bob in ops, carol in lobby; all joined."""
    with ExitStack() as stack:
        alice = stack.enter_context(roomcast_client(hub.hub_arg, "alice", "lobby", "ops"))
        bob = stack.enter_context(roomcast_client(hub.hub_arg, "bob", "ops"))
        carol = stack.enter_context(roomcast_client(hub.hub_arg, "carol", "lobby"))
        yield alice, bob, carol


def settle(*clients: LiveProcess) -> None:
    """Wait until each client's requests so far are answered: a /rooms round trip.  The hub
    handles datagrams in order, so whatever it sent a client before is shown by then."""
    for client in clients:
        start = len(client.err)
        client.send("/rooms")
        client.wait_for(screen.notice(r"\d+ rooms"), "err", start=start)


def test_room_messages_reach_the_members_of_that_room_only(
    trio_of_clients: tuple[LiveProcess, LiveProcess, LiveProcess],
) -> None:
    alice, bob, carol = trio_of_clients

    alice.send("deploy at noon")  # to ops, her current room
    bob.wait_for(screen.said("ops", "alice", "deploy at noon"))
    alice.wait_for(screen.said("ops", "alice", "deploy at noon"))  # her own line, confirmed

    carol.send("coffee anyone?")
    alice.wait_for(screen.said("lobby", "carol", "coffee anyone?"))

    bob.send("ack, noon it is")
    alice.wait_for(screen.said("ops", "bob", "ack, noon it is"))

    alice.send("/join lobby")  # already a member: makes lobby current
    alice.wait_for(screen.notice(r"joined lobby \(2 members\)"), "err")
    alice.send("yes please")
    carol.wait_for(screen.said("lobby", "alice", "yes please"))

    settle(alice, bob, carol)
    assert "[ops]" not in carol.out, "carol is not in ops"
    assert "[lobby]" not in bob.out, "bob is not in lobby"
    assert "yes please" not in bob.out
    assert "coffee" not in bob.out
    for client in (alice, bob, carol):
        assert client.finish() == 0, client.err


def test_presence_notices_for_join_and_part(hub: HubProcess) -> None:
    # (the notice when a piped client quits is checked in test_text_clients)
    with (
        roomcast_client(hub.hub_arg, "alice", "ops") as alice,
        roomcast_client(hub.hub_arg, "bob", "ops") as bob,
    ):
        alice.wait_for(screen.presence("ops", "bob", "joined"), "err")
        bob.send("/part")
        bob.wait_for(screen.notice("left ops"), "err")
        alice.wait_for(screen.presence("ops", "bob", "left"), "err")
        bob.send("/join ops")
        bob.wait_for(screen.notice(r"joined ops \(2 members\)"), "err")
        start = alice.err.index("bob left")
        alice.wait_for(screen.presence("ops", "bob", "joined"), "err", start=start)
        alice.send("/who")
        alice.wait_for(screen.notice(r"2 in ops: alice bob"), "err")
    assert "* alice" not in alice.err, "a client is not told of its own join"


def test_nick_change_is_announced_in_every_room_and_used_afterwards(
    trio_of_clients: tuple[LiveProcess, LiveProcess, LiveProcess],
) -> None:
    alice, bob, carol = trio_of_clients

    alice.send("/nick alicia")
    alice.wait_for(screen.notice("you are now alicia"), "err")
    bob.wait_for(screen.presence("ops", "alice", "is now known as alicia"), "err")
    carol.wait_for(screen.presence("lobby", "alice", "is now known as alicia"), "err")

    alice.send("new name, same person")
    bob.wait_for(screen.said("ops", "alicia", "new name, same person"))
    alice.wait_for(screen.said("ops", "alicia", "new name, same person"))

    bob.send("/nick CAROL")  # nicks are unique case-insensitively
    bob.wait_for(screen.error("nick CAROL is taken"), "err")
    bob.send("/who ops")
    bob.wait_for(screen.notice("2 in ops: alicia bob"), "err")

    settle(carol)
    assert "is now known as" not in carol.err.replace("* alice is now known as alicia", "")
    assert bob.finish() == 1, "a piped client that was refused something exits 1"


def test_private_messages_reach_only_the_addressee(
    trio_of_clients: tuple[LiveProcess, LiveProcess, LiveProcess],
) -> None:
    alice, bob, carol = trio_of_clients

    carol.send("/msg alice psst, lunch?")
    carol.wait_for(screen.notice("sent privately to alice"), "err")
    alice.wait_for(screen.private("carol", "psst, lunch?"))

    alice.send("/msg CAROL sure")  # nicks match case-insensitively
    carol.wait_for(screen.private("alice", "sure"))

    bob.send("/msg nobody hello?")
    bob.wait_for(screen.error(r"nobody is called nobody here.*"), "err")

    settle(alice, bob, carol)
    assert "psst" not in bob.out + bob.err
    assert "sure" not in bob.out + bob.err
    assert not re.search(r"\[(ops|lobby)\].*psst", alice.out + carol.out), "a private line is not a room line"


def test_a_second_client_with_a_taken_nick_is_refused(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice:
        with roomcast_client(hub.hub_arg, "ALICE", "lobby", joined=False) as twin:
            twin.wait_for(screen.error("nick ALICE is taken.*"), "err")
            twin.close_stdin()
            assert twin.wait() == 1
        alice.send("/who")
        alice.wait_for(screen.notice("1 in lobby: alice"), "err")
