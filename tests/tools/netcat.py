"""A stand-in for ``nc -u HOST PORT``, for end-to-end tests.

Like netcat in UDP mode it connects a UDP socket to the hub, sends each stdin line as one
datagram *with* its newline (as ``nc`` does), and writes every datagram that arrives to stdout
as it arrives, raw (no newline added).  It keeps receiving after the end of stdin, as ``nc -u``
does, until ``--lifetime`` seconds have passed or it is signalled; a refused port (ICMP) ends
it with status 1, like ``nc``'s "Connection refused".

    python -m tests.tools.netcat HOST PORT [--lifetime SECONDS] < lines
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

#: Lines sent at most: a bound for a test tool, far beyond what a test types.
MAX_LINES = 10_000


def _send_lines(sock: socket.socket, deadline: float) -> None:
    for count, line in enumerate(sys.stdin.buffer):
        if count >= MAX_LINES or time.monotonic() >= deadline:
            return
        try:
            sock.send(line)
        except OSError:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netcat", description="nc -u HOST PORT, for tests")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--lifetime", type=float, default=30.0, help="exit after this many seconds")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.lifetime
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((args.host, args.port))
        threading.Thread(target=_send_lines, args=(sock, deadline), daemon=True).start()
        sock.settimeout(0.2)
        out = sys.stdout.buffer
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            except ConnectionRefusedError:
                print("netcat: read(net): Connection refused", file=sys.stderr)
                return 1
            out.write(data)
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
