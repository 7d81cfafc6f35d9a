"""Start the real ``roomcast-hub`` as a subprocess on a free loopback port, wait until it answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from roomcast.shared import envelope, events, limits

LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent


def free_udp_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def wait_until_answering(host: str, port: int, timeout: float = 10.0) -> None:
    """Poll with a padded hello (no cookie): the hub answers with a challenge once it is up,
    even to an untrusted address, and keeps no state for it."""
    probe = envelope.encode(events.Hello(nick="probe", pad=bytes(limits.HELLO_PAD_TO)))
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            sock.sendto(probe, (host, port))
            try:
                sock.recvfrom(2048)
                return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise TimeoutError(f"hub on {host} port {port} did not answer within {timeout} s")


@contextmanager
def running_hub(
    tmp_path: Path, *args: str, host: str = LOOPBACK, port: int | None = None, bin_dir: Path = BIN
) -> Iterator[HubProcess]:
    """A hub subprocess for the duration of the block; stopped with SIGTERM at the end.
    ``bin_dir`` is where ``roomcast-hub`` is taken from (another venv, say)."""
    port = port or free_udp_port(host)
    log_path = tmp_path / f"hub-{port}-{time.monotonic_ns()}.log"
    # The test decides every option: none may leak in from the developer's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMCAST_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                str(bin_dir / "roomcast-hub"),
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                "DEBUG",
                *args,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    hub = HubProcess(proc, host, port, log_path)
    try:
        wait_until_answering(host, port)
        yield hub
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
