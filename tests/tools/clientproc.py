"""A long-lived piped ``roomcast`` process for end-to-end tests."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.tools.hubproc import BIN, LOOPBACK


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
    ) -> None:
        self.err = tmp / f"{nick}.err"
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [str(bin_dir / "roomcast"), "--hub", f"{LOOPBACK}:{port}", "--nick", nick, "--room", room, *extra],
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

    def finish(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def kill(self) -> None:
        """Stop the process if it still runs, and close its pipes (no ResourceWarning)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
