"""``make soak``: the lossy-network scenario at a larger size, then a junk flood, with figures.

Not part of ``make test``.  Prints messages sent / shown / duplicated / out of order per
receiver, junk datagrams handled, the hub's RSS before and after, and the amplification
ratio towards unvalidated addresses.  Everything runs on loopback and stops by itself.

    python -m tests.tools.soak [--senders 5] [--receivers 5] [--messages 5000] [--junk-seconds 30]
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.test_reliability import Reader, lossy_proxy, roomcast
from tests.tools import junk
from tests.tools.hubproc import BIN, running_hub


def rss_kib(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else -1


def hub_stats(hub_arg: str) -> str:
    done = subprocess.run(
        [str(BIN / "roomcast"), "stats", "--hub", hub_arg], capture_output=True, text=True, timeout=30
    )
    return done.stdout


def lossy_scenario(tmp: Path, port: int, senders: int, receivers: int, messages: int) -> None:
    logs = [tmp / f"r{i}.err" for i in range(receivers)]
    readers = [Reader(roomcast(port, f"r{i}", log)) for i, log in enumerate(logs)]
    time.sleep(2.0)
    procs = [roomcast(port, f"s{i}", tmp / f"s{i}.err", stdout=tmp / f"s{i}.out") for i in range(senders)]
    started = time.monotonic()
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        proc.stdin.write("".join(f"s{i} {n}\n" for n in range(messages)))
        proc.stdin.close()
    for n, proc in enumerate(procs):
        print(
            f"  sender s{n} exited {proc.wait(timeout=900)} after {time.monotonic() - started:.1f} s",
            flush=True,
        )
    for reader in readers:
        reader.wait_for(senders * messages, timeout=120)
        assert reader.proc.stdin is not None
        reader.proc.stdin.close()
        reader.proc.wait(timeout=60)
        reader.close()
    print(f"lossy scenario: {senders} senders x {messages} messages into a room of {senders + receivers}")
    print(
        "| receiver | sent | shown | of which caught up from history | duplicated | out of order | missing |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, reader in enumerate(readers):
        # Lines marked (history) were caught up after the receiver rejoined (it fell a window
        # behind, or its session was lost): shown to the user all the same.
        shown = [line.split("> ", 1)[1] for line in reader.lines if "> " in line]
        caught_up = sum(1 for line in reader.lines if "> " in line and "(history)" in line)
        dup = len(shown) - len(set(shown))
        disorder = 0
        for s in range(senders):
            mine = [int(line.split()[1]) for line in shown if line.startswith(f"s{s} ")]
            disorder += sum(1 for a, b in itertools.pairwise(mine) if b <= a)
        missing = senders * messages - len(set(shown))
        print(
            f"| r{i} | {senders * messages} | {len(shown)} | {caught_up} | {dup} | {disorder} | {missing} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--receivers", type=int, default=5)
    parser.add_argument("--messages", type=int, default=5000)
    # 60 lines/s per sender: ten Python clients, the proxy and the hub share the machine;
    # faster senders make receivers fall a window behind and be dropped (the table shows it).
    parser.add_argument("--flood-rate", default="60")
    parser.add_argument("--junk-seconds", type=float, default=30.0)
    parser.add_argument("--junk-count", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with running_hub(tmp, "--flood-rate", args.flood_rate, "--trust", "::1/128") as hub:
            before = rss_kib(hub.proc.pid)
            with lossy_proxy(hub.port) as port:
                lossy_scenario(tmp, port, args.senders, args.receivers, args.messages)
            print(
                f"junk flood: up to {args.junk_count} datagrams for {args.junk_seconds:.0f} s ...", flush=True
            )
            sent = junk.flood(hub.host, hub.port, args.junk_count, args.junk_seconds)
            alive = hub.proc.poll() is None
            after = rss_kib(hub.proc.pid)
            print(f"junk datagrams sent: {sent}; hub alive afterwards: {alive}")
            print(f"hub RSS before: {before / 1024:.1f} MiB, after: {after / 1024:.1f} MiB")
            print("hub stats (the flood came from untrusted 127.0.0.1, so the 3x rule applied):")
            print("  " + hub_stats(hub.hub_arg).replace("\n", "\n  "))
    sys.exit(0 if alive else 1)


if __name__ == "__main__":
    main()
