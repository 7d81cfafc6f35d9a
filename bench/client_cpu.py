"""``make bench``, client scenario: CPU a receiving ``roomcast`` spends per room line.

A real hub (``--flood-rate 0``), one receiving ``roomcast`` and one piped ``roomcast`` sender
saying N lines as fast as the hub takes them, all on loopback.  The receiver's CPU (user +
system, from ``/proc/PID/stat``) is read once it has joined and again once it has shown the
last line; the difference over N is its CPU per received line.  Twice: piped (stdout a pipe
read by this process) and in the terminal UI (stdin and stdout a pseudo-terminal).  Writes its
section of ``bench/RESULTS.md`` (replacing an older one).

    python -m bench.client_cpu [--lines 20000] [--tty-lines 5000]
"""

from __future__ import annotations

import argparse
import os
import pty
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.tools.hubproc import BIN, LOOPBACK, running_hub
from tests.tools.processes import end, spawn

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Receiving client: CPU per room line"
TARGET_US = 40.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Output:
    """Everything a file descriptor gives, collected on a thread."""

    def __init__(self, fd: int) -> None:
        self.fd, self.data, self.lock = fd, bytearray(), threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def has(self, needle: bytes) -> bool:
        with self.lock:
            return needle in self.data


def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def measure(hub_arg: str, lines: int, tty: bool, tmp: Path) -> tuple[float, float]:
    """Receiver CPU per line, in µs, for ``lines`` lines from one sender; and the lines a
    second it received them at (what a second costs, frames and wake-ups, falls on fewer lines
    when they come slower, as on a busy machine)."""
    argv = [str(BIN / "roomcast"), "--hub", hub_arg, "--nick", "receiver", "--room", "bench"]
    errpath = tmp / f"receiver-{tty}.err"
    err = errpath.open("wb")
    if tty:
        master, slave = pty.openpty()
        receiver = spawn(
            argv, {"TERM": "xterm-256color", "NO_COLOR": "1"}, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        output = Output(master)
    else:
        receiver = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        assert receiver.stdout is not None
        master, output = -1, Output(receiver.stdout.fileno())
    sender = None
    try:
        notices = output.has if tty else lambda needle: needle in errpath.read_bytes()
        wait_until(lambda: notices(b"joined bench"), "the join", 30)
        before, started = cpu_seconds(receiver.pid), time.monotonic()
        sender = spawn(
            [str(BIN / "roomcast"), "--hub", hub_arg, "--nick", "sender", "--room", "bench"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert sender.stdin is not None
        sender.stdin.write("".join(f"line {n}\n" for n in range(lines)).encode())
        sender.stdin.close()
        wait_until(lambda: output.has(f"line {lines - 1}".encode()), "the last line", 300)
        cpu, wall = cpu_seconds(receiver.pid) - before, time.monotonic() - started
        return cpu * 1e6 / lines, lines / wall
    finally:
        for proc in (sender, receiver):
            if proc is not None:
                end(proc, signal.SIGTERM)
        if master >= 0:
            os.close(master)
        err.close()


def section(piped: tuple[float, float], tty: tuple[float, float], lines: int, tty_lines: int) -> str:
    def row(mode: str, count: int, result: tuple[float, float]) -> str:
        value, rate = result
        verdict = "met" if value <= TARGET_US else "NOT met"
        return f"| {mode} | {count} | {rate:,.0f} | {value:.1f} µs | {verdict} |\n"

    return (
        f"{HEADING}\n\n"
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; one sender (`roomcast` piped, hub "
        f"`--flood-rate 0`), one receiver; CPU from `/proc/PID/stat` between its join and its last line; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a busy machine makes each line dearer: "
        "fewer lines per wake-up, colder caches, and slower lines: what a second costs, the terminal's "
        "frames and the wake-ups, falls on fewer of them).  Before issue 10: 182 µs piped, 92 µs terminal UI.\n\n"
        "| mode | lines | lines/s received | CPU per received line | target ≤ 40 µs |\n|---|---|---|---|---|\n"
        + row("piped (stdout a pipe)", lines, piped)
        + row("terminal UI (a pseudo-terminal)", tty_lines, tty)
    )


def write_results(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else ""
    if HEADING in old:
        head, _, rest = old.partition(HEADING)
        tail = rest.split("\n## ", 1)
        old = head.rstrip("\n") + ("\n\n## " + tail[1] if len(tail) > 1 else "")
    RESULTS.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--tty-lines", type=int, default=5_000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir, running_hub(Path(tmpdir), "--flood-rate", "0") as hub:
        assert hub.host == LOOPBACK
        piped = measure(hub.hub_arg, args.lines, tty=False, tmp=Path(tmpdir))
        tty = measure(hub.hub_arg, args.tty_lines, tty=True, tmp=Path(tmpdir))
    text = section(piped, tty, args.lines, args.tty_lines)
    print(text)
    if not args.no_write:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
