"""A hub killed with SIGKILL and started again: clients notice, come back, lose nothing typed."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import LOOPBACK, free_udp_port, running_hub


def sent_into_the_void(sock: socket.socket, wanted: bytes, timeout: float = 30.0) -> None:
    """Until a datagram holding ``wanted`` arrives on ``sock`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            if wanted in sock.recv(65535):
                return
        except TimeoutError:
            raise AssertionError(f"nothing holding {wanted!r} was sent within {timeout} s") from None


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
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nobody:
            nobody.bind((LOOPBACK, port))  # no hub: the test holds the port, and never answers
            alice.say(*(f"during {n}" for n in range(3)))  # typed while there is no hub at all
            sent_into_the_void(nobody, b"during 2")
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
