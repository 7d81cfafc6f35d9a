"""A hand-driven envelope client for tests: does the handshake and sends what the test says,
and acknowledges nothing unless told to (a slow or dead consumer, a spoofer)."""

from __future__ import annotations

import socket
from typing import Any

import attrs

from roomcast.shared import envelope, events, limits


class RawClient:
    def __init__(self, hub: tuple[str, int], nick: str) -> None:
        self.hub = hub
        self.sock = socket.socket(socket.AF_INET6 if ":" in hub[0] else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5.0)
        self.token = b""
        self.next_id = 1
        hello = events.Hello(nick=nick, pad=bytes(limits.HELLO_PAD_TO))
        challenge = self._ask(envelope.encode(hello), events.Challenge)
        hello = events.Hello(nick=nick, cookie=challenge.cookie, pad=bytes(limits.HELLO_PAD_TO))
        self.token = self._ask(envelope.encode(hello), events.Welcome).token

    def _ask(self, data: bytes, kind: type[Any]) -> Any:
        self.sock.sendto(data, self.hub)
        while True:
            event = envelope.decode(self.sock.recv(65535)).event
            if isinstance(event, kind):
                return event

    def request(self, request: Any) -> events.Reply | events.Error:
        """Send a request with the next id and wait for its answer (deliveries are skipped)."""
        request = attrs.evolve(request, id=self.next_id)
        self.next_id += 1
        self.sock.sendto(envelope.encode(request, token=self.token), self.hub)
        while True:
            event = envelope.decode(self.sock.recv(65535)).event
            if isinstance(event, events.Reply | events.Error) and event.id == request.id:
                return event

    def received(self, timeout: float = 0.5) -> list[Any]:
        """Everything that arrives until ``timeout`` passes in silence."""
        found: list[Any] = []
        self.sock.settimeout(timeout)
        try:
            while True:
                found.append(envelope.decode(self.sock.recv(65535)).event)
        except TimeoutError:
            return found
        finally:
            self.sock.settimeout(5.0)

    def close(self) -> None:
        self.sock.close()
