"""Bad input never crashes the hub nor disturbs other clients: junk while others chat.

Junk senders get a clear error in their own dialect (an ``error: ...`` line for text, an Error
envelope with a code for envelope junk), the hub logs the problem and goes on, and the clients
chatting meanwhile see every one of their messages, in order.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time

import msgpack

from roomcast.shared import envelope, events
from tests.tools import screen
from tests.tools.hubproc import HubProcess
from tests.tools.liveproc import roomcast_client
from tests.tools.textbook import TextbookClient

HEADER = b"\xc1\x01"
_rng = random.Random(20240601)

#: Envelope junk and the error code the hub must answer it with.
ENVELOPE_JUNK: dict[str, bytes] = {
    "malformed": HEADER + bytes([0x81, 0xA1, 0x6B]) + bytes(_rng.randrange(256) for _ in range(40)),
    "too-large": HEADER + b"\x00" * 2000,
    "bad-version": b"\xc1\x07" + msgpack.packb({"k": "ping"}),
    "not-envelope": b"\xc1",
    "unknown-kind": HEADER + msgpack.packb({"k": "explode"}),
    "bad-name": HEADER + msgpack.packb({"k": "hello", "nick": "bad nick!"}),
    "bad-type": HEADER + msgpack.packb({"k": "ping", "id": "one"}),
    "missing-field": HEADER + msgpack.packb({"k": "join"}),
    "bad-value": HEADER + msgpack.packb({"k": "join", "id": -1, "room": "ops"}),
}

#: Plain-text junk: each answered with a line starting "error:".
TEXT_JUNK: dict[str, bytes] = {
    "non-utf8": b"\xff" + bytes(_rng.randrange(128, 256) for _ in range(30)),
    "room-with-space": b"/join bad room!",
    "room-breaking-rules": b"/join bad!room",
    "unknown-room": b"/who nosuch",
    "unknown-nick": b"/msg nobody hi",
    "nick-too-long": b"/nick " + b"n" * 40,
    "unknown-command": b"/frobnicate now",
    "line-too-long": b"x" * 1500,
}

ROUNDS = 3


def send_junk(
    sockets: dict[str, socket.socket], payloads: dict[str, bytes], address: tuple[str, int]
) -> None:
    """A bounded burst: ROUNDS times each payload from its own socket, a few ms apart."""
    for _ in range(ROUNDS):
        for name, payload in payloads.items():
            sockets[name].sendto(payload, address)
            time.sleep(0.003)


def replies(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """Up to ``count`` datagrams, each waited for at most ``timeout`` s."""
    sock.settimeout(timeout)
    got: list[bytes] = []
    try:
        while len(got) < count:
            got.append(sock.recvfrom(65535)[0])
    except TimeoutError:
        pass
    return got


MARKER_HELLO = envelope.encode(events.Hello(nick="marker", pad=bytes(64)))


def marker_answer(sock: socket.socket, hub: tuple[str, int], envelope_socket: bool) -> bytes | None:
    """Send a marker whose answer is known (a challenge to a hello; a /who listing) and return
    the next datagram if it is that answer, None if something else came first."""
    sock.sendto(MARKER_HELLO if envelope_socket else b"/who", hub)
    [data] = replies(sock, 1, timeout=5.0)
    if envelope_socket:
        return data if isinstance(envelope.decode(data).event, events.Challenge) else None
    return data if b" in lobby: " in data and not data.startswith(b"error") else None


def test_junk_while_others_chat(hub: HubProcess) -> None:
    payloads = {**{f"envelope:{k}": v for k, v in ENVELOPE_JUNK.items()}, **TEXT_JUNK}
    sockets = {name: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for name in payloads}
    try:
        with (
            roomcast_client(hub.hub_arg, "alice", "lobby") as alice,
            roomcast_client(hub.hub_arg, "bob", "lobby") as bob,
            TextbookClient(*hub.address) as guest,
        ):
            guest.say("guest here")
            junk = threading.Thread(target=send_junk, args=(sockets, payloads, hub.address), daemon=True)
            junk.start()
            for n in range(10):
                alice.send(f"alice says {n}")
                bob.send(f"bob says {n}")
                if n % 3 == 0:
                    guest.say(f"guest says {n}")
            junk.join(timeout=10.0)
            assert not junk.is_alive()

            for n in range(10):
                bob.wait_for(screen.said("lobby", "alice", f"alice says {n}"))
                alice.wait_for(screen.said("lobby", "bob", f"bob says {n}"))
            for n in (0, 3, 6, 9):
                alice.wait_for(screen.said("lobby", guest.nick, f"guest says {n}"))
                bob.wait_for(screen.said("lobby", guest.nick, f"guest says {n}"))
            in_order = [line.split("> ")[1] for line in bob.lines() if "<alice>" in line]
            assert in_order == [f"alice says {n}" for n in range(10)], "each once, in order"

            for name, sock in sockets.items():
                got = replies(sock, ROUNDS)
                assert len(got) == ROUNDS, f"{name}: one answer per datagram, got {got!r}"
                for data in got:
                    if name.startswith("envelope:"):
                        error = envelope.decode(data).event
                        assert isinstance(error, events.Error), (name, error)
                        assert error.code == name.removeprefix("envelope:"), (name, error)
                        assert error.text
                    else:
                        assert len(data) <= 1024
                        last = data.decode("utf-8").splitlines()[-1]
                        assert last.startswith("error: "), (name, data)

            # One answer per datagram: a marker sent now must get the very next datagram.
            for name, sock in sockets.items():
                answer = marker_answer(sock, hub.address, envelope_socket=name.startswith("envelope:"))
                assert answer is not None, f"{name}: an extra datagram came before the marker's answer"

            assert hub.proc.poll() is None, "the hub is still running"
            guest.say("catching up")  # its answer carries the room lines queued meanwhile
            assert guest.say("still there?") == "sent to lobby"
            alice.send("/who")
            who = alice.wait_for(screen.notice(r"\d+ in lobby: alice bob (.*)"), "err")
            assert guest.nick in who.group(1).split()
    finally:
        for sock in sockets.values():
            sock.close()

    log = hub.log()
    assert "Traceback" not in log
    for code in ("malformed", "too-large", "bad-version", "unknown-kind", "bad-name", "bad-type", "bad-utf8"):
        assert re.search(rf"WARNING roomcast\.hub: bad input from .*\({code}\)", log), code


def test_text_errors_say_what_was_wrong(hub: HubProcess) -> None:
    with TextbookClient(*hub.address) as guest:
        assert guest.say("hello").endswith("sent to lobby")
        expected = {
            "/join bad room!": "error: room name 'bad room!' contains a space (U+0020 SPACE)",
            "/join bad!room": "error: room name 'bad!room' contains '!', which names may not hold; use letters",
            "/who nosuch": "error: there is no room nosuch",
            "/msg nobody hi": "error: nobody is called nobody here",
            "/nick " + "n" * 40: "error: nick 'nnnn",
            "/frobnicate": "error: unknown command /frobnicate; type /help",
            "é" * 600: "error: line is 1200 bytes; the limit is 1000",
        }
        for line, start in expected.items():
            reply = guest.say(line)
            assert reply.startswith(start), (line, reply)
        guest.sock.sendto(b"caf\xe9 \xff", hub.address)
        assert guest.sock.recvfrom(2014)[0] == b"error: a text line must be valid UTF-8"
        assert guest.say("still chatting") == "sent to lobby"
        # one answer per line: a stray datagram would be taken as this answer
        assert guest.say("/who") == f"1 in lobby: {guest.nick}"


def test_hub_logs_refused_names_and_unknown_rooms_and_nicks(hub: HubProcess) -> None:
    with TextbookClient(*hub.address) as guest:
        guest.say("hello")
        for line in ("/join bad!room", "/who nosuch", "/msg nobody hi"):
            assert guest.say(line).startswith("error: ")
        # A non-UTF-8 line is logged: once its line is in the log, so is everything before it.
        guest.sock.sendto(b"\xff", hub.address)
        guest.sock.recvfrom(2014)
    deadline = time.monotonic() + 3.0
    while "(bad-utf8)" not in hub.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    log = hub.log()
    assert "(bad-utf8)" in log
    assert [word for word in ("bad!room", "nosuch", "nobody") if word not in log] == []
