"""The textbook relay: a blocking socket, recvfrom, then one sendto per member."""

from __future__ import annotations

import socket
import struct
import time

from bench.baselines import parse_args, room_of


def main() -> None:
    args = parse_args(__doc__ or "")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
    # Still a blocking socket: the kernel timeout only lets the loop notice its deadline.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200_000))
    sock.bind(("127.0.0.1", args.port))
    rooms: dict[bytes, list[tuple[str, int]]] = {}
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            data, address = sock.recvfrom(2048)
        except BlockingIOError:
            continue
        parsed = room_of(data)
        if parsed is None:
            continue
        command, room = parsed
        if command == b"JOIN":
            rooms.setdefault(room, []).append(address)
        elif command == b"MSG":
            for member in rooms.get(room, ()):
                sock.sendto(data, member)


if __name__ == "__main__":
    main()
