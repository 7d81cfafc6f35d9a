"""The tests' own ports: two test processes at once (two pytest runs, from two worktrees or
two shells, outside xdist) never hand out the same port, so one's nats-server never ends up
serving the other's hubs (tests.tools.ports)."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.tools import ports
from tests.tools.processes import end, spawn

HAND_OUT = "from tests.tools import ports; print(*[ports.free_port() for _ in range({n})]); input()"


def test_two_test_processes_at_once_never_hand_out_the_same_port() -> None:
    count = ports.SPAN + 20  # more than one block each
    others = [
        spawn(
            [sys.executable, "-c", HAND_OUT.format(n=count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        handed = [set(map(int, other.stdout.readline().split())) for other in others]
        mine = {ports.free_port() for _ in range(count)}
        assert [len(h) for h in handed] == [count, count], handed
        assert not handed[0] & handed[1] and not mine & (handed[0] | handed[1]), "a port handed out twice"
    finally:
        for other in others:
            end(other, signal.SIGKILL)
