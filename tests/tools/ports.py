"""Loopback ports for the tests' hubs, nats-servers and proxies, never handed out twice.

Asking the kernel for a free port (bind to port 0, close, hand the number on) races twice:
the next ask may return the same number, and the number comes from the ephemeral range, where
any outgoing connection (a NATS client, a monitor request) may take it before the server the
test starts binds it.  So ports come from below the ephemeral range, in blocks of ``SPAN``,
and each test process (an xdist worker, or a pytest of its own) first claims a block for
itself with an exclusive ``flock`` on a file named after it (in ``LOCKS``).  The lock lasts as
long as the process and ends with it, however it ends, so two test processes never hand out
the same port, even from two worktrees at once.  (Before, every pytest run outside xdist took
the same block in the same order: a second run's nats-server found its ports taken and
exited, its hubs and health checks reached the first run's server, and that run's end took
the server away: a say got no answer.)  Within its block a process hands out each port once,
in turn, skipping any that something holds right now (UDP or TCP), and claims another block
when it has used them all.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Below Linux's default ephemeral range (32768-60999), above the usual services.
FIRST_PORT = 20000
#: Ports per claimed block.
SPAN = 100
#: One lock file per block, shared by every test process of this user on the machine.
LOCKS = Path(tempfile.gettempdir()) / f"roomcast-test-ports-{os.getuid()}"

#: The blocks this process holds (their lock files stay open, and locked, until it ends).
_claimed: dict[int, int] = {}
_current: list[int] = []


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


def _claim_block() -> int | None:
    """The first port of a block no other live test process holds, now this process's; None
    when every block is held (then the blocks already claimed go round again)."""
    starts = list(range(FIRST_PORT, _ephemeral_floor() - SPAN + 1, SPAN))
    LOCKS.mkdir(exist_ok=True)
    first = (_worker_index() * len(starts)) // 8  # xdist workers start apart: fewer tries
    for n in range(len(starts)):
        start = starts[(first + n) % len(starts)]
        if start in _claimed:
            continue
        fd = os.open(LOCKS / str(start), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another test process holds it
            os.close(fd)
            continue
        _claimed[start] = fd
        return start
    return None


def _next_port() -> int | None:
    """The next port of this process's blocks, each once before any comes again (None: no
    block to be had)."""
    if not _current:
        start = _claim_block()
        if start is not None:
            _current.extend(range(start + SPAN - 1, start - 1, -1))  # popped lowest first
        elif _claimed:  # every block is held: this process's own go round again
            _current.extend(p for s in sorted(_claimed, reverse=True) for p in range(s + SPAN - 1, s - 1, -1))
        else:
            return None
    return _current.pop()


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
    process (until all its blocks went round), and in no other test process's block."""
    for _ in range(4 * SPAN):
        port = _next_port()
        if port is None:  # no block below an unusual ephemeral range: let the kernel choose
            return _kernel_pick(host)
        if _free(host, port):
            return port
    raise RuntimeError(f"no free port on {host} in the blocks {sorted(_claimed)} (of {SPAN})")


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
