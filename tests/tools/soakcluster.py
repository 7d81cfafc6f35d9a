"""``make soak``, cluster part: the lossy scenario on hubs in cluster mode.

Hubs (``--cluster-hubs``, 2) on nats-server (``--nats-nodes``: 1, or a JetStream cluster of 3),
each behind its own lossy proxy; receivers and senders spread over the hubs in turn, the
senders one hub further on, so every line crosses NATS to most receivers.  Every receiver must
show every line once, in each sender's order, and all in one order (the room's), with no
``too slow`` departure; the whole part is bounded (``--cluster-timeout``).  Prints the same
table as the standalone part, and each hub's cluster figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from tests.tools.lossy import running_proxy
from tests.tools.natsproc import cluster_hubs, nats_nodes
from tests.tools.soak import TOO_SLOW, hub_stats, lossy_scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-hubs", type=int, default=2)
    parser.add_argument("--nats-nodes", type=int, choices=(1, 3), default=1)
    parser.add_argument("--cluster-senders", type=int, default=4)
    parser.add_argument("--cluster-receivers", type=int, default=4)
    parser.add_argument("--cluster-messages", type=int, default=5000)
    parser.add_argument("--cluster-timeout", type=float, default=600.0, help="bound on the cluster part (s)")


def cluster(args: argparse.Namespace) -> bool:
    """Run the cluster part; print its table and figures; True when it held."""
    deadline = time.monotonic() + args.cluster_timeout
    print(f"cluster: {args.cluster_hubs} hubs on {args.nats_nodes} nats-server node(s) ...", flush=True)
    shape = (args.cluster_senders, args.cluster_receivers, args.cluster_messages)
    with tempfile.TemporaryDirectory() as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        nodes = stack.enter_context(nats_nodes(tmp, args.nats_nodes))
        urls = ",".join(node.url for node in nodes)
        hubs = stack.enter_context(
            cluster_hubs(tmp, urls, args.cluster_hubs, "--flood-rate", args.flood_rate, "--trust", "::1/128")
        )
        ports = [
            stack.enter_context(running_proxy(hub.port, seed=11 + n, lifetime=args.cluster_timeout + 60))
            for n, hub in enumerate(hubs)
        ]
        ok = lossy_scenario(tmp, ports, shape, deadline, hubs)
        too_slow = sum(hub.log().count(TOO_SLOW) for hub in hubs)
        print(f"too slow departures: {too_slow}", flush=True)
        for n, hub in enumerate(hubs):
            figures = [line for line in hub_stats(hub.hub_arg).splitlines() if "cluster" in line]
            print(f"hub {n}: " + "; ".join(figures), flush=True)
        alive = all(hub.proc.poll() is None for hub in hubs)
    return ok and alive and too_slow == 0
