"""A hub killed with SIGKILL and started again: clients notice, come back, lose nothing typed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.tools.hubproc import BIN, LOOPBACK, free_udp_port, wait_until_answering


def start_hub(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "roomcast-hub"), "--host", LOOPBACK, "--port", str(port)], stdout=out, stderr=out
        )
    wait_until_answering(LOOPBACK, port)
    return proc


class Client:
    """A long-lived piped ``roomcast``: lines in on stdin, room lines out on stdout."""

    def __init__(self, port: int, nick: str, tmp: Path) -> None:
        self.err = tmp / f"{nick}.err"
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [str(BIN / "roomcast"), "--hub", f"{LOOPBACK}:{port}", "--nick", nick, "--room", "ops"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, predicate: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}; stdout={self.lines[-5:]}, stderr={self.err.read_text()}"
        )

    def bodies(self) -> list[str]:
        return [line.split("> ", 1)[1] for line in self.lines if "> " in line]

    def finish(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


def test_clients_survive_a_hub_killed_and_restarted_without_losing_typed_lines(tmp_path: Path) -> None:
    port = free_udp_port()
    hub = start_hub(port, tmp_path / "hub.log")
    alice, bob = Client(port, "alice", tmp_path), Client(port, "bob", tmp_path)
    try:
        bob.wait_for(lambda: "joined ops" in bob.err.read_text(), "bob to join")
        alice.wait_for(lambda: "joined ops" in alice.err.read_text(), "alice to join")
        for n in range(3):
            alice.say(f"before {n}")
        bob.wait_for(lambda: bob.bodies().count("before 2") == 1, "the lines before the crash")

        os.kill(hub.pid, signal.SIGKILL)
        hub.wait(timeout=10)
        for n in range(3):
            alice.say(f"during {n}")  # typed while there is no hub at all
        time.sleep(0.5)  # the hub stays down a moment, as after a real crash
        hub = start_hub(port, tmp_path / "hub.log")
        for n in range(3):
            alice.say(f"after {n}")

        bob.wait_for(lambda: "after 2" in bob.bodies(), "the lines after the restart", timeout=40)
        shown = bob.bodies()
        for n in range(3):
            for phase in ("before", "during", "after"):
                assert shown.count(f"{phase} {n}") == 1, (
                    f"{phase} {n} shown {shown.count(f'{phase} {n}')} times"
                )
        assert "reconnected as alice" in alice.err.read_text()
        assert "reconnected as bob" in bob.err.read_text()
        assert alice.finish() == 0
        assert bob.finish() == 0
    finally:
        for client in (alice, bob):
            if client.proc.poll() is None:
                client.proc.kill()
                client.proc.wait()
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(timeout=10) == 0
