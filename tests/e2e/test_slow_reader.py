"""A piped client whose stdout is not read for a while still receives and acknowledges: the hub
sees its acks keep up (so it never counts it too slow), and once read, it shows every line once,
in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tools.clientproc import PAUSED_PIPE_SIZE, PipedClient
from tests.tools.hubproc import LOOPBACK, free_tcp_port, monitor_json, running_hub

#: Far more output than the paused reader's pipe holds (about 200 bytes a line).
LINES = [f"line {n:04d} {'é' * 80}" for n in range(600)]


def unacked(monitor: int, nick: str) -> int | None:
    """What the hub holds for ``nick`` unacknowledged (/connz), None if it is not connected."""
    clients: list[dict[str, Any]] = monitor_json(monitor, "/connz")["clients"]
    return next((c["unacked"] for c in clients if c["nick"] == nick), None)


def test_a_piped_client_whose_stdout_is_not_read_still_acks_then_shows_every_line(tmp_path: Path) -> None:
    assert sum(len(line.encode()) for line in LINES) > 20 * PAUSED_PIPE_SIZE
    monitor = free_tcp_port()
    with running_hub(tmp_path, "--flood-rate", "0", "--monitor", f"{LOOPBACK}:{monitor}") as hub:
        reader = PipedClient(hub.port, "reader", tmp_path, paused=True)
        alice = PipedClient(hub.port, "alice", tmp_path)
        try:
            for client in (reader, alice):
                client.wait_for(lambda c=client: "joined ops" in c.err.read_text(), "the join")
            alice.say(*LINES)
            alice.wait_for(lambda: alice.bodies() == LINES, "alice's lines confirmed", timeout=60)
            # The reader's stdout has not been read at all, yet it has acknowledged everything.
            reader.wait_for(lambda: unacked(monitor, "reader") == 0, "the reader's acks", timeout=60)
            assert reader.lines == []
            reader.start_reading()
            reader.wait_for(lambda: len(reader.bodies()) >= len(LINES), "every line shown", timeout=60)
            assert reader.bodies() == LINES, "every line once, in order"
            assert alice.finish() == 0
            assert reader.finish() == 0
        finally:
            alice.kill()
            reader.kill()
        assert "too slow" not in hub.log()
