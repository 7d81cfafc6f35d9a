"""The hub's UDP socket: bound, non-blocking, with kernel buffers sized for bursts of acks.

Why the receive buffer matters: a member acknowledges every ``ACK_EVERY`` deliveries or
``ACK_DELAY`` after the first one it holds, so a room of 1,000 sends the hub up to about
50,000 acks a second whatever the message rate.  When the hub loses its core for a moment (a
busy machine), they pile up in the socket; past its buffer the kernel drops them (and the
says among them), and every drop costs a retransmission round or stalls a sender.  The
default ceiling (``net.core.rmem_max``) often allows a few MiB only: the hub asks for
``HUB_SOCKET_BUFFER`` and, where that ceiling cuts it, for the same through
``SO_RCVBUFFORCE``/``SO_SNDBUFFORCE``, which need CAP_NET_ADMIN; without it the hub keeps
what the ceiling allows and says so in its start-up line.
"""

from __future__ import annotations

import contextlib
import socket
import sys

from roomcast.shared import limits

#: Linux's option numbers (the socket module does not name them).
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33


def open_socket(host: str, port: int, buffer: int = limits.HUB_SOCKET_BUFFER) -> socket.socket:
    """A bound, non-blocking UDP socket (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        size_buffers(sock, buffer)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def size_buffers(sock: socket.socket, size: int) -> dict[str, int]:
    """Ask for ``size`` bytes of receive and send buffer, forcing past the system's ceiling
    where the process may; returns the sizes the kernel took (it reports twice the request,
    the doubling being its bookkeeping allowance)."""
    got = {}
    pairs = (("SO_RCVBUF", socket.SO_RCVBUF, SO_RCVBUFFORCE), ("SO_SNDBUF", socket.SO_SNDBUF, SO_SNDBUFFORCE))
    for name, option, force in pairs:
        with contextlib.suppress(OSError):  # refused: the default stays
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        if sock.getsockopt(socket.SOL_SOCKET, option) < 2 * size and sys.platform.startswith("linux"):
            # EPERM without CAP_NET_ADMIN: keep what net.core.[rw]mem_max allowed above.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, force, size)
        got[name] = sock.getsockopt(socket.SOL_SOCKET, option)
    return got


def buffers_line(sock: socket.socket) -> str:
    """The socket's buffer sizes for the start-up log line, and what to raise when the
    receive buffer is short of what the hub asked for."""
    rcv = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    snd = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    line = f"SO_RCVBUF={rcv} SO_SNDBUF={snd}"
    if rcv < 2 * limits.HUB_SOCKET_BUFFER:
        line += (
            f"; below the {limits.HUB_SOCKET_BUFFER >> 20} MiB asked for, so rooms near"
            f" {limits.MAX_MEMBERS_PER_ROOM} members may overflow it while the hub waits for a core:"
            " raise net.core.rmem_max and net.core.wmem_max, or give the hub CAP_NET_ADMIN"
        )
    return line
