"""Reliable, ordered room delivery through a lossy network, with real processes.

A seeded lossy proxy (10% loss, 5% duplication, reordering) sits between every client and
the hub.  Senders pipe their lines into ``roomcast``; receivers are long-lived ``roomcast``
processes whose stdout is read line by line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.tools.hubproc import BIN, LOOPBACK, free_udp_port, running_hub

SENDERS = 5
RECEIVERS = 5
MESSAGES = 2000


class Reader:
    """Collects a subprocess's stdout lines on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._run, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _run(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def close(self) -> None:
        self._thread.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def lossy_proxy(hub_port: int, seed: int = 7) -> Iterator[int]:
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tools.lossy", "--listen", f"{LOOPBACK}:{port}",
         "--hub", f"{LOOPBACK}:{hub_port}", "--seed", str(seed), "--lifetime", "120"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def roomcast(port: int, nick: str, log: Path, stdout: Path | None = None) -> subprocess.Popen[str]:
    """A piped client; its stdout is a pipe to read, or a file when nobody reads it."""
    with log.open("w") as err, stdout.open("w") if stdout else open(os.devnull, "w") as out:
        return subprocess.Popen(
            [str(BIN / "roomcast"), "--hub", f"{LOOPBACK}:{port}", "--nick", nick, "--room", "bulk"],
            stdin=subprocess.PIPE, stdout=out if stdout else subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip


def wait_for_text(path: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while needle not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert needle in path.read_text(), f"{path.name}: no {needle!r} within {timeout} s"


def chat_lines(reader: Reader) -> list[str]:
    """The bodies of the room lines a client showed, e.g. ``s3 17``."""
    return [line.split("> ", 1)[1] for line in reader.lines if "> " in line]


def diagnostics(tmp_path: Path) -> str:
    """What the clients said about themselves and the hub's last counters: for a failure."""
    notes = []
    for log in sorted(tmp_path.glob("*.err")):
        lines = [line for line in log.read_text().splitlines() if " -- " in line or " !! " in line]
        notes.append(f"{log.name}: {lines[-6:]}")
    for log in tmp_path.glob("hub-*.log"):
        notes += [line for line in log.read_text().splitlines() if "stopped" in line or "too slow" in line]
    return "\n".join(notes)


def test_every_receiver_shows_every_message_once_in_room_order_despite_loss(tmp_path: Path) -> None:
    try:
        _run_lossy_room(tmp_path)
    except (AssertionError, subprocess.TimeoutExpired) as failure:
        raise AssertionError(f"{failure}\n{diagnostics(tmp_path)}") from failure


def _run_lossy_room(tmp_path: Path) -> None:
    # Flood control paces each sender at 80 lines/s (slow-down errors hold it back), which is
    # what lets ten Python clients, the proxy and the hub share two cores without anyone
    # falling a whole window behind.
    with running_hub(tmp_path, "--flood-rate", "80") as hub, lossy_proxy(hub.port) as port:
        logs = [tmp_path / f"r{i}.err" for i in range(RECEIVERS)]
        receivers = [Reader(roomcast(port, f"r{i}", log)) for i, log in enumerate(logs)]
        for log in logs:
            wait_for_text(log, "joined bulk", timeout=20)
        senders = [
            roomcast(port, f"s{i}", tmp_path / f"s{i}.err", stdout=tmp_path / f"s{i}.out")
            for i in range(SENDERS)
        ]
        for i, sender in enumerate(senders):
            assert sender.stdin is not None
            sender.stdin.write("".join(f"s{i} {n}\n" for n in range(MESSAGES)))
            sender.stdin.close()
        for n, sender in enumerate(senders):
            assert sender.wait(timeout=90) == 0, f"sender s{n} failed"
        for reader in receivers:
            reader.wait_for(SENDERS * MESSAGES, timeout=30)
            assert reader.proc.stdin is not None
            reader.proc.stdin.close()
            assert reader.proc.wait(timeout=30) == 0, "a receiver failed"
            reader.close()
        orders = []
        for reader in receivers:
            shown = chat_lines(reader)
            assert len(shown) == len(set(shown)), "a message was shown twice"
            for i in range(SENDERS):
                mine = [line for line in shown if line.startswith(f"s{i} ")]
                assert mine == [f"s{i} {n}" for n in range(MESSAGES)], f"s{i}'s lines missing or out of order"
            orders.append(shown)
        assert all(order == orders[0] for order in orders), "receivers disagree on the room order"
