"""A UDP chat client that behaves exactly like the textbook one, for end-to-end tests.

The textbook client (the one in every networking course) does, for each line typed::

    client.sendto(line.encode("UTF-8"), hub)
    data, addr = client.recvfrom(2014)     # sic: 2014, one datagram, blocking
    data = data.decode("UTF-8")
    print(data)
    if data == "bye": break

So a hub must answer every line with exactly one datagram, or this client hangs forever.
Here the blocking receive has a safety timeout (``TextbookHang``) so that a test fails instead
of hanging; a hub that behaves never makes it fire.  Use it as :class:`TextbookClient` or as a
script reading lines from stdin::

    python -m tests.tools.textbook HOST PORT [--timeout SECONDS] < lines
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterable

#: The textbook's receive buffer (sic).
RECV_SIZE = 2014
BYE = "bye"


class TextbookHang(AssertionError):
    """No datagram came back: the real textbook client would block here forever."""


class TextbookClient:
    """One textbook client: an unbound UDP socket (the first ``sendto`` picks its port)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.hub = (host, port)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        #: Every datagram received, as bytes, in order.
        self.received: list[bytes] = []

    def __enter__(self) -> TextbookClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def port(self) -> int:
        """The local port (the hub names a text client ``guest-<port>``); valid after a send."""
        return int(self.sock.getsockname()[1])

    @property
    def nick(self) -> str:
        return f"guest-{self.port}"

    def say(self, line: str) -> str:
        """Send ``line``, block for exactly one datagram, return it decoded as UTF-8 (strict)."""
        self.sock.sendto(line.encode("UTF-8"), self.hub)
        try:
            data, _addr = self.sock.recvfrom(RECV_SIZE)
        except TimeoutError:
            raise TextbookHang(
                f"no reply to {line!r} within {self.timeout} s: the textbook client would hang"
            ) from None
        self.received.append(data)
        return data.decode("UTF-8")

    def stray(self, wait: float = 0.0) -> list[bytes]:
        """Datagrams that arrived beyond the one-per-line replies (waiting up to ``wait`` s for
        the first).  A textbook client would mistake them for the replies to its next lines."""
        extra: list[bytes] = []
        self.sock.settimeout(wait if wait > 0 else None)
        if wait <= 0:
            self.sock.setblocking(False)
        try:
            for _ in range(100):
                extra.append(self.sock.recvfrom(65535)[0])
                self.sock.setblocking(False)
        except (BlockingIOError, TimeoutError):
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return extra


def chat(host: str, port: int, lines: Iterable[str], timeout: float = 5.0) -> list[str]:
    """Run the textbook loop over ``lines``; the replies, up to and including ``bye``."""
    replies: list[str] = []
    with TextbookClient(host, port, timeout) as client:
        for line in lines:
            reply = client.say(line)
            replies.append(reply)
            if reply == BYE:
                break
    return replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textbook", description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--timeout", type=float, default=10.0, help="safety bound on each receive")
    args = parser.parse_args(argv)
    with TextbookClient(args.host, args.port, args.timeout) as client:
        for raw in sys.stdin:
            try:
                reply = client.say(raw.removesuffix("\n"))
            except TextbookHang as exc:
                print(f"textbook: {exc}", file=sys.stderr)
                return 3
            print(reply, flush=True)
            if reply == BYE:
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
