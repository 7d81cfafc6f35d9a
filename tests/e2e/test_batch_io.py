"""The hub shell's batched system calls on real loopback sockets: one ``sendmmsg`` per room
message over a live vector (the sender skipped by slicing), and ``recvmmsg`` giving the same
datagrams and addresses as ``recvfrom``."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from roomcast.hub.batch import BatchSender, open_batch_sender
from roomcast.hub.fanout import Fanout, LiveVector
from roomcast.hub.recvbatch import SLOT, open_batch_receiver
from roomcast.hub.server import HubServer, ServerOptions


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made = []
    try:
        for _ in range(6):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(2.0)
            made.append(sock)
        yield made
    finally:
        for sock in made:
            sock.close()


def batch_sender(hub: socket.socket, **options: int) -> BatchSender:
    """The hub socket's sendmmsg sender, or the test skipped where there is none."""
    sender = open_batch_sender(hub, **options)
    if sender is None:
        pytest.skip("no sendmmsg here: the shell sends with sendto")
    return sender


def vector_of(members: list[socket.socket]) -> LiveVector:
    return LiveVector([m.getsockname() for m in members])


def test_one_sendmmsg_reaches_every_member_of_the_vector_but_the_sender(sockets: list[socket.socket]) -> None:
    hub, *members = sockets
    sender = batch_sender(hub)
    vector = vector_of(members)
    for skip in (-1, 0, 2, 4):
        item = Fanout(b"room line %d" % skip, vector, skip)
        assert sender.send_fanout(item.data, vector, skip) == len(item) == (5 if skip < 0 else 4)
        for i, member in enumerate(members):
            if i == skip:
                continue
            assert member.recvfrom(2048) == (item.data, hub.getsockname())
    assert vector.native is not None  # built once, kept for the next messages
    for member in members:
        member.setblocking(False)
        with pytest.raises(BlockingIOError):
            member.recv(2048)  # the skipped one got nothing, nobody got anything twice


def test_a_partial_send_goes_on_from_where_it_stopped(sockets: list[socket.socket]) -> None:
    hub, *members = sockets
    sender = batch_sender(hub)
    vector = vector_of(members)
    item = Fanout(b"x", vector, 1)
    assert item.targets() == [vector.addresses[i] for i in (2, 3, 4, 0)]
    assert sender.send_fanout(b"x", vector, 1, start=2) == 2  # the last two targets
    got = []
    for member in members:
        hub.sendto(b"end", member.getsockname())  # a marker behind whatever was sent to it
        member.settimeout(10.0)
        while (data := member.recv(2048)) != b"end":
            got.append((member.getsockname(), data))
    assert sorted(got) == sorted([(vector.addresses[4], b"x"), (vector.addresses[0], b"x")])


def test_recvmmsg_gives_what_recvfrom_gives(sockets: list[socket.socket]) -> None:
    hub, *peers = sockets
    receiver = open_batch_receiver(hub, capacity=8)
    if receiver is None:
        pytest.skip("no recvmmsg here: the shell reads with recvfrom")
    hub.setblocking(False)
    assert receiver.receive() == []
    sent = [(b"datagram %d" % i * (i + 1), peers[i % len(peers)]) for i in range(12)]
    for data, peer in sent:
        peer.sendto(data, hub.getsockname())
    got = []
    for _ in range(10):
        got += receiver.receive()
    assert got == [(data, peer.getsockname()) for data, peer in sent]
    peers[0].sendto(b"y" * (SLOT + 100), hub.getsockname())
    [(big, _)] = receiver.receive()
    assert len(big) == SLOT  # kept to the slot, still far over every limit, so refused as such


def test_recvmmsg_gives_what_recvfrom_gives_over_ipv6_and_hands_each_datagram_over() -> None:
    made: list[socket.socket] = []
    try:
        try:
            for _ in range(3):
                made.append(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
                made[-1].bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        hub, *peers = made
        hub.setblocking(False)
        receiver = open_batch_receiver(hub, capacity=4)
        if receiver is None:
            pytest.skip("no recvmmsg here")
        sent = [(b"six %d" % i, peers[i % 2]) for i in range(6)]
        for data, peer in sent:
            peer.sendto(data, hub.getsockname())
        got: list[tuple[bytes, object, float]] = []
        for _ in range(10):
            receiver.deliver(lambda data, address, now: got.append((data, address, now)), 7.0)
        assert got == [(data, peer.getsockname(), 7.0) for data, peer in sent]
    finally:
        for sock in made:
            sock.close()


def test_each_batch_read_is_stamped_with_the_time_it_was_read(sockets: list[socket.socket]) -> None:
    """An ack stamped with the time of an earlier read makes the round trip look short: the
    RTO collapses and the whole room gets spurious retransmissions.  Every recvmmsg batch
    takes the clock afresh, after the core's work on the batch before."""
    hub_sock, *peers = sockets
    hub_sock.setblocking(False)
    for i in range(5):
        peers[i].sendto(b"junk %d" % i, hub_sock.getsockname())
    clock = trio.testing.MockClock()
    stamps: list[float] = []

    async def main() -> None:
        server = HubServer(hub_sock, ServerOptions())
        receiver = open_batch_receiver(hub_sock, capacity=2)
        if receiver is None:
            pytest.skip("no recvmmsg here")
        server._receiver = receiver

        def slow_receive(data: bytes, address: tuple[str, int], now: float) -> None:
            stamps.append(now)
            clock.jump(1.0)  # the core's work on this datagram takes a second

        server.core.receive_datagram = slow_receive  # type: ignore[method-assign]
        assert server._drain_socket() == 5

    trio.run(main, clock=clock)
    start = stamps[0]
    assert [s - start for s in stamps] == [0.0, 0.0, 2.0, 2.0, 4.0]


def test_the_shell_resumes_a_partial_send_where_it_stopped(sockets: list[socket.socket]) -> None:
    """sendmmsg may send part of a batch, hit a full buffer (EAGAIN) or refuse one datagram:
    the shell goes on from the first one that did not go, waits for room on EAGAIN, skips only
    the refused one (counted), and sends nothing twice."""
    hub_sock = sockets[0]
    hub_sock.setblocking(False)
    starts: list[int] = []
    script: list[int | type[OSError]] = [3, BlockingIOError, 2, OSError, InterruptedError, 2, 2]

    def send_from(start: int) -> int:
        starts.append(start)
        step = script.pop(0)
        if isinstance(step, int):
            return step
        raise step()

    async def main() -> int:
        server = HubServer(hub_sock, ServerOptions())
        await server._send_all(10, send_from)
        return server.core.counters["errors.send"]

    errors = trio.run(main)
    assert starts == [0, 3, 3, 5, 6, 6, 8]
    assert errors == 1 and script == []


def _received(members: list[socket.socket], hub: socket.socket) -> dict[object, list[bytes]]:
    """What each member got, in order, up to a marker sent behind it."""
    got: dict[object, list[bytes]] = {}
    for member in members:
        hub.sendto(b"end", member.getsockname())
        member.settimeout(10.0)
        got[member.getsockname()] = [d for d in iter(lambda m=member: m.recv(2048), b"end")]  # type: ignore[misc]
    return got


def _expected(items: list[object], members: list[socket.socket]) -> dict[object, list[bytes]]:
    want: dict[object, list[bytes]] = {m.getsockname(): [] for m in members}
    for item in items:
        if isinstance(item, Fanout):
            for address in item.targets():
                want[address].append(item.data)
        else:
            data, address = item  # type: ignore[misc]
            want[address].append(data)
    return want


def test_one_batch_carries_replies_and_small_room_messages_in_order(sockets: list[socket.socket]) -> None:
    """Replies and room messages to few members ride in one sendmmsg, each room message with its
    own iovec (the same room twice in a batch included); a big room message stops the batch."""
    hub, *members = sockets
    sender = batch_sender(hub, capacity=16, small=5)
    small = vector_of(members[:3])
    big = vector_of(members)
    a, b, c = (m.getsockname() for m in members[:3])
    items: list[object] = [
        (b"reply 1", a),
        Fanout(b"room 1", small, 0),
        (b"reply 2", b),
        Fanout(b"room 2", small, -1),
        Fanout(b"room 3", small, 2),
        (b"reply 3", c),
        Fanout(b"solo", LiveVector([b]), -1),  # one member: laid out as a plain datagram
        Fanout(b"pair", LiveVector([b, c]), 1),
        Fanout(b"none", LiveVector([c]), 0),  # the sender alone: nothing to send
        Fanout(b"big", big, -1),
        (b"after", a),
    ]
    assert sender.load(items, 0) == (9, 12)  # up to the big room message, not past it
    assert sender.send_loaded() == 12
    assert sender.load(items, 9) == (0, 0)  # the big one goes with send_fanout
    assert sender.send_fanout(b"big", big, -1) == 5
    assert sender.load(items, 10) == (1, 1)
    assert sender.send_loaded() == 1
    assert _received(members, hub) == _expected(items, members)


def test_a_full_batch_stops_before_the_room_message_that_does_not_fit(sockets: list[socket.socket]) -> None:
    hub, *members = sockets
    sender = batch_sender(hub, capacity=6, small=5)
    vector = vector_of(members[:4])
    items: list[object] = [Fanout(b"m%d" % i, vector, 1) for i in range(3)]
    assert sender.load(items, 0) == (2, 6)
    assert sender.send_loaded(start=4) == 2  # resumed after the first four
    assert sender.send_loaded(start=0) == 6
    assert sender.load(items, 2) == (1, 3)
    assert sender.send_loaded() == 3
    want = _expected(items, members)
    for address in items[1].targets()[1:]:  # type: ignore[attr-defined]
        want[address].insert(0, b"m1")  # the resumed tail of the first batch came first
    assert _received(members, hub) == want


def test_the_shell_sends_the_same_datagrams_with_and_without_sendmmsg(sockets: list[socket.socket]) -> None:
    """A mixed flush (replies, small and big room messages, a bad address) gives every member
    the same datagrams in the same order through sendmmsg batches as through sendto."""
    hub_sock, *members = sockets
    hub_sock.setblocking(False)
    small = vector_of(members[:2])
    big = vector_of(members)
    a, b = (m.getsockname() for m in members[:2])
    items: list[object] = [(b"r%d" % i, a if i % 2 else b) for i in range(5)]
    items += [Fanout(b"s%d" % i, small, i % 3 - 1) for i in range(9)]
    items += [(b"bad", ("not an address", 1)), Fanout(b"big", big, 3), (b"last", b)]
    results = []
    for batched in (True, False):

        async def main(batched: bool) -> int:
            server = HubServer(hub_sock, ServerOptions())
            if batched:
                server._batch = open_batch_sender(hub_sock, capacity=4, small=3)
                if server._batch is None:
                    pytest.skip("no sendmmsg here")
            else:
                server._batch = None
            server.core._out = list(items)  # type: ignore[arg-type]
            await server._flush()
            return server.core.counters["errors.send"]

        assert trio.run(main, batched) == 1  # the bad address, counted once; the rest still went
        results.append(_received(members, hub_sock))
    sendable = [item for item in items if not (isinstance(item, tuple) and item[0] == b"bad")]
    assert results[0] == results[1] == _expected(sendable, members)
