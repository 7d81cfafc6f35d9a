"""The naive trio relay: ``await sock.recvfrom`` and one ``await sock.sendto`` per member."""

from __future__ import annotations

import socket

import trio

from bench.baselines import parse_args, room_of


async def relay(port: int, seconds: float) -> None:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
    await sock.bind(("127.0.0.1", port))
    rooms: dict[bytes, list[tuple[str, int]]] = {}
    with trio.move_on_after(seconds):
        while True:
            data, address = await sock.recvfrom(2048)
            parsed = room_of(data)
            if parsed is None:
                continue
            command, room = parsed
            if command == b"JOIN":
                rooms.setdefault(room, []).append(address)
            elif command == b"MSG":
                for member in rooms.get(room, ()):
                    await sock.sendto(data, member)


def main() -> None:
    args = parse_args(__doc__ or "")
    trio.run(relay, args.port, args.seconds)


if __name__ == "__main__":
    main()
