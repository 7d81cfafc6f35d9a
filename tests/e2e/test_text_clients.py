"""Plain-text clients against a real hub: the textbook UDP client, netcat with ``/live on``,
and the ``roomcast`` front ends that need no terminal (piped, ``--plain``, ``stats``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from roomcast.shared import limits
from roomcast.shared.text import shorten
from tests.tools import screen
from tests.tools.hubproc import HubProcess, free_udp_port, running_hub
from tests.tools.liveproc import BIN, REAL_NC, live_process, netcat_client, roomcast_client
from tests.tools.processes import run
from tests.tools.textbook import TextbookClient, chat

MAX_TEXT_REPLY = 1024


def assert_textbook_sized(client: TextbookClient) -> None:
    """Every reply fits the textbook's expectations: at most 1024 bytes of valid UTF-8."""
    for data in client.received:
        assert len(data) <= MAX_TEXT_REPLY, f"reply of {len(data)} bytes: {data[:80]!r}..."
        data.decode("UTF-8")  # strict: raises if cut inside a character


def run_roomcast(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[bytes]:
    return run([str(BIN / "roomcast"), *args], env=env, input=stdin.encode(), timeout=timeout)


# --- the textbook client ------------------------------------------------------------------------


def test_textbook_client_gets_one_reply_per_line_with_the_room_lines_since_its_last(
    hub: HubProcess,
) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice, TextbookClient(*hub.address) as guest:
        first = guest.say("hello everyone")
        assert first.splitlines() == [
            f"welcome {guest.nick}, you are in lobby; /help lists the commands",
            "sent to lobby",
        ]
        alice.wait_for(screen.presence("lobby", guest.nick, "joined"), "err")
        alice.wait_for(screen.said("lobby", guest.nick, "hello everyone"))

        alice.send("hi guest")
        alice.send("how are you?")
        alice.wait_for(screen.said("lobby", "alice", "how are you?"))  # confirmed by the hub
        assert guest.say("/who") == (
            f"[lobby] alice: hi guest\n[lobby] alice: how are you?\n2 in lobby: alice {guest.nick}"
        )
        assert guest.say("nothing new?") == "sent to lobby", "a short confirmation when nothing queued"

        alice.send(f"/msg {guest.nick} a secret")
        alice.wait_for(screen.notice(f"sent privately to {guest.nick}"), "err")
        alice.send("/me waves")
        alice.wait_for(rf"^{screen.CLOCK} \[lobby\] \* alice waves$")
        assert guest.say("fine thanks") == "[private] alice: a secret\n[lobby] * alice waves"
        alice.wait_for(screen.said("lobby", guest.nick, "fine thanks"))

        # exactly one datagram per line: had a stray one come, it would be taken as this answer
        assert guest.say("/who") == f"2 in lobby: alice {guest.nick}"
        assert len(guest.received) == 5
        assert_textbook_sized(guest)


def test_textbook_client_alone_in_a_room_still_gets_a_reply(hub: HubProcess) -> None:
    with TextbookClient(*hub.address, timeout=3.0) as guest:
        assert guest.say("/join quiet-corner").endswith("joined quiet-corner (1 member)")
        assert guest.say("is anybody here?") == "sent to quiet-corner"
        assert guest.say("/who") == f"1 in quiet-corner: {guest.nick}"
        assert guest.say("/part") == "left quiet-corner"
        assert guest.say("/part lobby") == "left lobby"
        assert guest.say("talking to nobody").startswith("error: you are in no room")
        assert guest.say("/live off") == "live mode off"
        assert guest.say("bye") == "bye"
        # nothing more after bye: the next datagram is the answer to a new line (a new session)
        assert guest.say("back again").startswith(f"welcome {guest.nick}")
        assert_textbook_sized(guest)


def test_textbook_flood_keeps_the_newest_lines_and_says_how_many_were_skipped(hub: HubProcess) -> None:
    bodies = [f"line {n:02d} {'é€😀' * 6} {'x' * 40}" for n in range(20)]  # ~100 bytes each
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice, TextbookClient(*hub.address) as guest:
        guest.say("ready")
        for body in bodies:
            alice.send(body)
        alice.wait_for(screen.said("lobby", "alice", bodies[-1]), timeout=15.0)

        data_reply = guest.say("what did I miss?")
        raw = guest.received[-1]
        assert len(raw) <= MAX_TEXT_REPLY
        lines = data_reply.split("\n")
        skipped = re.fullmatch(r"\((\d+) earlier messages skipped\)", lines[0])
        assert skipped, lines[0]
        kept = lines[1:]
        assert kept, "the newest lines are kept"
        assert kept == [f"[lobby] alice: {body}" for body in bodies[-len(kept) :]]
        assert int(skipped.group(1)) + len(kept) == len(bodies)
        assert len(raw) + len(kept[0].encode()) + 1 > MAX_TEXT_REPLY, "one more line would not fit"
        assert guest.say("and now?") == "sent to lobby"
        assert_textbook_sized(guest)


def test_textbook_client_leaves_with_bye(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice:
        replies = chat(*hub.address, ["hi there", "/rooms", "bye", "never sent"])
        assert replies[-1] == "bye", "bye is answered with exactly bye"
        assert len(replies) == 3
        nick = alice.wait_for(rf"^{screen.CLOCK} \[lobby\] <(guest-\d+)> hi there$").group(1)
        alice.wait_for(screen.presence("lobby", nick, "left (quit)"), "err")
        alice.send("/who")
        alice.wait_for(screen.notice("1 in lobby: alice"), "err")


def test_textbook_script_chats_with_envelope_clients(hub: HubProcess) -> None:
    argv = [sys.executable, "-m", "tests.tools.textbook", hub.host, str(hub.port), "--timeout", "5"]
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice, live_process(argv) as script:
        script.send("hello from the textbook")
        script.wait_for(r"^sent to lobby$")
        sender = alice.wait_for(rf"^{screen.CLOCK} \[lobby\] <(guest-\d+)> hello from the textbook$")
        alice.send("welcome, textbook")
        alice.wait_for(screen.said("lobby", "alice", "welcome, textbook"))
        script.send("/who")
        script.wait_for(rf"^\[lobby\] alice: welcome, textbook\n2 in lobby: alice {sender.group(1)}$")
        script.send("bye")
        assert script.wait(timeout=15.0) == 0, script.err
        assert script.out.endswith("\nbye\n")
        alice.wait_for(screen.presence("lobby", sender.group(1), "left (quit)"), "err")


def test_textbook_client_over_ipv6_loopback(tmp_path: Path) -> None:
    with running_hub(tmp_path, host="::1") as hub, TextbookClient("::1", hub.port) as guest:
        assert guest.say("hello over v6").endswith("sent to lobby")
        assert guest.say("bye") == "bye"


# --- netcat -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "real",
    [
        pytest.param(False, id="stand-in"),
        pytest.param(
            True, id="nc", marks=pytest.mark.skipif(REAL_NC is None, reason="no nc on this machine")
        ),
    ],
)
def test_netcat_with_live_on_receives_room_lines_as_they_happen(hub: HubProcess, real: bool) -> None:
    with (
        roomcast_client(hub.hub_arg, "alice", "lobby") as alice,
        netcat_client(*hub.address, real=real) as nc,
        netcat_client(*hub.address) as witness,
    ):
        nc.send("/live on")
        nc.wait_for("live mode on")
        alice.wait_for(r"\[lobby\] \* guest-\d+ joined", "err")
        for n in range(3):
            alice.send(f"live line {n}")
        for n in range(3):
            nc.wait_for(re.escape(f"[lobby] alice: live line {n}"))
        nick = re.search(r"welcome (guest-\d+)", nc.out)
        assert nick
        alice.send(f"/msg {nick.group(1)} just for you")
        nc.wait_for(re.escape("[private] alice: just for you"))

        witness.send("/live on")
        witness.wait_for("live mode on")
        nc.send("/live off")
        nc.wait_for("live mode off")
        alice.send("kept for later")
        alice.wait_for(screen.said("lobby", "alice", "kept for later"))
        # the hub sent the line to every live member at once: the witness has it, so nc would too
        witness.wait_for(re.escape("[lobby] alice: kept for later"))
        assert "kept for later" not in nc.out, "with live off, room lines wait for the next line"
        nc.send("/who")
        nc.wait_for(re.escape("[lobby] alice: kept for later") + r"\n3 in lobby")


def test_a_live_line_too_long_for_one_reply_is_cut_in_its_middle_between_characters(hub: HubProcess) -> None:
    room, nick = "r" * 32, "n" * 24  # the longest names: "[room] nick: " takes 61 bytes
    body = "é" * 499 + "!"  # 999 bytes, near the longest body; the line is 1060 bytes
    with roomcast_client(hub.hub_arg, nick, room) as talker, netcat_client(*hub.address) as nc:
        nc.send(f"/join {room}")
        nc.wait_for("joined")
        nc.send("/live on")
        nc.wait_for("live mode on")
        start = len(nc.out)
        talker.send(body)
        talker.wait_for(screen.said(room, nick, body))
        # at most 1023 bytes of text, then the newline that ends every live line: 1024 in all
        expected = shorten(f"[{room}] {nick}: {body}", MAX_TEXT_REPLY - 1)
        assert expected.startswith(f"[{room}] {nick}: é") and expected.endswith("é!") and "\u2026" in expected
        nc.wait_for(f"^{re.escape(expected)}\\n", start=start)
        assert nc.out[start:] == expected + "\n", "cut to at most 1024 bytes, between two characters"
        assert len(nc.out[start:].encode()) <= MAX_TEXT_REPLY
        assert "\ufffd" not in nc.out


def test_netcat_live_lines_each_end_a_line(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice, netcat_client(*hub.address) as nc:
        nc.send("/live on")
        nc.wait_for("live mode on")
        alice.send("one")
        alice.send("two")
        nc.wait_for(re.escape("[lobby] alice: two"))
        assert "[lobby] alice: one\n[lobby] alice: two" in nc.out


# --- roomcast without a terminal -----------------------------------------------------------------


def test_piped_mode_says_each_line_and_exits_0(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "watcher", "ops") as watcher:
        result = run_roomcast(
            "--hub", hub.hub_arg, "--room", "ops", "--nick", "ci", stdin="build done\ntests passed\n"
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout.decode()
        assert re.search(screen.said("ops", "ci", "tests passed"), out, re.MULTILINE), out
        watcher.wait_for(screen.said("ops", "ci", "build done"))
        watcher.wait_for(screen.said("ops", "ci", "tests passed"))
        # it exits once confirmed, saying bye itself (not lost to a timeout)
        watcher.wait_for(screen.presence("ops", "ci", "left (quit)"), "err")


def test_piped_mode_leaves_the_hub_so_the_nick_is_free_again(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "watcher", "ops") as watcher:
        for run in range(10):  # the client's scheduling order varies; each run must leave cleanly
            start = len(watcher.err)
            result = run_roomcast("--hub", hub.hub_arg, "--room", "ops", "--nick", "ci", stdin=f"run {run}\n")
            assert result.returncode == 0, f"run {run}: {result.stderr.decode()}"
            watcher.wait_for(screen.presence("ops", "ci", "left (quit)"), "err", start=start, timeout=2.0)


def test_piped_mode_reads_roomcast_hub_and_never_port(hub: HubProcess) -> None:
    env = {"ROOMCAST_HUB": hub.hub_arg, "ROOMCAST_NICK": "envy", "PORT": str(free_udp_port())}
    with roomcast_client(hub.hub_arg, "watcher", "lobby") as watcher:
        result = run_roomcast(stdin="from the environment\n", env=env)
        assert result.returncode == 0, result.stderr
        watcher.wait_for(screen.said("lobby", "envy", "from the environment"))


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {"ROOMCAST_HISTORY": "five"}, "ROOMCAST_HISTORY='five' is not a whole number"),
        ([], {"ROOMCAST_HISTORY": "999"}, "ROOMCAST_HISTORY='999' must be between 0 and 200"),
        (["--history", "-1"], {}, "--history must be between 0 and 200"),
    ],
)
def test_a_bad_history_setting_is_a_usage_error(args: list[str], env: dict[str, str], says: str) -> None:
    result = run_roomcast("--hub", f"127.0.0.1:{free_udp_port()}", *args, env=env, stdin="hi\n")
    assert result.returncode == 2, result.stderr
    err = result.stderr.decode()
    assert err.startswith("usage: roomcast") and says in err, err
    assert "Traceback" not in err


def test_piped_mode_against_no_hub_fails_with_a_clear_message() -> None:
    port = free_udp_port()
    result = run_roomcast("--hub", f"127.0.0.1:{port}", "--nick", "ci", stdin="build done\n", timeout=60)
    assert result.returncode == 1
    # it gives up after its connect timeout, and says so
    assert f"no answer from the hub after {limits.CONNECT_TIMEOUT:.0f} s" in result.stderr.decode(), (
        result.stderr
    )


def test_plain_mode_talks_to_the_hub(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice:
        result = run_roomcast("--plain", "--hub", hub.hub_arg, stdin="hello in plain text\n/who\n")
        assert result.returncode == 0, result.stderr
        out = result.stdout.decode()
        assert "sent to lobby" in out
        who = re.search(r"^2 in lobby: alice (guest-\d+)$", out, re.MULTILINE)
        assert who, out
        alice.wait_for(screen.said("lobby", who.group(1), "hello in plain text"))


def test_plain_mode_leaves_with_bye_typed_at_a_terminal(hub: HubProcess) -> None:
    # A person types `bye` and the hub answers `bye`: the client ends although stdin is still open.
    with live_process([str(BIN / "roomcast"), "--plain", "--hub", hub.hub_arg]) as plain:
        plain.send("hello")
        plain.wait_for("^sent to lobby$")
        plain.send("bye")
        plain.wait_for("^bye$")
        assert plain.wait(timeout=15.0) == 0, plain.err
        assert "Traceback" not in plain.err


def test_plain_mode_against_no_hub_fails() -> None:
    result = run_roomcast("--plain", "--hub", f"127.0.0.1:{free_udp_port()}", stdin="hi\n")
    assert result.returncode == 1
    assert "no answer from" in result.stderr.decode()


def test_stats_command_prints_the_hubs_counters(hub: HubProcess) -> None:
    with TextbookClient(*hub.address) as guest:
        guest.say("make some traffic")
        result = run_roomcast("stats", "--hub", hub.hub_arg)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "hub stats"
    assert re.fullmatch(r"uptime \d+ s", lines[1])
    assert re.fullmatch(r"clients 1 envelope, 1 text; rooms 1", lines[2]), lines
    assert any(re.fullmatch(r"datagrams in \d+, out \d+", line) for line in lines)


def test_plain_mode_cuts_a_long_line_so_the_textbook_server_reads_it_whole() -> None:
    port = free_udp_port()
    server_argv = [sys.executable, "-m", "tests.tools.textbook_server", str(port), "--lines", "3"]
    long_line = "聊" * 400  # 1200 bytes: recvfrom(1024) would cut it inside a character
    with live_process(server_argv) as server:
        server.wait_for("^listening$")
        result = run_roomcast("--plain", "--hub", f"127.0.0.1:{port}", stdin=f"hello\n{long_line}\nbye\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().split("\n")[:3] == ["got 5 characters", "got 341 characters", "bye"]
        assert "a line of 1200 bytes was cut to 1024" in result.stderr.decode()
        assert server.wait(timeout=15.0) == 0, server.err  # it read every line as valid UTF-8
        assert server.out.split("\n")[2] == "聊" * 341
