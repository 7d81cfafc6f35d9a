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


def _client(core: HubCore, port: int, nick: str) -> tuple[tuple[str, int], bytes]:
    """Handshake and join over the core's own datagrams; (address, token)."""
    address = ("127.0.0.1", port)
    core.receive_datagram(
        envelope.encode(events.Hello(nick=nick, pad=bytes(limits.HELLO_PAD_TO))), address, 0.0
    )
    challenge = _answer(core, address, events.Challenge)
    core.receive_datagram(envelope.encode(events.Hello(nick=nick, cookie=challenge.cookie)), address, 0.0)
    token = _answer(core, address, events.Welcome).token
    core.receive_datagram(envelope.encode(events.Join(id=1, room=ROOM), token=token), address, 0.0)
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
        for k in range(7, count, 8)
    }
    return core, says, acks, sender


def run(
    core: HubCore, says: list[bytes], acks: dict[int, list[tuple[bytes, Any]]], sender: Any
) -> tuple[float, float]:
    """(CPU seconds in says and fan-out, CPU seconds in acks): every member acks every 8."""
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
