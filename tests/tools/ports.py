"""Loopback ports for the tests' hubs, nats-servers and proxies, never handed out twice.

Asking the kernel for a free port (bind to port 0, close, hand the number on) races twice:
the next ask may return the same number, and the number comes from the ephemeral range, where
any outgoing connection (a NATS client, a monitor request) may take it before the server the
test starts binds it.  So each pytest-xdist worker takes its ports from its own block below
the ephemeral range, in turn, skipping any that something holds right now (UDP or TCP).
"""

from __future__ import annotations

import itertools
import os
import socket

LOOPBACK = "127.0.0.1"
#: Below Linux's default ephemeral range (32768-60999), above the usual services.
FIRST_PORT = 20000
BLOCK = 1500


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _block() -> range:
    start = FIRST_PORT + (_worker_index() % 8) * BLOCK
    return range(start, start + BLOCK)


_turn = itertools.count()


def _free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _kernel_pick(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` free for UDP and TCP right now, not handed out before by this
    process (until its block wraps round), and in no other xdist worker's block."""
    block = _block()
    if block.stop > _ephemeral_floor():  # an unusual ephemeral range: let the kernel choose
        return _kernel_pick(host)
    for _ in range(len(block)):
        port = block[next(_turn) % len(block)]
        if _free(host, port):
            return port
    raise RuntimeError(f"no free port on {host} in {block.start}-{block.stop - 1}")


def distinct_free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` ports free right now, all different."""
    ports: list[int] = []
    for _ in range(100 * count):
        if len(ports) == count:
            break
        if (port := free_port(host)) not in ports:
            ports.append(port)
    assert len(ports) == count, f"found only {len(ports)} distinct free ports of {count}"
    return ports
