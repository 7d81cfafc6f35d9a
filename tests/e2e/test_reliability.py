"""Reliable, ordered room delivery through a lossy network, with real processes.

A seeded lossy proxy (10% loss, 5% duplication, reordering) sits between every client and
the hub.  Senders pipe their lines into ``roomcast``; receivers are long-lived ``roomcast``
processes whose stdout is read line by line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import running_hub
from tests.tools.lossy import running_proxy

SENDERS = 5
RECEIVERS = 5
MESSAGES = 2000


def diagnostics(tmp_path: Path) -> str:
    """What the clients said about themselves and the hub's last counters: for a failure."""
    notes = []
    for log in sorted(tmp_path.glob("*.err")):
        lines = [line for line in log.read_text().splitlines() if " -- " in line or " !! " in line]
        notes.append(f"{log.name}: {lines[-6:]}")
    for log in tmp_path.glob("hub-*.log"):
        notes += [line for line in log.read_text().splitlines() if "stats" in line or "too slow" in line]
    return "\n".join(notes)


def test_every_receiver_shows_every_message_once_in_room_order_despite_loss(tmp_path: Path) -> None:
    try:
        _run_lossy_room(tmp_path)
    except (AssertionError, subprocess.TimeoutExpired) as failure:
        raise AssertionError(f"{failure}\n{diagnostics(tmp_path)}") from failure


def _run_lossy_room(tmp_path: Path) -> None:
    # Flood control paces each sender at 80 lines/s (slow-down errors hold it back).
    with running_hub(tmp_path, "--flood-rate", "80") as hub, running_proxy(hub.port) as port:
        clients: list[PipedClient] = []
        try:
            receivers = [PipedClient(port, f"r{i}", tmp_path, room="bulk") for i in range(RECEIVERS)]
            clients += receivers
            for receiver in receivers:
                receiver.wait_for(lambda r=receiver: "joined bulk" in r.err.read_text(), "the join", 20)
            senders = [PipedClient(port, f"s{i}", tmp_path, room="bulk") for i in range(SENDERS)]
            clients += senders
            for i, sender in enumerate(senders):
                sender.say(*(f"s{i} {n}" for n in range(MESSAGES)))
            for n, sender in enumerate(senders):
                assert sender.finish(timeout=90) == 0, f"sender s{n} failed"
            orders = []
            for receiver in receivers:
                receiver.wait_for(lambda r=receiver: r.shown >= SENDERS * MESSAGES, "every line", 30)
                assert receiver.finish() == 0, "a receiver failed"
                orders.append(receiver.bodies())
        finally:
            for client in clients:
                client.kill()
        for shown in orders:
            assert len(shown) == len(set(shown)), "a message was shown twice"
            for i in range(SENDERS):
                mine = [line for line in shown if line.startswith(f"s{i} ")]
                assert mine == [f"s{i} {n}" for n in range(MESSAGES)], f"s{i}'s lines missing or out of order"
        assert all(order == orders[0] for order in orders), "receivers disagree on the room order"
    assert "too slow" not in hub.log(), "a receiver was dropped as too slow"
