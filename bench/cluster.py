"""Cluster scenarios of ``make bench``: two hubs in cluster mode on one real nats-server node
(JetStream, store in a scratch folder), driven by the same C generator as the standalone
runs.  The generator's sockets are each connected to one hub, so a room can be split across
hubs: every line goes sender -> its hub -> JetStream -> hubs A and B -> receivers.

- paced 1,000 lines/s into a room of 10 split 5/5 (loss, latency on both hubs together);
- saturated: one sender on hub A, ten receivers on hub B (lines/s through the cluster for one
  room, and hub B's CPU per delivery of a line that came through NATS);
- one room with a sender on each hub (both publish to the same room subject, so they contend
  for its compare-and-set), four receivers on each hub: lines/s carried end to end;
- 20 rooms at once, the senders alternately on hub A and hub B, one receiver on each hub.

Hub B's CPU per delivery of a line that came through NATS is set against a standalone hub
measured like for like, in the same run: started with the same options (but ``--nats``), not
pinned, the same generator plan (window, body, "idle 1", not pinned), its members all on it.
Saturated: a sender and 10 receivers, as hub B's 10 (the standalone hub also carries the
sender's says and their replies).  Paced: a sender and 5 receivers at the same 1,000 lines/s,
as hub B's 5 in the paced room.  The pinned, saturated room of 10 of the standalone table is
shown beside them: there the hub has a core to itself and runs flat out, so it batches more.

"Carried" counts what reached the receivers in the measured window: each sender's lines
received, divided by the members that receive them, summed over the senders.  Nothing is
pinned here and the generator sleeps between its sends ("idle 1"): two hubs, nats-server and
the generator share the machine's two cores as a small deployment would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs

from bench import clients, procs
from bench.procs import HUB, Relay, Running

NATS_SERVER = Path(sys.executable).parent / "nats-server"
DURATION = 2.5
WARMUP = 0.5
WINDOW = 48
BODY = 100
PACED_RATE = 1000
ROOMS = 20
#: Runs of each scenario, each on a fresh cluster; RESULTS.md shows the best (see scenarios).
REPEATS = 3
#: The goals of issue 12, item 10 (lines/s carried; paced p99 in µs).
GOAL_ONE_ROOM, GOAL_ROOMS, GOAL_P99_US = 2_000, 10_000, 5_000

Result = dict[str, Any]


@attrs.define
class NatsNode:
    url: str
    proc: subprocess.Popen[bytes]


@attrs.define
class Cluster:
    """The two hubs (each with its monitor, for the /varz cluster figures) and the node."""

    node: NatsNode
    hubs: tuple[Running, Running]
    monitors: tuple[int, int]

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far of hub A, hub B and nats-server."""
        return (self.hubs[0].cpu_seconds(), self.hubs[1].cpu_seconds(), _cpu_of(self.node.proc.pid))

    def conflicts(self) -> int:
        """Compare-and-set conflicts both hubs met so far (their /varz, one heartbeat late)."""
        total = 0
        for port in self.monitors:
            with urllib.request.urlopen(f"http://{procs.LOOPBACK}:{port}/varz", timeout=2) as answer:
                total += int(json.load(answer)["cluster"]["conflicts"])
        return total


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def nats_node() -> Iterator[NatsNode]:
    """One nats-server with JetStream in a scratch folder; killed and removed after."""
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
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=procs.on_cores(None)
    )
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
        yield NatsNode(f"nats://{procs.LOOPBACK}:{port}", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        shutil.rmtree(store, ignore_errors=True)


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A nats-server node and two hubs on it, none pinned (they share the machine's cores)."""
    with nats_node() as node, ExitStack() as stack:
        monitors = (procs.free_port(socket.SOCK_STREAM), procs.free_port(socket.SOCK_STREAM))
        hubs = tuple(
            stack.enter_context(procs.running(
                Relay(HUB.name, envelope=True, extra=("--nats", node.url, "--monitor", f"{procs.LOOPBACK}:{m}")),
                core=None,
            ))
            for m in monitors
        )  # fmt: skip
        yield Cluster(node, (hubs[0], hubs[1]), monitors)


@attrs.frozen
class Room:
    """One room of a scenario: its senders' hubs and its receivers on hubs A and B."""

    name: str
    senders: tuple[int, ...]
    receivers: tuple[int, int]


def _plan(senders: list[clients.Peer], receivers: list[clients.Peer], rate: float) -> list[str]:
    """The generator's plan: the same settings for the cluster and the standalone runs."""
    return [
        "proto env", f"duration {DURATION}", f"warmup {WARMUP}", f"rate {rate}", f"window {WINDOW}",
        f"size {BODY}", "poll 0", "idle 1", "next_id 2", *(s.plan_line("sender") for s in senders),
        *(r.plan_line("recv") for r in receivers),
    ]  # fmt: skip


def run(group: Cluster, rooms: list[Room], rate: float) -> Result:
    """Every room's members registered on their hubs, then one generator run for all."""
    senders: list[clients.Peer] = []
    receivers: list[clients.Peer] = []
    for room in rooms:
        senders += [clients.open_peers(1, group.hubs[hub].address, room.name)[0] for hub in room.senders]
        for hub, count in enumerate(room.receivers):
            receivers += clients.open_peers(count, group.hubs[hub].address, room.name)
    everyone = [*senders, *receivers]
    clients.register_envelope(everyone, "n")
    time.sleep(0.2)  # the joins of the other hub's members come in through NATS
    clients.acknowledge_joins(everyone)
    cpu, conflicts = group.cpu(), group.conflicts()
    result = procs.generate(
        _plan(senders, receivers, rate), [p.sock.fileno() for p in everyone], DURATION, core=None
    )
    time.sleep(1.2)  # the hubs' cluster figures follow a heartbeat late
    after = group.cpu()
    result["conflicts"] = group.conflicts() - conflicts
    lines = max(result["sent"] * (1 - result["loss"]), 1)
    result["cpu_us_per_line_hubs"] = (after[0] + after[1] - cpu[0] - cpu[1]) * 1e6 / lines
    result["cpu_us_per_line_nats"] = (after[2] - cpu[2]) * 1e6 / lines
    deliveries_b = result["received"] * sum(r.receivers[1] for r in rooms) / max(len(receivers), 1)
    result["cpu_us_per_delivery_b"] = (after[1] - cpu[1]) * 1e6 / max(deliveries_b, 1)
    clients.close_peers(everyone, envelope_bye=True)
    return result


def standalone(room: str, receivers: int, rate: float) -> Result:
    """The like-for-like standalone figure: a standalone hub started as the cluster hubs are
    (same options but ``--nats``, not pinned), a sender and ``receivers`` members in one room,
    the same generator plan (window, body, "idle 1", not pinned) at ``rate`` (0: saturated).
    Its CPU per delivery counts all its work, the sender's says and their replies included."""
    with procs.running(HUB, core=None) as hub:
        sender, *members = clients.open_peers(receivers + 1, hub.address, room)
        clients.register_envelope([sender, *members], "s")
        clients.acknowledge_joins([sender, *members])
        cpu = hub.cpu_seconds()
        result = procs.generate(
            _plan([sender], members, rate), [p.sock.fileno() for p in (sender, *members)], DURATION, core=None
        )
        result["cpu_us_per_delivery"] = (hub.cpu_seconds() - cpu) * 1e6 / max(result["received"], 1)
        clients.close_peers([sender, *members], envelope_bye=True)
    return result


def scenarios() -> dict[str, Result]:
    """Each scenario REPEATS times, each time on a fresh node and fresh hubs, and the best run
    (as bench.run.best_of does for the standalone relays: on a shared machine a run can lose
    its cores to other work for a while): paced, no loss first, then the lowest p99;
    saturated, the most lines carried."""
    runs: dict[str, list[Result]] = {}
    for _ in range(REPEATS):
        with cluster() as group:
            for key, value in _once(group).items():
                runs.setdefault(key, []).append(value)
    best = {key: max(found, key=lambda r: float(r["carried_per_s"])) for key, found in runs.items()}
    best["paced"] = min(runs["paced"], key=lambda r: (r["loss"] > 0, r["p99_us"]))
    return best


def _once(group: Cluster) -> dict[str, Result]:
    paced, sat = Room("cpaced", (0,), (4, 5)), Room("csat", (0,), (0, 10))
    results = {
        "paced": run(group, [paced], PACED_RATE),
        "sat": run(group, [sat], 0.0),
        "two": run(group, [Room("ctwo", (0, 1), (4, 4))], 0.0),
        "rooms": run(group, [Room(f"cr{i}", (i % 2,), (1, 1)) for i in range(ROOMS)], 0.0),
    }
    # Like for like, in the same run: each kept with its cluster run (the best one is shown).
    results["paced"]["standalone"] = standalone("spaced", paced.receivers[1], PACED_RATE)
    results["sat"]["standalone"] = standalone("ssat", sat.receivers[1], 0.0)
    return results


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(results: dict[str, Result], standalone_cpu_us: float | None) -> str:
    """The cluster's table; ``standalone_cpu_us``: the pinned, saturated room of 10 of the
    standalone table (shown beside the like-for-like figures)."""
    paced, sat, two, rooms = results["paced"], results["sat"], results["two"], results["rooms"]
    paced_ok = paced["loss"] == 0 and paced["p99_us"] <= GOAL_P99_US
    return "\n".join([
        "## Cluster mode (2 hubs, 1 nats-server node, all on this machine)",
        "",
        "Nothing pinned: the two hubs, nats-server and the generator (which sleeps between sends) share "
        f"the two cores; each figure is the best of {REPEATS} runs on fresh processes.  Lines/s carried: "
        "what reached the receivers in the measured window, per line (each sender's lines received ÷ the "
        "members that receive them).",
        "",
        "| scenario | figure | goal |",
        "|---|---|---|",
        f"| paced {PACED_RATE:,} lines/s, room of 10 split 5/5 | loss {100 * paced['loss']:.2f}%, "
        f"p50 {paced['p50_us']:.0f} µs, p99 {paced['p99_us']:.0f} µs | no loss, p99 ≤ 5 ms: {_met(paced_ok)} |",
        f"| saturated, one room, sender on hub A, 10 receivers on hub B | {sat['carried_per_s']:,.0f} "
        f"lines/s, {sat['deliveries_per_s']:,.0f} deliveries/s, loss {100 * sat['loss']:.2f}% | — |",
        f"| one room of 10, a sender on each hub (both contend for the room), 4 receivers on each | "
        f"{two['carried_per_s']:,.0f} lines/s (slower sender {two['slowest_sender_per_s']:,.0f}), loss "
        f"{100 * two['loss']:.2f}%, {two['conflicts']} compare-and-set conflicts | ≥ {GOAL_ONE_ROOM:,} "
        f"lines/s: {_met(two['carried_per_s'] >= GOAL_ONE_ROOM and two['loss'] == 0)} |",
        f"| {ROOMS} rooms at once, senders alternately on hub A and B, a receiver on each hub | "
        f"{rooms['carried_per_s']:,.0f} lines/s (slowest room {rooms['slowest_sender_per_s']:,.0f}), loss "
        f"{100 * rooms['loss']:.2f}% | ≥ {GOAL_ROOMS:,} lines/s: "
        f"{_met(rooms['carried_per_s'] >= GOAL_ROOMS and rooms['loss'] == 0)} |",
        f"| CPU per line carried, both hubs / nats-server: one room, two senders; {ROOMS} rooms | "
        f"{two['cpu_us_per_line_hubs']:.0f} / {two['cpu_us_per_line_nats']:.0f} µs; "
        f"{rooms['cpu_us_per_line_hubs']:.0f} / {rooms['cpu_us_per_line_nats']:.0f} µs | — |",
        *_cost_rows(sat, paced, standalone_cpu_us),
        "",
    ])  # fmt: skip


def _cost_rows(sat: Result, paced: Result, pinned_us: float | None) -> list[str]:
    """Hub B's CPU per delivery of a line that came through NATS against a standalone hub's:
    like for like (same run, options, plan and generator, not pinned), and the pinned figure."""
    through, alone = sat["cpu_us_per_delivery_b"], sat["standalone"]["cpu_us_per_delivery"]
    ratio = through / alone if alone else float("nan")
    paced_through, paced_alone = paced["cpu_us_per_delivery_b"], paced["standalone"]["cpu_us_per_delivery"]
    pinned = (
        f"{through / pinned_us:.2f}× the pinned figure ({pinned_us:.1f} µs, standalone table, room of 10)"
    )
    return [
        f"| hub B CPU per delivery of a line that came through NATS, saturated (10 receivers on B), "
        f"against a standalone hub in the same run with the same plan, not pinned (a sender and 10 receivers "
        f"on it, {sat['standalone']['carried_per_s']:,.0f} lines/s) | {through:.1f} µs against {alone:.1f} µs: "
        f"{ratio:.2f}×; {pinned if pinned_us else 'no pinned figure'} | ≤ 1.5×: {_met(ratio <= 1.5)} |",
        f"| the same, paced {PACED_RATE:,} lines/s (5 receivers on B; standalone: a sender and 5 receivers) | "
        f"{paced_through:.1f} µs against {paced_alone:.1f} µs: {paced_through / paced_alone:.2f}× | — |",
    ]
