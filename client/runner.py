"""The client's trio shell: moves datagrams between a UDP socket and the sans-I/O HubLink.

One loop waits until the socket is readable, the link's next deadline comes, or the user
submits something; it feeds the link and sends what it produced.  Given a list of hubs, it
sends to the one the link has chosen (``HubLink.hub``) and listens to that one only: the
link alone decides when to move on.  Whatever the link reports
(lines to show, answers, reconnects) goes to the ``on_event`` callback of the front end.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from typing import Any

import trio

from roomcast.shared import limits
from roomcast.shared.addresses import parse_host_port
from roomcast.shared.link import HubLink, LinkEvent, LinkState

Address = tuple[Any, ...]


def resolve_hub(hub: str) -> Address:
    """``HOST:PORT`` or ``[V6]:PORT`` to a socket address (resolved once, at start)."""
    host, port = parse_host_port(hub)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    return tuple(infos[0][4])


def open_client_socket(hub: Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if len(hub) == 4 else socket.AF_INET, socket.SOCK_DGRAM)
    # Room for a whole in-flight window from the hub while this process waits for a CPU.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, limits.CLIENT_RCVBUF)
    sock.setblocking(False)
    return sock


def split_hub_list(text: str) -> tuple[str, ...]:
    """``HOST:PORT[,HOST:PORT...]`` to its entries; ValueError says what is wrong."""
    hubs = tuple(entry.strip() for entry in text.split(","))
    if not all(hubs):
        raise ValueError(f"{text!r} has an empty entry; give HOST:PORT[,HOST:PORT...]")
    if len(hubs) > limits.MAX_HUBS:
        raise ValueError(f"lists {len(hubs)} hubs; the limit is {limits.MAX_HUBS}")
    return hubs


def resolve_hubs(hubs: tuple[str, ...]) -> tuple[Address, ...]:
    """Each hub resolved once, at start; all of one address family (one socket talks to them)."""
    addresses = tuple(resolve_hub(hub) for hub in hubs)
    if len({len(address) for address in addresses}) > 1:
        raise ValueError("mixes IPv4 and IPv6 hubs; list hubs of one address family")
    return addresses


def open_hubs_socket(hubs: tuple[Address, ...]) -> socket.socket:
    """One socket for talking to every hub of the list (all of one address family)."""
    return open_client_socket(hubs[0])


class LinkRunner:
    """Runs one HubLink over one socket until the link closes or the runner is cancelled."""

    def __init__(
        self,
        sock: socket.socket,
        hubs: tuple[Address, ...],
        link: HubLink,
        on_event: Callable[[LinkEvent], None],
        can_receive: Callable[[], bool] = lambda: True,
    ):
        self.sock = sock
        self.hubs = hubs
        self.link = link
        self.on_event = on_event
        #: False while the front end cannot take more (its output is full): the link then
        #: leaves room events unacknowledged for the hub to resend (``HubLink.holding``), while
        #: answers, pings and acks go on, so neither side takes the other for gone.
        self.can_receive = can_receive
        self._wait_scope = trio.CancelScope()
        #: Set (and replaced) whenever the link reported something.
        self.changed = trio.Event()
        self.finished = trio.Event()

    @property
    def hub(self) -> Address:
        """The hub the link uses now."""
        return self.hubs[self.link.hub]

    def submit(self, request: Any) -> None:
        """Hand a request to the link (from any task of this trio run)."""
        self.link.submit(request, trio.current_time())
        self._wait_scope.cancel()

    def close(self) -> None:
        """Say bye to the hub; the loop sends it and returns."""
        self.link.close()
        self._wait_scope.cancel()

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            self.finished.set()
            self.changed.set()

    async def _loop(self) -> None:
        pause = 0.0
        while True:
            await self._flush()
            if self.link.state is LinkState.CLOSED:
                await self._flush()  # close() may have queued the bye during the last flush
                return
            deadline = self.link.next_deadline()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as self._wait_scope:
                if pause:
                    # Datagrams came just now: let the next few queue up and read them in one
                    # go (a busy room costs a wake-up per batch, not per line).
                    await trio.sleep(pause)
                else:
                    await trio.lowlevel.wait_readable(self.sock)
            now = trio.current_time()
            received = self._receive(now)
            pause = limits.CLIENT_COALESCE if received else 0.0
            self._report(self.link.on_timer(now))

    def _receive(self, now: float) -> int:
        """Hand every datagram waiting on the socket (up to a batch) to the link."""
        batch: list[bytes] = []
        count = 0
        for _ in range(limits.CLIENT_RECV_BATCH):
            try:
                data, address = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ICMP port unreachable: the hub is not there (yet)
                continue
            count += 1
            if address[:2] == self.hub[:2]:
                batch.append(data)
        if batch:
            self.link.holding = not self.can_receive()
            self._report(self.link.receive_datagrams(batch, now))
        return count

    def _report(self, events: list[LinkEvent]) -> None:
        for event in events:
            self.on_event(event)
        if events:
            self.changed.set()
            self.changed = trio.Event()

    async def _flush(self) -> None:
        for data in self.link.datagrams_to_send():
            while True:
                try:
                    self.sock.sendto(data, self.hub)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self.sock)
                except OSError:
                    break  # e.g. ICMP unreachable reported here; the link retries on its timer
