"""An in-test envelope client that acknowledges what it receives and records every room event
by seq, so cluster tests can compare what members on different hubs saw (order and seqs)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from roomcast.shared import envelope, events, limits

RESEND = 0.5
PING = 1.0


class HelloRefused(RuntimeError):
    def __init__(self, error: events.Error) -> None:
        super().__init__(f"hello refused: {error.code}: {error.text}")
        self.error = error


class ChatClient:
    """Handshake, then a reader thread: answers by request id, room events by (room, seq),
    private messages in arrival order; every delivery acknowledged at once."""

    def __init__(self, hub: tuple[str, int], nick: str, timeout: float = 10.0, resume: bytes = b"") -> None:
        self.hub = hub
        self.nick = nick
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.2)
        self.token = b""
        self.resume = resume
        self.next_id = 1
        self.answers: dict[int, events.Reply | events.Error] = {}
        self.rooms: dict[str, dict[int, events.RoomEvent]] = {}
        self.history: list[events.RoomEvent] = []
        self.private: list[events.Deliver] = []
        self.errors: list[events.Error] = []
        try:
            self.welcome = self._handshake(timeout)
        except BaseException:
            self.sock.close()
            raise
        self._lock = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _handshake(self, timeout: float) -> events.Welcome:
        deadline = time.monotonic() + timeout
        cookie = b""
        while time.monotonic() < deadline:
            hello = events.Hello(
                nick=self.nick, cookie=cookie, pad=bytes(limits.HELLO_PAD_TO), resume=self.resume
            )
            self.sock.sendto(envelope.encode(hello), self.hub)
            try:
                event = envelope.decode(self.sock.recv(65535)).event
            except TimeoutError:
                continue
            if isinstance(event, events.Challenge):
                cookie = event.cookie
            elif isinstance(event, events.Welcome):
                self.token, self.resume = event.token, event.resume
                return event
            elif isinstance(event, events.Error):
                raise HelloRefused(event)
        raise TimeoutError(f"{self.nick}: no welcome from {self.hub}")

    def _read(self) -> None:
        next_ping = time.monotonic() + PING
        while not self._closed:
            if time.monotonic() >= next_ping:  # keeps the session alive under short --idle-timeout
                self._send(events.Ping())
                next_ping = time.monotonic() + PING
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self._take(envelope.decode(data).event)

    def _take(self, event: Any) -> None:
        with self._lock:
            if isinstance(event, events.Reply | events.Error) and event.id:
                if isinstance(event, events.Error) and event.code in ("unavailable", "slow-down"):
                    self.errors.append(event)
                else:
                    self.answers[event.id] = event
            elif isinstance(event, events.Error):
                self.errors.append(event)
            elif isinstance(event, events.Deliver | events.Presence):
                self._room_event(event)
            self._lock.notify_all()

    def _room_event(self, event: events.RoomEvent) -> None:
        if event.history:
            self.history.append(event)
            return
        if not event.room:
            assert isinstance(event, events.Deliver)
            if all(p.seq != event.seq for p in self.private):
                self.private.append(event)
            self._send(events.Ack(stream="", upto=max(p.seq for p in self.private)))
            return
        seen = self.rooms.setdefault(event.room.lower(), {})
        seen[event.seq] = event
        self._send(events.Ack(stream=event.room, upto=0, sack=(event.seq,)))

    def _send(self, event: events.Event) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(envelope.encode(event, token=self.token), self.hub)

    def request(self, request: Any, timeout: float = 15.0) -> events.Reply | events.Error:
        """Send ``request`` with the next id, resend until answered (as the real client does)."""
        with self._lock:
            request = attrs.evolve(request, id=self.next_id)
            self.next_id += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._send(request)
            with self._lock:
                self._lock.wait_for(lambda: request.id in self.answers, RESEND)
                if request.id in self.answers:
                    return self.answers[request.id]
        raise TimeoutError(f"{self.nick}: no answer to {request}")

    def say(self, room: str, body: str) -> events.Reply | events.Error:
        return self.request(events.Say(id=0, room=room, body=body))

    def join(self, room: str, history: int = 0) -> events.Reply | events.Error:
        return self.request(events.Join(id=0, room=room, history=history))

    def seen(self, room: str) -> list[events.RoomEvent]:
        with self._lock:
            return [event for _, event in sorted(self.rooms.get(room.lower(), {}).items())]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.nick}: timed out waiting for {what}")
                self._lock.wait(min(left, 0.2))

    def close(self, bye: bool = True) -> None:
        if bye:
            self._send(events.Bye())
        self._closed = True
        self._reader.join(timeout=2)
        self.sock.close()
