"""A long-lived piped ``roomcast`` process for end-to-end tests."""

from __future__ import annotations

import contextlib
import fcntl
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.tools.hubproc import BIN, LOOPBACK
from tests.tools.processes import end, spawn

#: fcntl.F_SETPIPE_SZ (Linux; named in the fcntl module from Python 3.10 on some builds only).
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1024 * 1024
#: The smallest pipe Linux gives: one page.
PAUSED_PIPE_SIZE = 4096


class PipedClient:
    """A long-lived piped ``roomcast``: lines in on stdin, room lines out on stdout."""

    def __init__(
        self,
        port: int,
        nick: str,
        tmp: Path,
        room: str = "ops",
        extra: Sequence[str] = (),
        bin_dir: Path = BIN,
        paused: bool = False,
    ) -> None:
        """With ``paused``, nothing reads the client's stdout (a one-page pipe) until
        :meth:`start_reading`: a consumer that stops reading for a while."""
        self.err = tmp / f"{nick}.err"
        with self.err.open("w") as err:
            self.proc = spawn(
                [str(bin_dir / "roomcast"), "--hub", f"{LOOPBACK}:{port}", "--nick", nick, "--room", room, *extra],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        # A roomy pipe: a test reading late for a moment (a busy machine) must not block the
        # client's writes, and with them its acks.
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.proc.stdout.fileno(), F_SETPIPE_SZ, PAUSED_PIPE_SIZE if paused else PIPE_SIZE)
        self.lines: list[str] = []
        #: Room lines shown so far (cheap to poll, unlike :meth:`bodies`).
        self.shown = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        if not paused:
            self._reader.start()

    def start_reading(self) -> None:
        """Read the client's stdout from now on (see ``paused``)."""
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.shown += "> " in line

    def say(self, *lines: str) -> None:
        """Type ``lines`` (each ends with a newline) into the client's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}; stdout={self.lines[-5:]}, stderr={self.err.read_text()}"
        )

    def bodies(self) -> list[str]:
        return [line.split("> ", 1)[1] for line in self.lines if "> " in line]

    def finish(self, timeout: float = 30.0) -> int:
        """Close stdin (end of input) and return the exit status; killed if it takes longer
        than ``timeout``."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        return code

    def kill(self) -> None:
        """Stop the process if it still runs, and close its pipes (no ResourceWarning)."""
        end(self.proc, signal.SIGKILL, readers=[self._reader] if self._reader.ident is not None else [])
