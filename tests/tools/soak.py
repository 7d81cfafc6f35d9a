"""``make soak``: the lossy-network scenario at a larger size, then a junk flood, with figures;
then the same scenario on a cluster (``tests.tools.soakcluster``: hubs on nats-server).

Not part of ``make test``.  Prints messages sent / shown / duplicated / out of order per
receiver, the hub's ``too slow`` departures, junk datagrams handled, the hub's RSS before and
after, and the amplification ratio towards unvalidated addresses.  Everything runs on loopback
and the whole soak is bounded (``--timeout``): a receiver that is stuck makes it fail loudly,
with the table so far, instead of waiting.  It exits 1 unless every receiver showed every
line once, in order, and no receiver was dropped as too slow.

    python -m tests.tools.soak [--senders 5] [--receivers 5] [--messages 5000] [--junk-seconds 30]
                               [--scenario all|standalone|cluster] [--cluster-messages 2000] ...
"""

from __future__ import annotations

import argparse
import itertools
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from tests.tools import junk
from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, HubProcess, running_hub
from tests.tools.lossy import running_proxy
from tests.tools.processes import run

TOO_SLOW = "dropped from its rooms (too slow)"


def rss_kib(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else -1


def hub_stats(hub_arg: str) -> str:
    done = run([str(BIN / "roomcast"), "stats", "--hub", hub_arg], text=True, timeout=30)
    return str(done.stdout)


def table(receivers: list[PipedClient], senders: int, messages: int) -> tuple[str, bool]:
    """The per-receiver table, and whether every receiver is complete, in order, and shows the
    lines in one order (the room's: the same as r0's)."""
    rows = [
        "| receiver | sent | shown | of which caught up from history | duplicated | out of order | missing "
        "| same order as r0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    perfect = True
    first: list[str] | None = None
    for i, receiver in enumerate(receivers):
        # Lines marked (history) were caught up after the receiver rejoined (it fell a window
        # behind, or its session was lost): shown to the user all the same.
        lines = list(receiver.lines)
        shown = [line.split("> ", 1)[1] for line in lines if "> " in line]
        caught_up = sum(1 for line in lines if "> " in line and "(history)" in line)
        dup = len(shown) - len(set(shown))
        disorder = 0
        for s in range(senders):
            mine = [int(line.split()[1]) for line in shown if line.startswith(f"s{s} ")]
            disorder += sum(1 for a, b in itertools.pairwise(mine) if b <= a)
        missing = senders * messages - len(set(shown))
        first = shown if first is None else first
        same = shown == first
        perfect = perfect and dup == disorder == missing == 0 and same
        rows.append(
            f"| r{i} | {senders * messages} | {len(shown)} | {caught_up} | {dup} | {disorder} | {missing} "
            f"| {'yes' if same else 'NO'} |"
        )
    return "\n".join(rows), perfect


def lossy_scenario(
    tmp: Path, ports: list[int], shape: tuple[int, int, int], deadline: float, hubs: list[HubProcess]
) -> bool:
    """Run the scenario (``shape``: senders, receivers, messages each) until every receiver is
    complete, or ``deadline``, or a receiver was dropped as too slow (it cannot be complete any
    more); print the table.  With several hubs (``ports``, one each), receivers and senders are
    spread over them in turn, the senders starting one hub further on."""
    senders, count, messages = shape
    clients: list[PipedClient] = []
    receivers: list[PipedClient] = []

    def too_slow() -> bool:
        return any(TOO_SLOW in hub.log() for hub in hubs)

    try:
        receivers += [PipedClient(ports[i % len(ports)], f"r{i}", tmp, room="bulk") for i in range(count)]
        clients += receivers
        for receiver in receivers:
            receiver.wait_for(lambda r=receiver: "joined bulk" in r.err.read_text(), "the join", 30)
        procs = [PipedClient(ports[(i + 1) % len(ports)], f"s{i}", tmp, room="bulk") for i in range(senders)]
        clients += procs
        started = time.monotonic()
        for i, proc in enumerate(procs):
            proc.say(*(f"s{i} {n}" for n in range(messages)))
        for n, proc in enumerate(procs):
            code = proc.finish(timeout=max(1.0, deadline - time.monotonic()))
            print(f"  sender s{n} exited {code} after {time.monotonic() - started:.1f} s", flush=True)
        for receiver in receivers:
            receiver.wait_for(
                lambda r=receiver: r.shown >= senders * messages or too_slow(),
                "every line", timeout=max(1.0, deadline - time.monotonic()),
            )  # fmt: skip
            if too_slow():
                raise AssertionError("a receiver was dropped as too slow")
        complete = True
    except Exception as stuck:  # a timeout, a failed client: report what we have, loudly
        print(f"SOAK FAILED: {str(stuck)[:600]}", flush=True)
        complete = False
    finally:
        for client in clients:
            client.kill()
    where = f" on {len(hubs)} hubs" if len(hubs) > 1 else ""
    print(f"lossy scenario{where}: {senders} senders x {messages} messages into a room of {senders + count}")
    rows, perfect = table(receivers, senders, messages)
    print(rows, flush=True)
    return complete and perfect


def junk_flood(hub: HubProcess, args: argparse.Namespace) -> bool:
    before = rss_kib(hub.proc.pid)
    print(f"junk flood: up to {args.junk_count} datagrams for {args.junk_seconds:.0f} s ...", flush=True)
    sent = junk.flood(hub.host, hub.port, args.junk_count, args.junk_seconds)
    alive = hub.proc.poll() is None
    after = rss_kib(hub.proc.pid) if alive else -1
    print(f"junk datagrams sent: {sent}; hub alive afterwards: {alive}")
    print(f"hub RSS before: {before / 1024:.1f} MiB, after: {after / 1024:.1f} MiB")
    print("hub stats (the flood came from untrusted 127.0.0.1, so the 3x rule applied):")
    print("  " + hub_stats(hub.hub_arg).replace("\n", "\n  "), flush=True)
    return alive


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so every finally runs and the clients are ended


def standalone(args: argparse.Namespace) -> bool:
    deadline = time.monotonic() + args.timeout
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with running_hub(tmp, "--flood-rate", args.flood_rate, "--trust", "::1/128") as hub:
            with running_proxy(hub.port, lifetime=args.timeout + 60) as port:
                shape = (args.senders, args.receivers, args.messages)
                ok = lossy_scenario(tmp, [port], shape, deadline, [hub])
            too_slow = hub.log().count(TOO_SLOW)
            print(f"too slow departures: {too_slow}", flush=True)
            alive = junk_flood(hub, args)
    return ok and alive and too_slow == 0


def main() -> None:
    from tests.tools import soakcluster  # imports this module

    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--receivers", type=int, default=5)
    parser.add_argument("--messages", type=int, default=5000)
    # 60 lines/s per sender: ten Python clients, the proxy and the hub share the machine.
    parser.add_argument("--flood-rate", default="60")
    parser.add_argument("--junk-seconds", type=float, default=30.0)
    parser.add_argument("--junk-count", type=int, default=2_000_000)
    parser.add_argument("--timeout", type=float, default=900.0, help="bound on the lossy scenario (s)")
    parser.add_argument("--scenario", choices=("all", "standalone", "cluster"), default="all")
    soakcluster.add_arguments(parser)
    args = parser.parse_args()
    ok = True
    if args.scenario in ("all", "standalone"):
        ok = standalone(args)
    if args.scenario in ("all", "cluster"):
        ok = soakcluster.cluster(args) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
