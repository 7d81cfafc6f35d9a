"""A client with a ``--hub`` list fails over between the hubs of one cluster (real nats-server,
real hubs with ``--nats``): after ``kill -9`` of its hub it is on another hub within 10 s, in its
rooms under the same nick, and has caught up with nothing lost and nothing shown twice.

It needs the hub side of issue 12 (``roomcast-hub --nats`` and tests/tools/natsproc.py).
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from roomcast.shared import limits
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import running_hub
from tests.tools.listedclient import listed_client

natsproc = pytest.importorskip("tests.tools.natsproc", reason="needs the hub side of issue 12 (cluster mode)")

pytestmark = pytest.mark.timeout(120)


def test_hub_killed_the_client_is_on_another_cluster_hub_within_10_s_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
) -> None:
    with (
        natsproc.nats_nodes(tmp_path, 1) as nodes,
        running_hub(tmp_path, "--nats", nodes[0].url) as hub_a,
        running_hub(tmp_path, "--nats", nodes[0].url) as hub_b,
    ):
        alice = listed_client("alice", tmp_path, f"{hub_a.hub_arg},{hub_b.hub_arg}")
        bob = PipedClient(hub_b.port, "bob", tmp_path)
        try:
            for client in (alice, bob):
                client.wait_for(lambda c=client: "joined ops" in c.err.read_text(), "the join", timeout=30)
            alice.say("before")
            bob.say("hello alice")
            bob.wait_for(lambda: "before" in bob.bodies(), "alice's line through the cluster")
            alice.wait_for(lambda: "hello alice" in alice.bodies(), "bob's line through the cluster")

            hub_a.proc.send_signal(signal.SIGKILL)
            hub_a.proc.wait(timeout=10)
            bob.say("said while alice was moving")
            for n in range(3):
                alice.say(f"typed while A was dead {n}")
            # She moves on to B instead of waiting for A until she gives up (exit 1, no reconnect).
            alice.wait_for(
                lambda: f"reconnected as alice to hub {hub_b.hub_arg}" in alice.err.read_text(),
                "alice to move on to hub B",
                timeout=limits.RECONNECT_GIVE_UP + 15,
            )
            assert alice.proc.poll() is None and "did not come back" not in alice.err.read_text()
            bob.wait_for(lambda: "typed while A was dead 2" in bob.bodies(), "alice's lines after the move")
            alice.wait_for(lambda: "said while alice was moving" in alice.bodies(), "the catch-up")
            bob.say("after")
            alice.wait_for(lambda: "after" in alice.bodies(), "bob's line after the move")

            assert "nick-taken" not in alice.err.read_text() and "is taken" not in alice.err.read_text()
            for client in (alice, bob):
                twice = [body for body, n in Counter(client.bodies()).items() if n > 1]
                assert twice == [], f"shown twice: {twice}"
            assert [b for b in bob.bodies() if b.startswith("typed")] == [
                f"typed while A was dead {n}" for n in range(3)
            ]
            assert any("<alice> typed while A was dead 0" in line for line in bob.lines), "the same nick"
            assert alice.finish() == 0
            assert bob.finish() == 0
        finally:
            alice.kill()
            bob.kill()
