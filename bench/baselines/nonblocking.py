"""Plain Python, non-blocking: wait until readable, then drain the socket until EAGAIN,
sending with sendto per member (waiting for writability only on EAGAIN)."""

from __future__ import annotations

import select
import socket
import time

from bench.baselines import parse_args, room_of


def main() -> None:
    args = parse_args(__doc__ or "")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", args.port))
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    rooms: dict[bytes, list[tuple[str, int]]] = {}
    recvfrom, sendto = sock.recvfrom, sock.sendto
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        poller.poll(200)
        while True:
            try:
                data, address = recvfrom(2048)
            except BlockingIOError:
                break
            parsed = room_of(data)
            if parsed is None:
                continue
            command, room = parsed
            if command == b"JOIN":
                rooms.setdefault(room, []).append(address)
            elif command == b"MSG":
                for member in rooms.get(room, ()):
                    while True:
                        try:
                            sendto(data, member)
                            break
                        except BlockingIOError:
                            select.select([], [sock], [], 0.2)


if __name__ == "__main__":
    main()
