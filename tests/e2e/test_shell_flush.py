"""The hub shell never waits for the socket with sends still queued.

A flush reads the socket again after each big fan-out (so a big room's acks do not overflow
it) and stops after ``RECV_ROUNDS`` rounds; what the last round's reads produced must still go
out at once.  Left for the next datagram, it waited for a closed-loop text sender (no acks) to
give up: stalls of the whole room, and lines delivered after the benchmark had stopped
counting (3% "loss" in a text room of 100)."""

from __future__ import annotations

import socket

import pytest
import trio

from roomcast.hub.batch import open_batch_sender
from roomcast.hub.core import HubConfig
from roomcast.hub.server import SMALL_FANOUT, HubServer, ServerOptions
from roomcast.hub.udpsocket import open_socket
from roomcast.shared import limits

#: A fan-out with its own sendmmsg, then a read of the socket (all from 127.0.0.1: more than
#: the default clients per host).
RECEIVERS = SMALL_FANOUT + 2


async def _line(sock: trio.socket.SocketType) -> bytes:
    with trio.fail_after(10):
        data: bytes = await sock.recv(2048)
        return data


async def test_what_the_last_flush_round_read_is_sent_without_another_datagram(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One datagram per read and one round per flush: the second line of a burst is read by
    # the flush of the first, after its fan-out, in the flush's last round.
    monkeypatch.setattr(limits, "RECV_BATCH", 1)
    monkeypatch.setattr(limits, "RECV_ROUNDS", 1)
    hub_sock = open_socket("127.0.0.1", 0)
    if open_batch_sender(hub_sock) is None:
        hub_sock.close()
        pytest.skip("no sendmmsg here: the shell sends each datagram as it is made")
    server = HubServer(
        hub_sock,
        ServerOptions(drain_seconds=0.1, core=HubConfig(flood_rate=0, max_clients_per_host=RECEIVERS + 1)),
    )
    peers = [trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(RECEIVERS + 1)]
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            for peer in peers:
                await peer.bind(("127.0.0.1", 0))
                await peer.connect(hub_sock.getsockname())
            sender, *receivers = peers
            for peer in peers:
                await peer.send(b"/join flush\n")
                await _line(peer)
            for peer in peers:
                await peer.send(b"/live on\n")
                await _line(peer)
            # Both lines wait in the hub's socket before the hub runs again (no checkpoint).
            raw = socket.socket(fileno=sender.fileno())
            try:
                raw.send(b"first\n")
                raw.send(b"second\n")
            finally:
                raw.detach()
            assert [await _line(sender), await _line(sender)] == [b"sent to flush\n"] * 2
            for peer in receivers:
                got = [await _line(peer), await _line(peer)]
                assert [line.split(b": ", 1)[1] for line in got] == [b"first\n", b"second\n"]
            server.stop()
    finally:
        for peer in peers:
            peer.close()
        hub_sock.close()
