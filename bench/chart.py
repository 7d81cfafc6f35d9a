"""The benchmark's chart: deliveries/s against room size, the hub and each baseline, as a PNG.

matplotlib is a bench-only extra (``pip install -e '.[bench]'``, done by ``make bench``);
without it the table is still written and the chart is skipped with a note.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.procs import BASELINES, C_RELAY, HUB

Result = dict[str, Any]


def draw(by_relay: dict[str, dict[str, Result]], text: dict[str, Result], path: Path) -> bool:
    """Write the chart to ``path``; False (with a note on stderr) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no matplotlib, so no chart; `pip install -e '.[bench]'` adds it", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for relay in (HUB, *BASELINES, C_RELAY):
        sizes = sorted(int(k[3:]) for k in by_relay[relay.name] if k.startswith("sat"))
        rates = [by_relay[relay.name][f"sat{n}"]["deliveries_per_s"] / 1000 for n in sizes]
        style = {"linewidth": 2.6, "color": "black"} if relay is HUB else {"linewidth": 1.4}
        label = f"{relay.name} (envelope clients, acks)" if relay is HUB else relay.name
        ax.plot(sizes, rates, marker="o", label=label, **style)
    live = sorted((int(k[4:]), r["deliveries_per_s"] / 1000) for k, r in text.items() if k.startswith("live"))
    if live:
        ax.plot(
            *zip(*live, strict=True),
            marker="s",
            linestyle="--",
            color="black",
            label="roomcast hub (text, /live on)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("members in the room (receivers)")
    ax.set_ylabel("deliveries per second (thousands)")
    ax.set_title("Saturated fan-out on loopback, same generator and cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
