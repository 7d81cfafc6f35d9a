"""History kept on disk (``--data-dir``): real hub processes stopped, killed and started again.

A clean stop keeps everything; a kill -9 loses nothing the hub counted as ``stored`` (it
commits every ``STORE_INTERVAL``, so at most the last fraction of a second is lost); a client connected across a crash catches up on what it
missed without seeing anything twice, because the restarted hub announces the same history
epoch and the client asks only for seqs after its last one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, LOOPBACK, free_tcp_port, free_udp_port, monitor_json, running_hub
from tests.tools.processes import run

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def clients() -> Iterator[list[PipedClient]]:
    """Clients a test starts; killed at the end, whatever happened."""
    started: list[PipedClient] = []
    yield started
    for client in started:
        if client.proc.poll() is None:
            os.kill(client.proc.pid, signal.SIGCONT)  # a stopped process would ignore nothing else
        client.kill()


def history(client: PipedClient) -> list[str]:
    """Bodies of the room lines the client showed marked as history."""
    return [line.split("> ", 1)[1] for line in client.lines if "(history)" in line and "> " in line]


def joined(client: PipedClient, room: str = "ops") -> None:
    client.wait_for(lambda: f"joined {room}" in client.err.read_text(), f"{room} joined", timeout=10)


def wait_until_stored(monitor: int, records: int, what: str) -> None:
    """Until the hub (``--monitor`` on port ``monitor``) has committed ``records`` records
    (room events and topics) to its store."""
    deadline = time.monotonic() + 20
    while (stored := monitor_json(monitor, "/varz")["counters"].get("stored", 0)) < records:
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {stored} of {records} stored"
        time.sleep(0.05)


def test_history_survives_a_clean_restart(tmp_path: Path, clients: list[PipedClient]) -> None:
    data = str(tmp_path / "data")  # missing: the hub creates it
    said = [f"kept {n}" for n in range(5)]
    with running_hub(tmp_path, "--data-dir", data) as hub:
        alice = PipedClient(hub.port, "alice", tmp_path)
        clients.append(alice)
        for line in said:
            alice.say(line)
        alice.wait_for(lambda: alice.bodies() == said, "alice's lines confirmed", timeout=10)
        assert alice.finish() == 0
        assert hub.stop(signal.SIGTERM) == 0

    with running_hub(tmp_path, "--data-dir", data) as hub:
        bob = PipedClient(hub.port, "bob", tmp_path, extra=("--history", "10"))
        clients.append(bob)
        joined(bob)
        bob.wait_for(lambda: history(bob) == said, "the lines from before the restart", timeout=5)
        assert bob.bodies() == said  # shown once, all as history


def test_what_the_hub_counted_as_stored_survives_a_kill_9(tmp_path: Path, clients: list[PipedClient]) -> None:
    data, monitor = str(tmp_path / "data"), free_tcp_port()
    said = [f"line {n}" for n in range(20)]
    with running_hub(tmp_path, "--data-dir", data, "--monitor", f"{LOOPBACK}:{monitor}") as hub:
        alice = PipedClient(hub.port, "alice", tmp_path)
        clients.append(alice)
        joined(alice)
        alice.say(*said)
        alice.wait_for(lambda: alice.bodies() == said, "alice's lines confirmed", timeout=10)
        wait_until_stored(monitor, 1 + len(said), "alice's join and lines committed")
        hub.stop(signal.SIGKILL)  # at once: no clean shutdown writes anything more
    alice.kill()

    with running_hub(tmp_path, "--data-dir", data) as hub:
        bob = PipedClient(hub.port, "bob", tmp_path, extra=("--history", "50"))
        clients.append(bob)
        joined(bob)
        bob.wait_for(lambda: history(bob) == said, "every line stored before the kill, in order", timeout=10)
        assert bob.bodies() == said, "each once"


def test_a_client_connected_across_a_crash_catches_up_without_duplicates(
    tmp_path: Path, clients: list[PipedClient]
) -> None:
    data = str(tmp_path / "data")
    port = free_udp_port()
    monitor = free_tcp_port()
    with running_hub(tmp_path, "--data-dir", data, "--monitor", f"{LOOPBACK}:{monitor}", port=port) as hub:
        alice = PipedClient(port, "alice", tmp_path)
        bob = PipedClient(port, "bob", tmp_path)
        clients += [alice, bob]
        joined(alice)
        joined(bob)
        for n in range(3):
            alice.say(f"before {n}")
        bob.wait_for(lambda: "before 2" in bob.bodies(), "the lines before the crash", timeout=10)
        wait_until_stored(monitor, 5, "two joins and three lines committed")
        os.kill(bob.proc.pid, signal.SIGSTOP)  # bob sleeps through the crash and what follows it
        hub.stop(signal.SIGKILL)

    with running_hub(tmp_path, "--data-dir", data, port=port):
        for n in range(3):
            alice.say(f"after {n}")
        alice.wait_for(lambda: "after 2" in alice.bodies(), "alice's lines after the restart", timeout=10)
        os.kill(bob.proc.pid, signal.SIGCONT)
        bob.wait_for(lambda: "after 2" in bob.bodies(), "bob catching up", timeout=10)

        shown = bob.bodies()
        for phase in ("before", "after"):
            for n in range(3):
                assert shown.count(f"{phase} {n}") == 1, (
                    f"{phase} {n} shown {shown.count(f'{phase} {n}')} times"
                )
        assert history(bob) == ["after 0", "after 1", "after 2"]  # what bob missed, from the catch-up
        assert "reconnected as bob" in bob.err.read_text()


def start_hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "roomcast-hub"), "--host", LOOPBACK, "--port", str(free_udp_port()), *args]
    return run(command, env=env, text=True, timeout=10)


@pytest.mark.parametrize("from_env", [False, True])
def test_an_unusable_data_dir_exits_1_with_a_one_line_hint(tmp_path: Path, from_env: bool) -> None:
    (tmp_path / "file").write_text("in the way")
    wanted = str(tmp_path / "file" / "data")
    result = start_hub(env={"ROOMCAST_DATA_DIR": wanted}) if from_env else start_hub("--data-dir", wanted)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert wanted in lines[0] and "--data-dir must be a directory" in lines[0], lines[0]


def test_a_second_hub_on_the_same_data_dir_exits_1(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with running_hub(tmp_path, "--data-dir", data):
        result = start_hub("--data-dir", data)
    assert result.returncode == 1
    assert "another hub" in result.stderr, result.stderr
