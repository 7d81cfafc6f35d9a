"""The textbook UDP chat *server*, the twin of ``tests.tools.textbook``, for end-to-end tests.

As in every networking course, it reads ``recvfrom(1024)`` and decodes strictly, so a datagram
longer than 1024 bytes is cut and, cut inside a character, crashes it (exit 1 with a
``UnicodeDecodeError``).  It answers each line with ``got N characters`` and ``bye`` with ``bye``, and
stops after ``--lines`` lines (bounded)::

    python -m tests.tools.textbook_server PORT [--lines N]

It prints ``listening`` once bound, then each line it read.
"""

from __future__ import annotations

import argparse
import socket
import sys

#: The textbook server's receive size (sic).
RECV_SIZE = 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textbook_server", description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--lines", type=int, default=100, help="stop after this many lines")
    parser.add_argument("--timeout", type=float, default=30.0, help="stop after this long without a line")
    args = parser.parse_args(argv)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", args.port))
        server.settimeout(args.timeout)
        print("listening", flush=True)
        for _ in range(args.lines):
            data, address = server.recvfrom(RECV_SIZE)
            line = data.decode("UTF-8")  # strict, as in the textbook: invalid UTF-8 crashes it
            print(line, flush=True)
            server.sendto(b"bye" if line == "bye" else f"got {len(line)} characters".encode(), address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
