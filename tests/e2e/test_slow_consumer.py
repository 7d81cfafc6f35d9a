"""A member that stops acknowledging is told and dropped; the others do not notice."""

from __future__ import annotations

import threading
from pathlib import Path

from roomcast.shared import events, limits
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import running_hub
from tests.tools.rawclient import RawClient

MESSAGES = limits.MEMBER_WINDOW + 300


def test_a_member_that_stops_acking_is_dropped_and_the_others_get_everything(tmp_path: Path) -> None:
    with running_hub(tmp_path, "--flood-rate", "0") as hub:
        stuck = RawClient(hub.address, "stuck")
        assert isinstance(stuck.request(events.Join(id=0, room="ops")), events.Reply)
        alice, bob = PipedClient(hub.port, "alice", tmp_path), PipedClient(hub.port, "bob", tmp_path)
        try:
            for client in (alice, bob):
                client.wait_for(lambda c=client: "joined ops" in c.err.read_text(), "the join")
            # It reads (so its socket buffer never overflows) but never acknowledges.
            got: list[object] = []
            reader = threading.Thread(target=lambda: got.extend(stuck.received(timeout=5.0)))
            reader.start()
            for n in range(MESSAGES):
                alice.say(f"m{n}")
            bob.wait_for(lambda: len(bob.bodies()) >= MESSAGES, "every message", timeout=60)
            assert bob.bodies() == [f"m{n}" for n in range(MESSAGES)]
            bob.wait_for(lambda: "* stuck left (too slow)" in bob.err.read_text(), "the notice")
            reader.join(timeout=30)
            told = [e for e in got if isinstance(e, events.Error)]
            assert [e.code for e in told][-1:] == ["too-slow"]
            assert alice.finish() == 0
            assert bob.finish() == 0
        finally:
            stuck.close()
            alice.kill()
            bob.kill()
        assert "stuck dropped from its rooms (too slow)" in hub.log()
