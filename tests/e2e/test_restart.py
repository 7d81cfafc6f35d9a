"""A hub killed with SIGKILL and started again: clients notice, come back, lose nothing typed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import free_udp_port, running_hub


def test_clients_survive_a_hub_killed_and_restarted_without_losing_typed_lines(tmp_path: Path) -> None:
    port = free_udp_port()
    clients: list[PipedClient] = []
    try:
        with running_hub(tmp_path, port=port) as hub:
            alice, bob = PipedClient(port, "alice", tmp_path), PipedClient(port, "bob", tmp_path)
            clients += [alice, bob]
            bob.wait_for(lambda: "joined ops" in bob.err.read_text(), "bob to join")
            alice.wait_for(lambda: "joined ops" in alice.err.read_text(), "alice to join")
            alice.say(*(f"before {n}" for n in range(3)))
            bob.wait_for(lambda: bob.bodies().count("before 2") == 1, "the lines before the crash")
            hub.stop(signal.SIGKILL)
        alice.say(*(f"during {n}" for n in range(3)))  # typed while there is no hub at all
        time.sleep(0.5)  # the hub stays down a moment, as after a real crash
        with running_hub(tmp_path, port=port):
            alice.say(*(f"after {n}" for n in range(3)))
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
        for client in clients:
            client.kill()
