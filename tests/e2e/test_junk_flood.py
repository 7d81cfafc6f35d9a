"""100,000 hostile datagrams at a running hub while real clients chat."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from tests.tools import junk
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, HubProcess
from tests.tools.processes import run

LINES = 200
JUNK = 100_000


def test_junk_flood_does_not_lose_messages_or_stall_the_hub(hub: HubProcess, tmp_path: Path) -> None:
    alice, bob = PipedClient(hub.port, "alice", tmp_path), PipedClient(hub.port, "bob", tmp_path)
    try:
        for client in (alice, bob):
            client.wait_for(lambda c=client: "joined ops" in c.err.read_text(), "the join")
        sent: list[int] = []
        flooder = threading.Thread(
            target=lambda: sent.append(junk.flood(hub.host, hub.port, JUNK, 60.0, rate=5000))
        )
        flooder.start()
        for n in range(LINES):
            alice.say(f"line {n}")
        flooder.join(timeout=90)
        assert sent and sent[0] >= 0.9 * JUNK, f"the flooder got only {sent} junk datagrams out"
        bob.wait_for(lambda: len(bob.bodies()) >= LINES, "every line", timeout=60)
        assert bob.bodies() == [f"line {n}" for n in range(LINES)]
        assert alice.finish() == 0
        assert bob.finish() == 0
    finally:
        alice.kill()
        bob.kill()
    stats = run([str(BIN / "roomcast"), "stats", "--hub", hub.hub_arg], text=True, timeout=20)
    assert stats.returncode == 0, stats.stderr
    handled = re.search(r"^datagrams in (\d+), out \d+$", stats.stdout, re.MULTILINE)
    assert handled, stats.stdout
    # The hub's own count: the flood reached it (a send that failed counts for the flooder only).
    assert int(handled.group(1)) >= 0.9 * sent[0] + LINES, stats.stdout
    assert hub.proc.poll() is None, "the hub died"
    assert "Traceback" not in hub.log()
