"""100,000 hostile datagrams at a running hub while real clients chat."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.tools import junk
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, HubProcess
from tests.tools.processes import run

LINES = 200


def test_junk_flood_does_not_lose_messages_or_stall_the_hub(hub: HubProcess, tmp_path: Path) -> None:
    alice, bob = PipedClient(hub.port, "alice", tmp_path), PipedClient(hub.port, "bob", tmp_path)
    try:
        for client in (alice, bob):
            client.wait_for(lambda c=client: "joined ops" in c.err.read_text(), "the join")
        sent: list[int] = []
        flooder = threading.Thread(target=lambda: sent.append(junk.flood(hub.host, hub.port, 100_000, 60.0)))
        flooder.start()
        for n in range(LINES):
            alice.say(f"line {n}")
        flooder.join(timeout=90)
        assert sent == [100_000]
        bob.wait_for(lambda: len(bob.bodies()) >= LINES, "every line", timeout=60)
        assert bob.bodies() == [f"line {n}" for n in range(LINES)]
        assert alice.finish() == 0
        assert bob.finish() == 0
    finally:
        alice.kill()
        bob.kill()
    stats = run([str(BIN / "roomcast"), "stats", "--hub", hub.hub_arg], text=True, timeout=20)
    assert stats.returncode == 0, stats.stderr
    assert hub.proc.poll() is None, "the hub died"
    assert "Traceback" not in hub.log()
