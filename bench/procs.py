"""The processes of a benchmark run: relays (the hub or a baseline) and the C generator.

The relay is pinned to core 0 and the generator (and this process) to core 1 when the machine
has two cores, so they never compete for one.  Everything binds 127.0.0.1 and is bounded in
time: relays get ``--seconds``, the hub is stopped with SIGTERM, the generator stops itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from roomcast.shared import envelope, events, limits

ROOT = Path(__file__).resolve().parents[1]
LOADGEN = ROOT / "bench" / "build" / "loadgen"
LOOPBACK = "127.0.0.1"
#: The cores this run may use, read before anything is pinned: the first for the relay, the
#: second for the generator (and this process).
CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
RELAY_CORE, LOAD_CORE = (CORES[0], CORES[1]) if len(CORES) >= 2 else (0, 0)
#: The longest a baseline relay lives: longer than any scenario, short enough to clean up.
RELAY_SECONDS = 60


@attrs.frozen
class Relay:
    """A program that fans out: ``name`` as shown in the table, and how to start it."""

    name: str
    module: str = ""
    envelope: bool = False
    #: More hub options (cluster mode: ``--nats URL``).
    extra: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        if self.name == "C relay":
            return [str(LOADGEN), "relay", str(port), str(RELAY_SECONDS)]
        if self.envelope:
            # Every benchmark client comes from 127.0.0.1: a room of 1,000 or 10,000 idle
            # sessions needs far more than the default 64 sessions per address.
            return [sys.executable, "-m", "roomcast.hub", "--host", LOOPBACK, "--port", str(port),
                    "--flood-rate", "0", "--idle-timeout", "600", "--drain-seconds", "0.2",
                    "--max-clients-per-host", "1000000", "--log-level", "WARNING", *self.extra]  # fmt: skip
        return [sys.executable, "-m", self.module, "--port", str(port), "--seconds", str(RELAY_SECONDS)]


HUB = Relay("roomcast hub", envelope=True)
TEXTBOOK = Relay("textbook", "bench.baselines.textbook")
NONBLOCKING = Relay("non-blocking", "bench.baselines.nonblocking")
TRIO = Relay("naive trio", "bench.baselines.trio_naive")
C_RELAY = Relay("C relay")
BASELINES = (TEXTBOOK, NONBLOCKING, TRIO)


def pinning() -> bool:
    return len(CORES) >= 2


def pin(pid: int, core: int) -> None:
    if pinning():
        os.sched_setaffinity(pid, {core})


def on_cores(core: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that runs the child on ``core``, or on every core of the run when None
    (this process itself may be pinned, and a child inherits that)."""
    if not pinning():
        return None
    cores = set(CORES) if core is None else {core}
    return lambda: os.sched_setaffinity(0, cores)


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@attrs.define
class Running:
    relay: Relay
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the relay so far (from /proc)."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU time of the relay so far (from /proc): its own code, and the
        kernel's work for it (on loopback, the receivers' side of each datagram included)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextmanager
def running(relay: Relay, core: int | None = RELAY_CORE) -> Iterator[Running]:
    """``relay`` started on a free port and answering, pinned to ``core`` (None: not pinned)."""
    port = free_port()
    # Every option is the benchmark's: none may leak in from the shell (ROOMCAST_MONITOR, ...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMCAST_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        relay.argv(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, preexec_fn=on_cores(core)
    )
    try:
        _wait_until_answering(relay, port)
        yield Running(relay, proc, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_answering(relay: Relay, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        sock.connect((LOOPBACK, port))
        while time.monotonic() < deadline:
            try:
                if relay.envelope:
                    sock.send(envelope.encode(events.Hello(nick="probe", pad=bytes(limits.HELLO_PAD_TO))))
                else:
                    sock.send(b"JOIN probe")
                    sock.send(b"MSG probe ready")
                sock.recv(2048)
                return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise TimeoutError(f"{relay.name} did not answer on port {port} within {timeout} s")


def generate(
    plan: Sequence[str], fds: Sequence[int], duration: float, core: int | None = LOAD_CORE
) -> dict[str, Any]:
    """Run the C generator with ``plan`` on its stdin and the sockets ``fds``, pinned to
    ``core`` (None: wherever the scheduler puts it); its JSON result."""
    proc = subprocess.Popen(
        [str(LOADGEN), "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=tuple(fds),
        preexec_fn=on_cores(core),
    )
    out, _ = proc.communicate("\n".join(plan).encode() + b"\n", timeout=duration + 20)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result
