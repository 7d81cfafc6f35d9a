"""A line the cluster could not confirm is resent, and the lines typed after it wait behind it.

Real processes: one nats-server node, frozen with SIGSTOP; one cluster hub on it; the real
``roomcast`` client.  The hub gives up on the first line (``not-delivered``) while NATS is
frozen; the lines typed after that answer wait behind the first line's resend, then go, and
all three are carried out once, in the order typed, with no "not delivered" shown.  (Here the
frozen server would keep the order even without the client's care: the first line's publish
waits in its socket buffer and is stored first when it wakes.  The unit tests in
``tests/unit/test_say_order.py`` show lines held behind a line the cluster really lost.)
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from roomcast.shared import events, limits
from tests.tools.chatclient import ChatClient
from tests.tools.hubproc import HubProcess
from tests.tools.liveproc import roomcast_client
from tests.tools.natsproc import cluster_hubs, nats_nodes

pytestmark = pytest.mark.timeout(120)


def counter(hub: HubProcess, name: str) -> int:
    """The last value of counter ``name`` on the hub's stats line (0 before it shows)."""
    found = re.findall(rf"\b{re.escape(name)}=(\d+)", hub.log())
    return int(found[-1]) if found else 0


def wait_counter(hub: HubProcess, name: str, at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while counter(hub, name) < at_least:
        assert time.monotonic() < deadline, f"{name} never reached {at_least}:\n{hub.log()[-2000:]}"
        time.sleep(0.1)


def test_lines_typed_after_a_line_not_delivered_go_after_its_resend_once_each_in_order(
    tmp_path: Path,
) -> None:
    with (
        nats_nodes(tmp_path, 1) as (node,),
        cluster_hubs(tmp_path, node.url, 1, "--stats-interval", "1") as (hub,),
    ):
        watcher = ChatClient(hub.address, "watcher")
        try:
            watcher.join("order")
            with roomcast_client(hub.hub_arg, "typist", "order") as typist:
                node.kill(signal.SIGSTOP)
                try:
                    typist.send("one")
                    # The hub gives up on "one" (not-delivered): the client holds it for a resend.
                    wait_counter(hub, "cluster.publish-failed", 1, limits.CLUSTER_PUBLISH_GIVE_UP + 20)
                    unavailable = counter(hub, "errors.unavailable")
                    typist.send("two")
                    typist.send("three")
                    # "one" is resent (answered "unavailable", kept by the hub): without the
                    # order kept, "two" and "three" would be kept ahead of it.
                    wait_counter(hub, "errors.unavailable", unavailable + 1, 20)
                finally:
                    node.kill(signal.SIGCONT)
                wanted = ["one", "two", "three"]
                watcher.wait_for(
                    lambda: (
                        {e.body for e in watcher.seen("order") if isinstance(e, events.Deliver)}
                        >= set(wanted)
                    ),
                    "every line",
                    timeout=60,
                )
                bodies = [e.body for e in watcher.seen("order") if isinstance(e, events.Deliver)]
                assert bodies == wanted, bodies
                assert counter(hub, "cluster.duplicates") <= 1, "the resend of one is carried out once"
                typist.wait_for(r"<typist> three$", timeout=30)
                assert "not delivered" not in typist.out + typist.err
        finally:
            watcher.close()
