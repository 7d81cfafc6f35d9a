"""The test helper that owns processes (``tests/tools/processes.py``): what it starts sees no
ROOMCAST_* from the shell, and ending a process ends what it started, even in another session
and even after the process itself died."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tools import processes

#: Starts a sleeper in a session of its own (as honcho starts its processes), prints its pid.
SETSID_CHILD = "setsid sleep 120 & echo $!; sleep 120"


def gone(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while True:  # looks at least once (timeout=0: is it gone now?)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def sleeper_of(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    return int(proc.stdout.readline())


def test_spawned_programs_see_no_roomcast_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMCAST_HISTORY", "5")
    monkeypatch.setenv("ROOMCAST_LOG_LEVEL", "loud")
    done = processes.run(["env"], text=True, timeout=10)
    assert done.returncode == 0
    assert "ROOMCAST_" not in done.stdout
    assert "PYTHONUNBUFFERED=1" in done.stdout


def test_ending_a_process_ends_what_it_started_in_another_session() -> None:
    proc = processes.spawn(["sh", "-c", SETSID_CHILD], stdout=subprocess.PIPE, text=True)
    sleeper = sleeper_of(proc)
    assert not gone(sleeper, timeout=0)  # it runs
    processes.end(proc)
    assert gone(sleeper), "the child in its own session outlived its parent"
    assert proc not in processes.owned()


def test_an_adopted_group_is_ended_even_after_its_parent_died() -> None:
    proc = processes.spawn(["sh", "-c", SETSID_CHILD], stdout=subprocess.PIPE, text=True)
    sleeper = sleeper_of(proc)
    processes.adopt(sleeper, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the parent dies first: the sleeper is orphaned
    proc.wait(timeout=10)
    processes.end(proc)
    assert gone(sleeper), "the orphan outlived its test"


def test_a_process_that_ignores_sigterm_is_killed() -> None:
    proc = processes.spawn(
        ["sh", "-c", "trap '' TERM; echo ready; sleep 120"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    assert processes.end(proc, grace=0.5) == -signal.SIGKILL  # not the sleep's own end


def test_the_busy_loop_of_test_under_load_stops_when_the_command_fails() -> None:
    done = processes.run(
        [sys.executable, "-m", "tests.tools.busy", "--most", "60", "--", "sh", "-c", "exit 3"],
        text=True,
        timeout=30,
    )
    assert done.returncode == 3, done.stderr
    match = re.search(r"busy loop \(pid (\d+)\)", done.stderr)
    assert match, done.stderr
    assert gone(int(match.group(1))), "the busy loop outlived the command"
