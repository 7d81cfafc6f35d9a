"""A seeded lossy UDP proxy for tests: loss, duplication and reordering, both directions.

Clients talk to the proxy's port; for each client address the proxy opens its own upstream
socket to the hub, so the hub still sees one address per client.  Every datagram is dropped
with probability ``loss``, sent twice with probability ``dup``, and held back a few
milliseconds with probability ``reorder`` (so later ones overtake it).  The same seed gives
the same decisions for the same arrival order.

    python -m tests.tools.lossy --listen 127.0.0.1:PORT --hub 127.0.0.1:PORT --seed 1

It stops by itself after ``--lifetime`` seconds (default 300) and prints its counters on exit.
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from tests.tools.hubproc import LOOPBACK, free_udp_port
from tests.tools.processes import end, spawn

Address = tuple[Any, ...]


@attrs.define
class Impairment:
    loss: float = 0.10
    dup: float = 0.05
    reorder: float = 0.10
    max_delay: float = 0.02
    rng: random.Random = attrs.Factory(lambda: random.Random(1))


@attrs.define
class ProxyCounters:
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0


class LossyProxy:
    def __init__(self, listen: socket.socket, hub: Address, impairment: Impairment) -> None:
        self.listen = listen
        self.hub = hub
        self.impairment = impairment
        self.counters = ProxyCounters()
        self.upstream: dict[Address, socket.socket] = {}

    async def run(self, lifetime: float) -> None:
        with trio.move_on_after(lifetime):
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                while True:
                    await trio.lowlevel.wait_readable(self.listen)
                    for _ in range(256):
                        try:
                            data, client = self.listen.recvfrom(65535)
                        except BlockingIOError:
                            break
                        up = self.upstream.get(client)
                        if up is None:
                            up = self._open_upstream(client)
                        self._forward(up, data, self.hub)

    def _open_upstream(self, client: Address) -> socket.socket:
        up = socket.socket(self.listen.family, socket.SOCK_DGRAM)
        up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        up.bind((self.hub[0], 0))
        up.setblocking(False)
        self.upstream[client] = up
        self._nursery.start_soon(self._downstream, up, client)
        return up

    async def _downstream(self, up: socket.socket, client: Address) -> None:
        while True:
            await trio.lowlevel.wait_readable(up)
            for _ in range(256):
                try:
                    data = up.recv(65535)
                except BlockingIOError:
                    break
                except OSError:
                    continue
                self._forward(self.listen, data, client)

    def _forward(self, sock: socket.socket, data: bytes, to: Address) -> None:
        imp = self.impairment
        roll = imp.rng.random()
        if roll < imp.loss:
            self.counters.dropped += 1
            return
        copies = 2 if imp.rng.random() < imp.dup else 1
        self.counters.duplicated += copies - 1
        for _ in range(copies):
            if imp.rng.random() < imp.reorder:
                self.counters.delayed += 1
                self._nursery.start_soon(self._later, sock, data, to, imp.rng.uniform(0.001, imp.max_delay))
            else:
                self._send(sock, data, to)

    async def _later(self, sock: socket.socket, data: bytes, to: Address, delay: float) -> None:
        await trio.sleep(delay)
        self._send(sock, data, to)

    def _send(self, sock: socket.socket, data: bytes, to: Address) -> None:
        try:
            sock.sendto(data, to)
            self.counters.forwarded += 1
        except OSError:
            self.counters.dropped += 1


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise argparse.ArgumentTypeError("the lossy proxy only works on loopback")
    return (host, int(port))


async def main_async(args: argparse.Namespace) -> None:
    family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
    listen = socket.socket(family, socket.SOCK_DGRAM)
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    listen.bind(args.listen)
    listen.setblocking(False)
    impairment = Impairment(args.loss, args.dup, args.reorder, args.max_delay, random.Random(args.seed))
    proxy = LossyProxy(listen, args.hub, impairment)
    print("ready", flush=True)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signal)
            await proxy.run(args.lifetime)
            nursery.cancel_scope.cancel()
    print(attrs.asdict(proxy.counters), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, required=True)
    parser.add_argument("--hub", type=_address, required=True)
    parser.add_argument("--loss", type=float, default=0.10)
    parser.add_argument("--dup", type=float, default=0.05)
    parser.add_argument("--reorder", type=float, default=0.10)
    parser.add_argument("--max-delay", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lifetime", type=float, default=300.0)
    trio.run(main_async, parser.parse_args())
    sys.exit(0)


if __name__ == "__main__":
    main()


@contextmanager
def running_proxy(hub_port: int, seed: int = 7, lifetime: float = 3600.0) -> Iterator[int]:
    """This proxy as a subprocess in front of a hub on loopback, for the duration of the block
    (its ``lifetime`` is only a backstop: the block ends it); yields the port to talk to."""
    port = free_udp_port()
    proc = spawn(
        [sys.executable, "-m", "tests.tools.lossy", "--listen", f"{LOOPBACK}:{port}",
         "--hub", f"{LOOPBACK}:{hub_port}", "--seed", str(seed), "--lifetime", str(lifetime)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        assert ready == "ready", f"the lossy proxy did not start: {ready!r}"
        yield port
    finally:
        end(proc)
