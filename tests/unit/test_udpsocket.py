"""The hub socket's kernel buffers: asked for, forced past the system ceiling where the
process may, and what the ceiling allows where it may not."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from roomcast.hub.udpsocket import SO_RCVBUFFORCE, SO_SNDBUFFORCE, buffers_line, open_socket, size_buffers
from roomcast.shared import limits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux buffer options")


def _ceiling(name: str) -> int:
    return int(Path(f"/proc/sys/net/core/{name}").read_text())


def _may_force() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20)
        except PermissionError:
            return False
    return True


def test_the_hub_socket_gets_its_buffers_or_the_most_the_system_allows() -> None:
    sock = open_socket("127.0.0.1", 0)
    try:
        want = limits.HUB_SOCKET_BUFFER
        for option, ceiling in ((socket.SO_RCVBUF, "rmem_max"), (socket.SO_SNDBUF, "wmem_max")):
            got = sock.getsockopt(socket.SOL_SOCKET, option)
            # The kernel reports twice what it was given: forced to ours, or the ceiling's.
            assert got == 2 * (want if _may_force() else min(want, _ceiling(ceiling)))
    finally:
        sock.close()


class Unprivileged:
    """A socket whose owner lacks CAP_NET_ADMIN: the FORCE options are refused (EPERM)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.refused: list[int] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
            self.refused.append(option)
            raise PermissionError(1, "Operation not permitted")
        self.sock.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int) -> Any:
        return self.sock.getsockopt(level, option)


def test_without_the_privilege_the_hub_keeps_what_the_ceiling_allows() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fake = Unprivileged(sock)
        too_big = 2 * max(_ceiling("rmem_max"), _ceiling("wmem_max")) + 4096
        got = size_buffers(fake, too_big)  # type: ignore[arg-type]
        assert sorted(fake.refused) == [SO_SNDBUFFORCE, SO_RCVBUFFORCE]  # tried, refused, went on
        assert got == {"SO_RCVBUF": 2 * _ceiling("rmem_max"), "SO_SNDBUF": 2 * _ceiling("wmem_max")}


def test_a_short_buffer_is_named_in_the_start_up_line_with_what_to_raise() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        line = buffers_line(sock)
        assert line.startswith(f"SO_RCVBUF={2 * 65536} SO_SNDBUF=")
        assert "raise net.core.rmem_max" in line and "CAP_NET_ADMIN" in line
    sock = open_socket("127.0.0.1", 0)
    try:
        if _may_force():
            assert "raise" not in buffers_line(sock)  # it got what it asked for
    finally:
        sock.close()
