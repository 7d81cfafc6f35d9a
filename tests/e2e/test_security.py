"""Address validation, anti-amplification and flood control against a real hub process."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from roomcast.shared import envelope, events
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, HubProcess, running_hub
from tests.tools.junk import junk_pool
from tests.tools.processes import run

#: Trusting only IPv6 loopback makes every 127.0.0.1 client an untrusted one.
UNTRUSTED = ("--trust", "::1/128")


def _drain(sock: socket.socket) -> int:
    """Read what is still queued (late answers); return the byte count."""
    sock.setblocking(False)
    total = 0
    try:
        while True:
            total += len(sock.recv(65535))
    except BlockingIOError:
        return total


def _exchange(sock: socket.socket, hub: HubProcess, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` and return the one answer it must get (AssertionError if none in ``wait``)."""
    _drain(sock)
    sock.sendto(data, hub.address)
    sock.settimeout(wait)
    try:
        return sock.recv(65535)
    except TimeoutError:
        raise AssertionError(f"no answer to {data[:40]!r} within {wait} s") from None


#: A padded hello without a cookie: from any address the hub answers it with a challenge, and
#: it handles datagrams from one address in order, so that challenge comes after every answer
#: to what was sent before it.
MARKER = envelope.encode(events.Hello(nick="marker", pad=bytes(40)))


def _answers_until_marker(sock: socket.socket, hub: HubProcess, timeout: float = 10.0) -> tuple[int, int]:
    """Send the marker; (bytes received before its challenge, bytes of the challenge)."""
    sock.sendto(MARKER, hub.address)
    sock.setblocking(True)
    sock.settimeout(timeout)
    before = 0
    while True:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            raise AssertionError(f"the marker got no challenge within {timeout} s") from None
        if envelope.is_envelope(data) and isinstance(envelope.decode(data).event, events.Challenge):
            return before, len(data)
        before += len(data)


def test_hub_sends_an_unvalidated_address_at_most_three_times_what_it_sent(tmp_path: Path) -> None:
    with running_hub(tmp_path, *UNTRUSTED) as hub, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        probes = [
            envelope.encode(events.Hello(nick="eve")),  # unpadded hello: too small for a challenge
            envelope.encode(events.Hello(nick="eve", pad=bytes(40))),
            envelope.encode(events.Ping()),
            b"x",
            b"hi",
            b"hello there, anybody?",
            "é".encode(),
            b"\xff\xfe",
            *junk_pool(seed=5, size=300),
        ]
        sent = received = 0
        for probe in probes:
            sent += len(probe)
            sock.sendto(probe, hub.address)
            time.sleep(0.002)
            received += _drain(sock)
        late, marker_answer = _answers_until_marker(sock, hub)  # every late answer has come by then
        received += late
        assert 0 < received <= 3 * sent
        assert marker_answer <= 3 * len(MARKER)
        challenge = envelope.decode(
            _exchange(sock, hub, envelope.encode(events.Hello(nick="eve", pad=bytes(40))))
        ).event
        assert isinstance(challenge, events.Challenge)
        small = envelope.encode(events.Hello(nick="eve"))
        sock.sendto(small, hub.address)  # a challenge would not fit 3x: at most a short answer
        answered, _ = _answers_until_marker(sock, hub)
        assert answered <= 3 * len(small)


def test_untrusted_text_client_chats_only_after_typing_back_its_code(tmp_path: Path) -> None:
    with running_hub(tmp_path, *UNTRUSTED) as hub, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        prompt = _exchange(sock, hub, b"hello, is this the chat?").decode()
        assert "type this code" in prompt
        code = prompt.rsplit(" ", 1)[1]
        # Still a stranger: a 4-byte line earns at most 12 bytes back, just the code.
        short = _exchange(sock, hub, b"/who")
        assert len(short) <= 12 and short.decode().endswith(code)
        welcome = _exchange(sock, hub, code.lower().encode()).decode()
        assert welcome.startswith("welcome guest-")
        assert "in lobby" in _exchange(sock, hub, b"/who").decode()


def test_envelope_client_from_an_untrusted_address_passes_the_cookie_check(tmp_path: Path) -> None:
    with running_hub(tmp_path, *UNTRUSTED) as hub:
        done = run(
            [str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", "carol", "--room", "ops"],
            input="validated\n", text=True, timeout=20,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "connected as carol" in done.stderr


def test_session_token_is_required_so_another_address_cannot_speak_for_a_client(
    hub: HubProcess, tmp_path: Path
) -> None:
    bob = PipedClient(hub.port, "bob", tmp_path)
    try:
        bob.wait_for(lambda: "joined ops" in bob.err.read_text(), "bob to join")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer:
            forged = events.Say(id=1, room="ops", body="I am bob, trust me")
            answer = _exchange(spoofer, hub, envelope.encode(forged, token=bytes(16)))
            error = envelope.decode(answer).event
            assert isinstance(error, events.Error) and error.code == "unknown-session"
        # bob's own next line comes back after anything the hub did before it
        bob.say("after the forgery")
        bob.wait_for(lambda: "after the forgery" in bob.bodies(), "bob's own line")
        assert "I am bob, trust me" not in bob.bodies()
        assert bob.finish() == 0
    finally:
        bob.kill()


def test_a_flooding_text_client_is_told_to_slow_down_while_others_chat_normally(
    hub: HubProcess, tmp_path: Path
) -> None:
    alice, bob = PipedClient(hub.port, "alice", tmp_path), PipedClient(hub.port, "bob", tmp_path)
    try:
        for client in (alice, bob):
            client.wait_for(lambda c=client: "joined ops" in c.err.read_text(), "the join")
        replies = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder:
            for n in range(60):
                replies.append(_exchange(flooder, hub, f"spam {n}".encode(), wait=1.0).decode())
                if n % 10 == 0:
                    alice.say(f"normal {n // 10}")
        assert any("slow down" in reply for reply in replies)
        bob.wait_for(lambda: bob.bodies().count("normal 5") == 1, "alice's lines")
        assert [b for b in bob.bodies() if b.startswith("normal")] == [f"normal {n}" for n in range(6)]
        assert alice.finish() == 0
        assert bob.finish() == 0
    finally:
        alice.kill()
        bob.kill()
