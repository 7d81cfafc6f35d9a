"""A client given a list of hubs (``roomcast --hub A,B``), with real hub processes on loopback:
it uses the first hub that answers, and moves on to the next by itself when its hub dies.

The hubs here are standalone (each its own history); in a cluster they would share rooms.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from roomcast.shared import limits
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, LOOPBACK, free_udp_port, running_hub
from tests.tools.listedclient import listed_client

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ROOMCAST_")}


def test_hub_killed_the_client_is_on_the_next_hub_within_10_s_in_its_rooms_and_keeps_chatting(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub_a, running_hub(tmp_path) as hub_b:
        alice = listed_client("alice", tmp_path, f"{hub_a.hub_arg},{hub_b.hub_arg}")
        bob = PipedClient(hub_b.port, "bob", tmp_path)
        try:
            alice.wait_for(
                lambda: f"connected as alice to hub {hub_a.hub_arg}" in alice.err.read_text(), "alice on A"
            )
            alice.wait_for(lambda: "joined ops" in alice.err.read_text(), "alice to join on A")
            bob.wait_for(lambda: "joined ops" in bob.err.read_text(), "bob to join on B")

            hub_a.proc.send_signal(signal.SIGKILL)
            hub_a.proc.wait(timeout=10)
            alice.say("typed while A was dead")
            # She moves on to B instead of waiting for A until she gives up (exit 1, no reconnect).
            alice.wait_for(
                lambda: f"reconnected as alice to hub {hub_b.hub_arg}" in alice.err.read_text(),
                "alice to move on to hub B",
                timeout=limits.RECONNECT_GIVE_UP + 15,
            )
            assert alice.proc.poll() is None and "did not come back" not in alice.err.read_text()
            alice.wait_for(lambda: alice.err.read_text().count("joined ops") == 2, "alice back in ops, on B")
            bob.wait_for(
                lambda: "typed while A was dead" in bob.bodies(), "the line typed during the failover"
            )
            alice.say("after")
            bob.say("welcome to B")
            bob.wait_for(lambda: "after" in bob.bodies(), "alice's line said on B")
            alice.wait_for(lambda: "welcome to B" in alice.bodies(), "bob's line, seen by alice")
            assert any("<alice> after" in line for line in bob.lines), "alice keeps her nick"
            assert bob.bodies().count("typed while A was dead") == 1
            assert alice.finish() == 0
            assert bob.finish() == 0
        finally:
            alice.kill()
            bob.kill()


def test_first_hub_not_running_the_client_uses_the_second(tmp_path: Path) -> None:
    dead = f"{LOOPBACK}:{free_udp_port()}"
    with running_hub(tmp_path) as hub:
        bob = PipedClient(hub.port, "bob", tmp_path)
        try:
            bob.wait_for(lambda: "joined ops" in bob.err.read_text(), "bob to join")
            piped = subprocess.run(
                [str(BIN / "roomcast"), "--hub", f"{dead},{hub.hub_arg}", "--nick", "carol", "--room", "ops"],
                input="from the second hub\n", capture_output=True, text=True, timeout=60, env=CLEAN_ENV,
            )  # fmt: skip
            assert piped.returncode == 0, piped.stderr
            assert f"connected as carol to hub {hub.hub_arg}" in piped.stderr
            bob.wait_for(lambda: "from the second hub" in bob.bodies(), "carol's line")

            stats = subprocess.run(
                [str(BIN / "roomcast"), "stats", "--hub", f"{dead},{hub.hub_arg}"],
                capture_output=True, text=True, timeout=60, env=CLEAN_ENV,
            )  # fmt: skip
            assert stats.returncode == 0, stats.stderr
            assert stats.stdout.strip()
        finally:
            bob.kill()


def test_no_hub_of_the_list_answering_exits_1_naming_them(tmp_path: Path) -> None:
    dead = [f"{LOOPBACK}:{free_udp_port()}" for _ in range(2)]
    piped = subprocess.run(
        [str(BIN / "roomcast"), "--hub", ",".join(dead), "--nick", "carol"],
        input="nobody hears this\n", capture_output=True, text=True, timeout=60, env=CLEAN_ENV,
    )  # fmt: skip
    assert piped.returncode == 1
    assert "no answer from any of the hubs" in piped.stderr and dead[1] in piped.stderr


def test_a_bad_hub_list_is_refused_with_what_to_write(tmp_path: Path) -> None:
    for bad, said in [
        ("127.0.0.1:9999,", "empty entry"),
        ("127.0.0.1:9999,[::1]:9999", "one address family"),
    ]:
        run = subprocess.run(
            [str(BIN / "roomcast"), "--hub", bad], capture_output=True, text=True, timeout=30, env=CLEAN_ENV
        )
        assert run.returncode == 2 and said in run.stderr, run.stderr
