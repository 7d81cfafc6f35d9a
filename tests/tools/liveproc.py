"""Run a program as a subprocess with piped stdin and watch its stdout and stderr as they come.

End-to-end tests keep ``roomcast`` clients, netcat-style clients and hubs running while other
processes talk: :class:`LiveProcess` writes lines to the program's stdin and waits, bounded by a
timeout, until a regular expression matches what it printed so far.  Two reader threads copy
each stream into a buffer (raw chunks, so output without newlines, as netcat prints it, is seen
at once).  :func:`live_process` always ends the program and its threads, even when a test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from tests.tools.processes import BIN, REPO, clean_env, end, spawn

__all__ = ["BIN", "REPO", "LiveProcess", "clean_env", "live_process"]


class LiveProcess:
    """A running program whose output can be awaited, piece by piece."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None):
        self.argv = list(argv)
        self.proc = spawn(
            self.argv,
            env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd or REPO,
        )
        self._cond = threading.Condition()
        self._buffers = {"out": "", "err": ""}
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[bytes] | None) -> None:
        assert stream is not None
        raw = b""
        while chunk := os.read(stream.fileno(), 65536):
            raw += chunk
            with self._cond:
                self._buffers[name] = raw.decode("utf-8", "replace")
                self._cond.notify_all()

    # --- output ----------------------------------------------------------------------------------

    @property
    def out(self) -> str:
        with self._cond:
            return self._buffers["out"]

    @property
    def err(self) -> str:
        with self._cond:
            return self._buffers["err"]

    def lines(self, stream: str = "out") -> list[str]:
        with self._cond:
            return self._buffers[stream].splitlines()

    def wait_for(
        self, pattern: str, stream: str = "out", timeout: float = 15.0, start: int = 0
    ) -> re.Match[str]:
        """The first match of ``pattern`` (a regex, MULTILINE) in ``stream`` ("out" or "err")
        after character ``start``; AssertionError with everything printed if none in time."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                match = regex.search(self._buffers[stream], start)
                if match is not None:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or (
                    self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)
                ):
                    break
                self._cond.wait(min(left, 0.1))
        raise AssertionError(
            f"{self.argv[:3]}: no {pattern!r} on std{stream} within {timeout} s\n"
            f"stdout:\n{self.out}\nstderr:\n{self.err}\nexit: {self.proc.poll()}"
        )

    # --- input and ending ------------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Write one line (a newline is added) to the program's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with suppress(BrokenPipeError):
                self.proc.stdin.close()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        """The exit status, once the program and both readers are done (bounded)."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=2.0)
        return code

    def finish(self, timeout: float = 15.0) -> int:
        """Close stdin (end of input) and wait for the exit status."""
        self.close_stdin()
        return self.wait(timeout)

    def cleanup(self) -> None:
        """End the program (and its process group) whatever its state, and release its pipes."""
        self.close_stdin()
        end(self.proc, grace=3.0, readers=self._readers)


@contextmanager
def live_process(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[LiveProcess]:
    process = LiveProcess(argv, env, cwd)
    try:
        yield process
    finally:
        process.cleanup()


def roomcast_argv(hub: str, nick: str, *rooms: str, extra: Sequence[str] = ()) -> list[str]:
    """``roomcast --hub HUB --nick NICK --room R...`` with the venv's console script."""
    argv = [str(BIN / "roomcast"), "--hub", hub, "--nick", nick]
    for room in rooms:
        argv += ["--room", room]
    return [*argv, *extra]


@contextmanager
def roomcast_client(hub: str, nick: str, *rooms: str, joined: bool = True) -> Iterator[LiveProcess]:
    """A long-lived piped ``roomcast`` client; with ``joined`` waits until its last room is joined."""
    with live_process(roomcast_argv(hub, nick, *rooms)) as client:
        if joined:
            last = rooms[-1] if rooms else "lobby"
            client.wait_for(rf"^\d\d:\d\d -- joined {re.escape(last)} \(\d+ members?\)$", "err")
        yield client


#: The real netcat, when the machine has one (Debian: netcat-openbsd).
REAL_NC = shutil.which("nc")


@contextmanager
def netcat_client(host: str, port: int, lifetime: float = 30.0, real: bool = False) -> Iterator[LiveProcess]:
    """``nc -u HOST PORT`` itself (``real``), or ``python -m tests.tools.netcat HOST PORT``,
    the stand-in that behaves like it (for machines without nc)."""
    if real:
        assert REAL_NC is not None, "no nc on this machine"
        argv = [REAL_NC, "-u", host, str(port)]
    else:
        argv = [sys.executable, "-m", "tests.tools.netcat", host, str(port), "--lifetime", str(lifetime)]
    with live_process(argv) as client:
        yield client
