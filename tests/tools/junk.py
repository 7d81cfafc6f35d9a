"""Hostile datagrams for robustness tests and the soak: random bytes, mutated envelopes.

:func:`junk_pool` builds a seeded pool of bad datagrams of every kind the issue names:
random bytes, valid envelopes with bit flips, truncations, wrong field types, huge declared
msgpack lengths, invalid UTF-8 in text and in envelope strings, and spoofed session tokens.
:func:`flood` sends them from a few loopback sockets, bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time

import msgpack

from roomcast.shared import envelope, events, limits

HEADER = envelope.HEADER


def _valid(rng: random.Random) -> bytes:
    token = rng.randbytes(limits.TOKEN_BYTES)
    samples: list[events.Event] = [
        events.Say(id=rng.randrange(1, 1000), room="lobby", body="hello " * rng.randrange(1, 20)),
        events.Join(id=rng.randrange(1, 1000), room="lobby"),
        events.Ack(stream="lobby", upto=rng.randrange(0, 100), sack=(101, 105)),
        events.Hello(nick="mallory", cookie=rng.randbytes(24)),
        events.Msg(id=1, to="alice", body="psst"),
        events.Nick(id=1, nick="alice"),
        events.Bye(),
    ]
    return envelope.encode(rng.choice(samples), token=token)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(4)
    raw = bytearray(data)
    if choice == 0:  # bit flips
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(raw))
            raw[i] ^= 1 << rng.randrange(8)
    elif choice == 1:  # truncation
        raw = raw[: rng.randrange(1, len(raw))]
    elif choice == 2:  # junk appended
        raw += rng.randbytes(rng.randrange(1, 50))
    else:  # a byte replaced
        raw[rng.randrange(2, len(raw))] = rng.randrange(256)
    return bytes(raw)


def _crafted(rng: random.Random) -> bytes:
    kinds = [
        HEADER + b"\xdb\xff\xff\xff\xff",  # str32 declaring 4 GiB
        HEADER + b"\xdd\xff\xff\xff\xff",  # array32 declaring 4 G items
        HEADER + b"\xdf\xff\xff\xff\xff",  # map32 declaring 4 G entries
        HEADER + msgpack.packb({"k": "say", "id": "one", "room": 5, "body": b"x"}),  # wrong types
        HEADER + msgpack.packb({"k": "join", "id": -1, "room": "lobby"}),  # bad value
        HEADER + msgpack.packb({"k": "join", "id": 1, "room": "bad room!"}),  # bad name
        HEADER + msgpack.packb({"k": "nosuch"}),
        HEADER + msgpack.packb({1: 2}),  # non-str key
        HEADER + msgpack.packb([1, 2, 3]),  # not a map
        HEADER + b"\xa3\xff\xfe\xfd",  # invalid UTF-8 string
        bytes([limits.ENVELOPE_MAGIC, 99]) + msgpack.packb({"k": "ping"}),  # future version
        b"\xff\xfe invalid utf-8 \xc3\x28",
        b"/join " + rng.randbytes(8),
        b"/nick " + b"x" * 300,
        b"x" * rng.randrange(1500, 9000),  # oversized
        rng.randbytes(rng.randrange(1, 64)),
    ]
    return rng.choice(kinds)


def junk_pool(seed: int, size: int = 4000) -> list[bytes]:
    rng = random.Random(seed)
    pool: list[bytes] = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.3:
            pool.append(rng.randbytes(rng.randrange(1, 1400)))
        elif roll < 0.6:
            pool.append(_mutate(rng, _valid(rng)))
        elif roll < 0.75:
            pool.append(_valid(rng))  # valid envelope, spoofed/unknown token
        else:
            pool.append(_crafted(rng))
    return pool


def flood(
    host: str, port: int, count: int, seconds: float, seed: int = 1, sockets: int = 4, rate: float = 0.0
) -> int:
    """Send up to ``count`` junk datagrams for at most ``seconds``, at most ``rate`` a second
    (0: as fast as the sockets take them); return how many the sockets took (not those refused
    for a full buffer or an ICMP error)."""
    assert host in ("127.0.0.1", "::1"), "junk goes to loopback only"
    pool = junk_pool(seed)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(sockets)]
    sent = tried = 0
    started = time.monotonic()
    deadline = started + seconds
    try:
        for sock in socks:
            sock.setblocking(False)
        while sent < count and time.monotonic() < deadline:
            for _ in range(min(200, count - sent)):
                tried += 1
                with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                    socks[tried % sockets].sendto(pool[tried % len(pool)], (host, port))
                    sent += 1
            for sock in socks:  # drain the hub's answers so nothing piles up
                try:
                    while True:
                        sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    pass
            ahead = sent / rate - (time.monotonic() - started) if rate else 0.0
            time.sleep(max(0.001, ahead))
    finally:
        for sock in socks:
            sock.close()
    return sent
