"""Start the real ``roomcast-hub`` as a subprocess on a free loopback port, wait until it answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from roomcast.shared import envelope, events, limits
from tests.tools import ports
from tests.tools.processes import BIN, end, spawn

LOOPBACK = "127.0.0.1"
__all__ = [
    "BIN",
    "LOOPBACK",
    "HubProcess",
    "free_udp_port",
    "monitor_json",
    "running_hub",
    "wait_until_answering",
]
#: No proxy, even if the environment names one: monitor requests are for loopback only.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_udp_port(host: str = LOOPBACK, kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    """A port on ``host`` free right now, for UDP and TCP both (``kind`` is kept for callers
    that name it); never one handed out before (tests.tools.ports)."""
    return ports.free_port(host)


def free_tcp_port(host: str = LOOPBACK) -> int:
    return ports.free_port(host)


def monitor_json(port: int, path: str) -> Any:
    """``GET path`` (``/varz``, ``/connz``) from a hub started with ``--monitor`` on ``port``."""
    with _OPENER.open(f"http://{LOOPBACK}:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


@attrs.define
class HubProcess:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def hub_arg(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the hub and wait for its exit status (killed after ``timeout``)."""
        return end(self.proc, sig, grace=timeout)


def wait_until_answering(
    host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll with a padded hello (no cookie): the hub answers with a challenge once it is up,
    even to an untrusted address, and keeps no state for it.  :class:`HubExited` at once if
    ``proc`` (the hub) ends first."""
    probe = envelope.encode(events.Hello(nick="probe", pad=bytes(limits.HELLO_PAD_TO)))
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise HubExited(
                    f"the hub on {host} port {port} exited with {proc.returncode} before answering"
                )
            sock.sendto(probe, (host, port))
            try:
                sock.recvfrom(2048)
                return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise TimeoutError(f"hub on {host} port {port} did not answer within {timeout} s")


class HubExited(AssertionError):
    """The hub process ended before it answered (its log says why)."""


#: Tries at a free port: another program (other tests, in parallel) may take the one picked
#: before the hub binds it.
PORT_TRIES = 3


def _start_hub(tmp_path: Path, args: Sequence[str], host: str, port: int | None, bin_dir: Path) -> HubProcess:
    for attempt in range(PORT_TRIES):
        chosen = port or free_udp_port(host)
        log_path = tmp_path / f"hub-{chosen}-{time.monotonic_ns()}.log"
        with log_path.open("wb") as log_file:
            # The test decides every option: none may leak in from the developer's shell.
            proc = spawn(
                [str(bin_dir / "roomcast-hub"), "--host", host, "--port", str(chosen), "--log-level", "DEBUG", *args],
                stdout=log_file, stderr=subprocess.STDOUT,
            )  # fmt: skip
        hub = HubProcess(proc, host, chosen, log_path)
        try:
            wait_until_answering(host, chosen, proc=proc)
            return hub
        except HubExited as exc:
            end(proc)
            taken = f"port {chosen}: Address already in use" in hub.log()
            if port is None and taken and attempt + 1 < PORT_TRIES:
                continue  # the port was taken meanwhile: pick another
            raise HubExited(f"{exc}:\n{hub.log()[-2000:]}") from None
        except BaseException:
            end(proc)
            raise
    raise AssertionError("unreachable")


@contextmanager
def running_hub(
    tmp_path: Path, *args: str, host: str = LOOPBACK, port: int | None = None, bin_dir: Path = BIN
) -> Iterator[HubProcess]:
    """A hub subprocess for the duration of the block; stopped with SIGTERM at the end.
    ``bin_dir`` is where ``roomcast-hub`` is taken from (another venv, say)."""
    hub = _start_hub(tmp_path, args, host, port, bin_dir)
    try:
        yield hub
    finally:
        end(hub.proc, signal.SIGTERM, grace=10.0)
