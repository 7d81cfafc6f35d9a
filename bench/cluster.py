"""Cluster scenarios of ``make bench``: two hubs in cluster mode on one real nats-server node
(JetStream, store in a scratch folder), driven by the same C generator as the standalone
runs.  The generator's sockets are each connected to one hub, so a room can be split across
hubs: every line goes sender -> hub A -> JetStream -> hubs A and B -> receivers.

- paced 1,000 lines/s into a room of 10 split 5/5 (loss, latency on both hubs together);
- saturated: one sender on hub A, ten receivers on hub B (lines/s through the cluster for one
  room, and hub B's CPU per delivery of a line that came through NATS).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import clients, procs
from bench.procs import HUB, Relay, Running

NATS_SERVER = Path(sys.executable).parent / "nats-server"
DURATION = 2.5
WARMUP = 0.5
WINDOW = 48
BODY = 100
PACED_RATE = 1000


@contextmanager
def nats_node() -> Iterator[str]:
    """One nats-server with JetStream in a scratch folder: its URL; killed and removed after."""
    store = Path(tempfile.mkdtemp(prefix="roomcast-bench-nats-"))
    port, monitor = procs.free_port(socket.SOCK_STREAM), procs.free_port(socket.SOCK_STREAM)
    argv = [
        str(NATS_SERVER),
        "-a",
        procs.LOOPBACK,
        "-p",
        str(port),
        "-m",
        str(monitor),
        "-js",
        "-sd",
        str(store),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://{procs.LOOPBACK}:{monitor}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("nats-server did not start for the cluster benchmark") from None
                time.sleep(0.05)
        yield f"nats://{procs.LOOPBACK}:{port}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        shutil.rmtree(store, ignore_errors=True)


def run(plan_mode: str, hubs: tuple[Running, Running], split: tuple[int, int], rate: float) -> dict[str, Any]:
    """A sender on hub A, ``split`` receivers on hubs A and B."""
    one, two = hubs
    room = f"c{plan_mode}"
    sender, *on_one = clients.open_peers(split[0] + 1, one.address, room)
    on_two = clients.open_peers(split[1], two.address, room)
    receivers = [*on_one, *on_two]
    clients.register_envelope([sender, *receivers], f"{room}n")
    time.sleep(0.2)  # the joins of the other hub's members come in through NATS
    clients.acknowledge_joins([sender, *receivers])
    plan = [
        "proto env", f"duration {DURATION}", f"warmup {WARMUP}", f"rate {rate}", f"window {WINDOW}",
        f"size {BODY}", "poll 0", "next_id 2", sender.plan_line("sender"),
        *(r.plan_line("recv") for r in receivers),
    ]  # fmt: skip
    cpu = two.cpu_seconds()
    result = procs.generate(plan, [p.sock.fileno() for p in (sender, *receivers)], DURATION)
    per_two = result["received"] * split[1] / max(len(receivers), 1)
    result["cpu_us_per_delivery_b"] = (two.cpu_seconds() - cpu) * 1e6 / max(per_two, 1)
    clients.close_peers([sender, *receivers], envelope_bye=True)
    return result


def scenarios() -> dict[str, dict[str, Any]]:
    with nats_node() as url:
        hub = Relay(HUB.name, envelope=True, extra=("--nats", url))
        with procs.running(hub) as one, procs.running(hub) as two:
            return {
                "paced": run("paced", (one, two), (4, 5), PACED_RATE),
                "sat": run("sat", (one, two), (0, 10), 0.0),
            }


def render(results: dict[str, dict[str, Any]], standalone_cpu_us: float | None) -> str:
    paced, sat = results["paced"], results["sat"]
    ratio = sat["cpu_us_per_delivery_b"] / standalone_cpu_us if standalone_cpu_us else float("nan")
    return "\n".join([
        "## Cluster mode (2 hubs, 1 nats-server node, all on this machine)",
        "",
        "| scenario | figure |",
        "|---|---|",
        f"| paced {PACED_RATE:,} lines/s, room of 10 split 5/5 | loss {100 * paced['loss']:.2f}%, "
        f"p50 {paced['p50_us']:.0f} µs, p99 {paced['p99_us']:.0f} µs (goal: no loss, p99 ≤ 5 ms) |",
        f"| saturated, one room, sender on hub A, 10 receivers on hub B | {sat['messages_per_s']:,.0f} "
        f"lines/s, {sat['deliveries_per_s']:,.0f} deliveries/s (one publish in flight per room per hub, "
        "what queued meanwhile batched under one compare-and-set) |",
        f"| hub B CPU per delivery of a line that came through NATS | {sat['cpu_us_per_delivery_b']:.1f} µs "
        f"({ratio:.2f}× standalone; goal ≤ 1.5×) |",
        "",
        "Not measured yet: one room with senders on both hubs (the generator has one sender), 20 rooms "
        "together.",
        "",
    ])  # fmt: skip
