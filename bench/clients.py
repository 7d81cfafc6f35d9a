"""Benchmark clients, set up in Python with real sockets, then handed to the C generator.

Python does what is rare and fiddly: the envelope handshake (hello, challenge, hello with the
cookie, welcome), joins, text commands, the baselines' ``JOIN room``.  The sockets, connected
to the relay and already members of their room, are then inherited by ``bench/build/loadgen``
(``pass_fds``) with their session tokens, and C does what is hot: send, receive, acknowledge.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence

import attrs

from roomcast.shared import envelope, events, limits

LOOPBACK = "127.0.0.1"
#: Sockets set up at once: their answers wait in their own buffers, so a wave is never lost.
WAVE = 500


@attrs.define
class Peer:
    """One benchmark client: a socket connected to the relay, its room and session token."""

    sock: socket.socket
    room: str
    token: bytes = b""
    seq: int = 0

    def plan_line(self, role: str) -> str:
        return f"{role} {self.sock.fileno()} {self.room} {self.token.hex() or '-'} {self.seq}"


def open_peers(count: int, relay: tuple[str, int], room: str) -> list[Peer]:
    peers = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        sock.bind((LOOPBACK, 0))
        sock.connect(relay)
        sock.settimeout(1.0)
        peers.append(Peer(sock, room))
    return peers


def close_peers(peers: Iterable[Peer], *, bye: bytes | None = None, envelope_bye: bool = False) -> None:
    """Leave politely (so the hub stops resending to them), then close."""
    for peer in peers:
        try:
            if envelope_bye and peer.token:
                peer.sock.send(envelope.encode(events.Bye(reason="quit"), token=peer.token))
            elif bye is not None:
                peer.sock.send(bye)
        except OSError:
            pass
        peer.sock.close()


def _answer(sock: socket.socket, kinds: tuple[type[object], ...]) -> object | None:
    """The next envelope of one of ``kinds`` on ``sock`` (others are skipped), None on timeout."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            event = envelope.decode(sock.recv(2048)).event
        except TimeoutError:
            return None
        except envelope.RemoteProtocolError:
            continue
        if isinstance(event, kinds):
            return event
    return None


def _step(peers: Sequence[Peer], request: list[bytes], kinds: tuple[type[object], ...]) -> list[object]:
    """Send each peer its datagram, collect its answer; resend (up to 3 times) when none came."""
    answers: list[object | None] = [None] * len(peers)
    for _attempt in range(4):
        missing = [i for i, a in enumerate(answers) if a is None]
        if not missing:
            break
        for i in missing:
            peers[i].sock.send(request[i])
        for i in missing:
            answers[i] = _answer(peers[i].sock, kinds)
    if any(a is None for a in answers):
        raise TimeoutError("the hub did not answer some benchmark clients within 4 tries")
    return answers  # type: ignore[return-value]


def register_envelope(peers: Sequence[Peer], nick_prefix: str) -> None:
    """Handshake and join for every peer, in waves; then acknowledge the presence events."""
    for start in range(0, len(peers), WAVE):
        wave = peers[start : start + WAVE]
        nicks = [f"{nick_prefix}{start + i}" for i in range(len(wave))]
        pad = bytes(limits.HELLO_PAD_TO)
        hellos = [envelope.encode(events.Hello(nick=n, pad=pad)) for n in nicks]
        challenges = _step(wave, hellos, (events.Challenge,))
        hellos = [
            envelope.encode(events.Hello(nick=n, cookie=c.cookie))  # type: ignore[attr-defined]
            for n, c in zip(nicks, challenges, strict=True)
        ]
        for peer, welcome in zip(wave, _step(wave, hellos, (events.Welcome,)), strict=True):
            peer.token = welcome.token  # type: ignore[attr-defined]
        joins = [envelope.encode(events.Join(id=1, room=p.room), token=p.token) for p in wave]
        for peer, reply in zip(wave, _step(wave, joins, (events.Reply, events.Error)), strict=True):
            if not isinstance(reply, events.Reply):
                raise RuntimeError(f"benchmark join refused: {reply}")
            peer.seq = reply.seq
    acknowledge_joins(peers)


def acknowledge_joins(peers: Sequence[Peer]) -> None:
    """Each member saw presence events up to its room's last join: ack them all at once, as
    the real client's cumulative ack would, so the hub has nothing left to resend."""
    last: dict[str, int] = {}
    for peer in peers:
        last[peer.room] = max(last.get(peer.room, 0), peer.seq)
    for peer in peers:
        ack = events.Ack(stream=peer.room, upto=last[peer.room])
        peer.sock.send(envelope.encode(ack, token=peer.token))
        peer.seq = last[peer.room]
    # The presence events (and their retransmissions) wait in the sockets: read them here, so
    # the generator starts with empty sockets instead of answering each as a duplicate.  In a
    # room at the 1,000-member cap that is half a million datagrams of setup, not of the run.
    time.sleep(0.3)
    for peer in peers:
        peer.sock.setblocking(False)
        _drain(peer.sock)
        peer.sock.settimeout(1.0)


def register_text(peers: Sequence[Peer], live: bool) -> None:
    """Plain-text guests: ``/join room`` (and ``/live on``), one reply datagram per line."""
    lines = [f"/join {peers[0].room}\n".encode()] + ([b"/live on\n"] if live else [])
    for line in lines:
        for peer in peers:
            peer.sock.send(line)
        for peer in peers:
            peer.sock.recv(2048)


def register_relay(peers: Sequence[Peer], sender: Peer) -> None:
    """Baseline relays: ``JOIN room``, then one message proves every member is in."""
    for peer in peers:
        peer.sock.send(f"JOIN {peer.room}".encode())
    for _attempt in range(20):
        sender.sock.send(f"MSG {sender.room} ready".encode())
        try:
            for peer in peers:
                peer.sock.recv(2048)
            return
        except TimeoutError:
            for peer in peers:
                peer.sock.settimeout(0.05)
                _drain(peer.sock)
                peer.sock.settimeout(1.0)
    raise TimeoutError("the relay did not forward to every member")


def _drain(sock: socket.socket) -> None:
    try:
        while True:
            sock.recv(2048)
    except (TimeoutError, BlockingIOError):
        return
