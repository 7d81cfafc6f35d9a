"""The hub core's own CPU per room message and per ack, without sockets: what the Python does.

``make bench`` measures whole processes, kernel included, on a shared machine.  This part
drives a :class:`~hub.core.HubCore` in-process (no sockets, no trio) with prebuilt datagrams
and reads the process CPU clock, so it shows how the hub's Python work grows with the room,
and, with ``--profile``, where it goes (cProfile, top functions by own time).

    python -m bench.coreprofile            # the table
    python -m bench.coreprofile --profile 10
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from typing import Any

from roomcast.hub.core import HubConfig, HubCore
from roomcast.shared import envelope, events, limits

ROOM = "hall"


def _client(
    core: HubCore, port: int, nick: str, room: str = ROOM, host: str = "127.0.0.1"
) -> tuple[tuple[str, int], bytes]:
    """Handshake and join over the core's own datagrams; (address, token)."""
    address = (host, port)
    core.receive_datagram(
        envelope.encode(events.Hello(nick=nick, pad=bytes(limits.HELLO_PAD_TO))), address, 0.0
    )
    challenge = _answer(core, address, events.Challenge)
    core.receive_datagram(envelope.encode(events.Hello(nick=nick, cookie=challenge.cookie)), address, 0.0)
    token = _answer(core, address, events.Welcome).token
    core.receive_datagram(envelope.encode(events.Join(id=1, room=room), token=token), address, 0.0)
    return address, token


def _answer(core: HubCore, address: tuple[str, int], kind: type[Any]) -> Any:
    for data, to in core.datagrams_to_send():
        event = envelope.decode(data).event
        if to == address and isinstance(event, kind):
            return event
    raise RuntimeError(f"no {kind.__name__} for {address}")


def setup(members: int) -> tuple[HubCore, list[bytes], dict[int, list[tuple[bytes, Any]]], Any]:
    core = HubCore(HubConfig(flood_rate=0, max_clients_per_host=members + 10), now=0.0)
    sender, token = _client(core, 40000, "sender")
    peers = [_client(core, 41000 + i, f"m{i}") for i in range(members)]
    seq = core.registry.rooms[ROOM].seq
    for address, peer_token in [(sender, token), *peers]:
        core.receive_datagram(
            envelope.encode(events.Ack(stream=ROOM, upto=seq), token=peer_token), address, 0.0
        )
    core.sends()
    count = 2000 if members <= 100 else 300
    says = [
        envelope.encode(events.Say(id=2 + k, room=ROOM, body="x" * 100), token=token) for k in range(count)
    ]
    acks = {
        k: [(envelope.encode(events.Ack(stream=ROOM, upto=seq + k + 1), token=t), a) for a, t in peers]
        for k in range(limits.ACK_EVERY - 1, count, limits.ACK_EVERY)
    }
    return core, says, acks, sender


def run(
    core: HubCore, says: list[bytes], acks: dict[int, list[tuple[bytes, Any]]], sender: Any
) -> tuple[float, float]:
    """(CPU seconds in says and fan-out, CPU seconds in acks): every member acks every ACK_EVERY."""
    now, in_acks, clock = 1.0, 0.0, time.process_time
    started = clock()
    for k, data in enumerate(says):
        core.receive_datagram(data, sender, now)
        core.sends()
        if k in acks:
            t = clock()
            for ack, address in acks[k]:
                core.receive_datagram(ack, address, now)
            in_acks += clock() - t
            core.sends()
        now += 0.0002
        core.on_timer(now)
        core.sends()
    return clock() - started - in_acks, in_acks


def table(sizes: tuple[int, ...] = (1, 10, 100, 999)) -> list[str]:
    rows = [
        "| members | hub core CPU per room message (say, fan-out) | per ack | per delivery, acks included |",
        "|---|---|---|---|",
    ]
    for members in sizes:
        core, says, acks, sender = setup(members)
        in_says, in_acks = run(core, says, acks, sender)
        n_acks = sum(len(v) for v in acks.values())
        per_message = in_says / len(says)
        per_delivery = (in_says + in_acks) / (len(says) * members)
        rows.append(
            f"| {members:,} | {per_message * 1e6:.1f} µs | {in_acks / n_acks * 1e6:.2f} µs | {per_delivery * 1e6:.2f} µs |"
        )
    return rows


def add_idle(core: HubCore, sessions: int, rooms: int) -> None:
    """Idle members in ``rooms`` other rooms, as the bench registers them: handshake, join,
    one ack of the presence events they saw; then their rooms' retransmission scans run."""
    joined = []
    for n in range(sessions):  # 50 per host: under the per-host cap
        room = f"idle{n % rooms}"
        address, token = _client(core, 10000 + n, f"i{n}", room, host=f"127.1.{n // 50}.{n % 50 + 1}")
        joined.append((address, token, room))
        core.sends()
    for address, token, room in joined:
        ack = events.Ack(stream=room, upto=core.registry.rooms[room].seq)
        core.receive_datagram(envelope.encode(ack, token=token), address, 0.0)
    core.on_timer(0.9)
    core.sends()


def idle_cost(sessions: int = 10_000, rooms: int = 1_000, repeats: int = 3) -> tuple[float, float]:
    """Hub core CPU per delivery in a room of 10, without and with ``sessions`` idle members
    present (each the cheapest of ``repeats`` runs on a fresh core), in seconds."""
    costs = []
    for idle in (0, sessions):
        best = float("inf")
        for _ in range(repeats):
            core, says, acks, sender = setup(10)
            if idle:
                add_idle(core, idle, rooms)
            in_says, in_acks = run(core, says, acks, sender)
            best = min(best, (in_says + in_acks) / (len(says) * 10))
        costs.append(best)
    return costs[0], costs[1]


def idle_line() -> str:
    empty, full = idle_cost()
    return (
        f"With 10,000 idle sessions in 1,000 rooms, room of 10: {empty * 1e6:.2f} → {full * 1e6:.2f} µs "
        f"per delivery ({100 * (full / empty - 1):+.0f}%; each the cheapest of 3 runs on a fresh core)."
    )


def profile(members: int, top: int = 12) -> str:
    core, says, acks, sender = setup(members)
    profiler = cProfile.Profile()
    profiler.runcall(run, core, says, acks, sender)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--profile"]:
        print(profile(int(argv[1]) if len(argv) > 1 else 10))
        return 0
    print("\n".join(table()))
    print(idle_line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
