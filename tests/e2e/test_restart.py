"""A hub killed with SIGKILL and started again: clients notice, come back, lose nothing typed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, LOOPBACK, free_udp_port, wait_until_answering


def start_hub(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "roomcast-hub"), "--host", LOOPBACK, "--port", str(port)], stdout=out, stderr=out
        )
    wait_until_answering(LOOPBACK, port)
    return proc


def test_clients_survive_a_hub_killed_and_restarted_without_losing_typed_lines(tmp_path: Path) -> None:
    port = free_udp_port()
    hub = start_hub(port, tmp_path / "hub.log")
    alice, bob = PipedClient(port, "alice", tmp_path), PipedClient(port, "bob", tmp_path)
    try:
        bob.wait_for(lambda: "joined ops" in bob.err.read_text(), "bob to join")
        alice.wait_for(lambda: "joined ops" in alice.err.read_text(), "alice to join")
        for n in range(3):
            alice.say(f"before {n}")
        bob.wait_for(lambda: bob.bodies().count("before 2") == 1, "the lines before the crash")

        os.kill(hub.pid, signal.SIGKILL)
        hub.wait(timeout=10)
        for n in range(3):
            alice.say(f"during {n}")  # typed while there is no hub at all
        time.sleep(0.5)  # the hub stays down a moment, as after a real crash
        hub = start_hub(port, tmp_path / "hub.log")
        for n in range(3):
            alice.say(f"after {n}")

        bob.wait_for(lambda: "after 2" in bob.bodies(), "the lines after the restart", timeout=40)
        shown = bob.bodies()
        for n in range(3):
            for phase in ("before", "during", "after"):
                assert shown.count(f"{phase} {n}") == 1, (
                    f"{phase} {n} shown {shown.count(f'{phase} {n}')} times"
                )
        assert "reconnected as alice" in alice.err.read_text()
        assert "reconnected as bob" in bob.err.read_text()
        assert alice.finish() == 0
        assert bob.finish() == 0
    finally:
        alice.kill()
        bob.kill()
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(timeout=10) == 0
