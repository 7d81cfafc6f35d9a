"""Keepalive, eviction of silent clients, and the hub's drain on SIGTERM, with real processes."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import free_udp_port, running_hub


def _joined(client: PipedClient, room: str = "ops") -> None:
    client.wait_for(lambda: f"joined {room}" in client.err.read_text(), f"{room} joined")


def _stop(*clients: PipedClient) -> None:
    for client in clients:
        client.kill()


def test_a_silent_client_is_evicted_and_the_room_is_told_while_idle_ones_that_ping_stay(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path, "--idle-timeout", "3") as hub:
        clients: list[PipedClient] = []
        try:
            alice, bob = PipedClient(hub.port, "alice", tmp_path), PipedClient(hub.port, "bob", tmp_path)
            clients += [alice, bob]
            _joined(alice)
            _joined(bob)
            os.kill(bob.proc.pid, signal.SIGKILL)  # gone without a word
            bob.kill()
            alice.wait_for(lambda: "* bob left (timeout)" in alice.err.read_text(), "bob's eviction", 10)
            # alice was idle just as long, but her pings kept her in: she can still talk.
            carol = PipedClient(hub.port, "carol", tmp_path)
            clients.append(carol)
            _joined(carol)
            alice.say("still here")
            carol.wait_for(lambda: "still here" in carol.bodies(), "alice's line")
            assert "alice left" not in carol.err.read_text()
            assert alice.finish() == 0
            assert carol.finish() == 0
        finally:
            _stop(*clients)


def test_a_silent_text_client_expires_the_same_way(tmp_path: Path) -> None:
    with running_hub(tmp_path, "--text-idle-timeout", "2") as hub:
        alice = PipedClient(hub.port, "alice", tmp_path, room="lobby")
        try:
            _joined(alice, "lobby")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as guest:
                guest.settimeout(5)
                guest.sendto(b"hello, just passing", hub.address)
                guest.recv(2048)
                port = guest.getsockname()[1]
            alice.wait_for(
                lambda: f"* guest-{port} left (timeout)" in alice.err.read_text(), "the guest's expiry", 10
            )
            assert alice.finish() == 0
        finally:
            _stop(alice)


def test_sigterm_drains_tells_clients_and_they_come_back_when_the_hub_does(tmp_path: Path) -> None:
    port = free_udp_port()
    clients: list[PipedClient] = []
    try:
        with running_hub(tmp_path, "--drain-seconds", "1", port=port) as hub:
            alice, bob = PipedClient(port, "alice", tmp_path), PipedClient(port, "bob", tmp_path)
            clients += [alice, bob]
            _joined(alice)
            _joined(bob)
            assert hub.stop(signal.SIGTERM) == 0
            assert "draining for up to 1.0 s" in hub.log()
        for client in (alice, bob):
            client.wait_for(lambda c=client: "the hub is restarting" in c.err.read_text(), "the notice")
        alice.say("said while the hub was away")
        with running_hub(tmp_path, port=port):
            for client in (alice, bob):
                client.wait_for(lambda c=client: "reconnected as" in c.err.read_text(), "the reconnect", 20)
            bob.wait_for(lambda: "said while the hub was away" in bob.bodies(), "the kept line", 20)
            assert alice.finish() == 0
            assert bob.finish() == 0
    finally:
        _stop(*clients)
