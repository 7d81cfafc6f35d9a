"""The benchmark's markdown: the machine, one row per scenario with ratios, and the targets."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.procs import BASELINES, C_RELAY, HUB, ROOT, pinning
from roomcast.shared import limits

Result = dict[str, Any]
HUB_NAME = HUB.name
COLUMNS = (HUB_NAME, *(b.name for b in BASELINES), C_RELAY.name)


def machine() -> str:
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    u = platform.uname()
    return f"{u.system} {u.release} {u.machine}; {model}; {os.cpu_count()} cores"


def commit() -> str:
    """The commit the figures were measured on, and whether the tree had changes on top."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def rate(result: Result) -> str:
    return f"{result['deliveries_per_s'] / 1000:.1f} k/s ({100 * result['loss']:.1f}% loss)"


def latency(result: Result) -> str:
    return (
        f"{result['p50_us']:.0f} / {result['p99_us']:.0f} / {result['p999_us']:.0f} µs "
        f"({100 * result['loss']:.1f}% loss)"
    )


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs > 0 else "—"


def render(
    by_relay: dict[str, dict[str, Result]],
    text: dict[str, Result],
    idle: Result,
    elapsed: float,
    core: tuple[list[str], str],
) -> str:
    hub = by_relay[HUB_NAME]
    head = "| scenario | " + " | ".join(COLUMNS) + " | " + " | ".join(f"hub ÷ {b.name}" for b in BASELINES)
    rows = [head + " |", "|" + "---|" * (1 + len(COLUMNS) + len(BASELINES))]

    def row(label: str, cells: list[str], ours: float | None, key: str, field: str) -> None:
        ratios = [ratio(ours, by_relay[b.name][key][field]) if ours is not None else "—" for b in BASELINES]
        rows.append(f"| {label} | " + " | ".join(cells + ratios) + " |")

    for size in SIZES:
        key = f"sat{size}"
        cells = [rate(by_relay[name][key]) for name in COLUMNS]
        row(f"saturated fan-out, room of {size:,}: deliveries/s", cells, hub[key]["deliveries_per_s"], key,
            "deliveries_per_s")  # fmt: skip
    cells = [latency(by_relay[name]["paced"]) for name in COLUMNS]
    row("5,000 msg/s into a room of 10: p50 / p99 / p99.9 (ratio: p99, lower is better)", cells,
        hub["paced"]["p99_us"], "paced", "p99_us")  # fmt: skip
    blank = ["—"] * (len(COLUMNS) - 1)
    for key, label, base in (("live10", "text clients, /live on, room of 10", "sat10"),
                             ("live100", "text clients, /live on, room of 100", "sat100"),
                             ("reply10", "text clients, reply mode (polling), room of 10", "sat10")):  # fmt: skip
        row(f"{label}: deliveries/s (ratio: vs the baselines' room of the same size)",
            [rate(text[key]), *blank], text[key]["deliveries_per_s"], base, "deliveries_per_s")  # fmt: skip
    for size in SIZES:
        key = f"sat{size}"
        cells = [f"{by_relay[n][key]['cpu_us_per_message']:.1f} µs / {by_relay[n][key]['cpu_us_per_delivery']:.2f} µs"
                 for n in COLUMNS]  # fmt: skip
        row(f"CPU per room message / per delivery, room of {size:,} (ratio: per delivery, lower is better)",
            cells, hub[key]["cpu_us_per_delivery"], key, "cpu_us_per_delivery")  # fmt: skip
    for size in SIZES:
        key = f"sat{size}"
        cells = [_split(by_relay[n][key]) for n in COLUMNS]
        rows.append(f"| CPU per delivery, room of {size:,}: own code (user) / kernel (system) | "
                    + " | ".join(cells) + " | " + " | ".join(["—"] * 3) + " |")  # fmt: skip
    dgrams = {s: (hub[f"sat{s}"]["sent"] + hub[f"sat{s}"]["acks"]) / max(hub[f"sat{s}"]["received"], 1)
              for s in SIZES}  # fmt: skip
    rows.append(f"| hub datagrams received per delivery, rooms of {' / '.join(f'{s:,}' for s in SIZES)} (says + acks) | "
                + " / ".join(f"{v:.3f}" for v in dgrams.values()) + " | " + " | ".join(blank + ["—"] * 3) + " |")  # fmt: skip
    cost_empty, cost_full = idle["empty"]["cpu_us_per_delivery"], idle["full"]["cpu_us_per_delivery"]
    for label, value in (
        ("10,000 idle sessions in 1,000 rooms: hub RSS", f"{idle['rss_full']:.0f} MB (empty hub {idle['rss_empty']:.0f} MB)"),
        ("10,000 sessions: registration time (handshake + join, from Python)", f"{idle['registration']:.1f} s"),
        ("hub CPU per delivery, room of 10: empty hub → with 10,000 idle sessions (cheapest of 3 runs each)",
         f"{cost_empty:.2f} → {cost_full:.2f} µs ({100 * (cost_full / cost_empty - 1):+.0f}%)"),
    ):  # fmt: skip
        rows.append(f"| {label} | {value} | " + " | ".join(blank + ["—"] * 3) + " |")
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pinned = "relay pinned to core 0, generator to core 1" if pinning() else "no pinning (fewer than 2 cores)"
    lines = [
        "# Roomcast fan-out benchmark",
        "",
        f"{date}; {machine()}; {pinned}; 100-byte bodies; loopback; {elapsed:.0f} s in all; "
        f"load average before the run {load()}.",
        f"Code: commit {commit()}.",
        "Saturation keeps 48 messages per receiver in flight (closed loop); envelope clients "
        f"acknowledge as the real client does (up to the first gap, selective acks beyond it, every {limits.ACK_EVERY} "
        "or after 20 ms, at once on a gap; pinned by tests/unit/ack_vector.txt); the hub runs with "
        "`--flood-rate 0`.  **The machine is shared** (other work runs on the same two cores), so "
        "throughput figures are noisy from run to run; each throughput and latency figure is the best "
        "of 3 runs on fresh relay processes, for every relay alike.  CPU time per message and per "
        "delivery, read from `/proc/PID/stat`, is the steadier measure.",
        "",
        *rows,
        "",
        "![deliveries/s against room size](RESULTS.png)",
        "",
        "## Targets",
        "",
        *targets(by_relay, text, idle, dgrams),
        "",
        "## The hub core alone",
        "",
        "The same Python, driven in-process without sockets or trio (`python -m bench.coreprofile`), "
        "timed with the process CPU clock: what the hub's own code costs, apart from the kernel's "
        f"UDP work and the machine's load.  Each member acknowledges every {limits.ACK_EVERY} messages.",
        "",
        *core[0],
        "",
        "Where it goes in a room of 10 (`python -m bench.coreprofile --profile 10`, cProfile, "
        "own time; cProfile slows everything about 2x):",
        "",
        "```",
        *[
            line.rstrip().replace(f"{ROOT}/", "")
            for line in core[1].strip().splitlines()
            if "/" in line or "ncalls" in line
        ],
        "```",
        "",
    ]
    return "\n".join(lines)


SIZES = (1, 10, 100, 1000)


def load() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3]) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(
    by_relay: dict[str, dict[str, Result]], text: Result, idle: Result, dgrams: dict[int, float]
) -> list[str]:
    """Issue 13's targets, each with its status."""
    hub = by_relay[HUB_NAME]

    def r(name: str, key: str) -> float:
        return float(by_relay[name][key]["deliveries_per_s"])

    out = []
    for size, goal in ((100, 1.0), (10, 0.8), (1, 0.4)):
        key = f"sat{size}"
        share = r(HUB_NAME, key) / r("textbook", key)
        out.append(
            f"- envelope clients with acks, room of {size}: ≥ {goal}× textbook: {share:.2f}× — {mark(share >= goal)}"
        )
    share = r(HUB_NAME, "sat100") / r(C_RELAY.name, "sat100")
    out.append(f"- stretch: room of 100 ≥ 0.9× the C sendmmsg relay: {share:.2f}× — {mark(share >= 0.9)}")
    for key, base, goal in (("live10", "sat10", 0.8), ("live100", "sat100", 1.0)):
        share = text[key]["deliveries_per_s"] / r("textbook", base)
        out.append(
            f"- text clients /live on, {key[4:]} members: ≥ {goal}× textbook: {share:.2f}× — {mark(share >= goal)}"
        )
    cpu = hub["sat100"]["cpu_us_per_delivery"]
    out.append(f"- hub CPU per delivery, room of 100 ≤ 3.5 µs: {cpu:.2f} µs — {mark(cpu <= 3.5)}")
    out += _where_it_goes(by_relay)
    growth = " → ".join(f"{hub[f'sat{n}']['cpu_us_per_message']:.0f}" for n in SIZES)
    out.append(f"- hub CPU per room message, rooms of 1 → 10 → 100 → 1,000: {growth} µs (reported)")
    paced = hub["paced"]
    ok = (
        paced["samples"] > 0
        and paced["loss"] == 0
        and 0 <= paced["p99_us"] <= 1000
        and paced["p999_us"] <= 5000
    )
    out.append(
        f"- paced 5,000 msg/s × 10: loss {100 * paced['loss']:.2f}%, p99 {paced['p99_us']:.0f} µs, "
        f"p99.9 {paced['p999_us']:.0f} µs (no loss, ≤ 1 ms, ≤ 5 ms) — {mark(ok)}"
    )
    worst = max(dgrams.values())
    out.append(f"- ≤ 1.2 received datagrams per delivery: worst {worst:.3f} — {mark(worst <= 1.2)}")
    cost = idle["full"]["cpu_us_per_delivery"] / idle["empty"]["cpu_us_per_delivery"]
    out += [
        f"- 10,000 sessions in 1,000 rooms: RSS {idle['rss_full']:.0f} MB ≤ 100 MB — {mark(idle['rss_full'] <= 100)}",
        f"- 10,000 sessions registered in {idle['registration']:.1f} s ≤ 10 s — {mark(idle['registration'] <= 10)}",
        f"- delivery cost with 10,000 idle sessions within 10%: {cost:.2f}× — {mark(cost <= 1.1)}",
        f"- generator not the bottleneck: it drove the C relay at {r(C_RELAY.name, 'sat10') / 1000:.0f} k/s "
        f"in a room of 10, {r(C_RELAY.name, 'sat10') / r(HUB_NAME, 'sat10'):.1f}× the hub — "
        f"{mark(r(C_RELAY.name, 'sat10') > r(HUB_NAME, 'sat10'))}",
    ]
    return out


def _split(result: dict[str, Any]) -> str:
    if "user_us_per_delivery" not in result:
        return "—"
    return f"{result['user_us_per_delivery']:.2f} / {result['system_us_per_delivery']:.2f} µs"


def _where_it_goes(by_relay: dict[str, dict[str, Any]]) -> list[str]:
    """What is left, from this run's own figures: the hub's kernel time per delivery against
    the C relay's (the floor of a relay that sends the same datagrams), and its own code's."""
    out = ["- where the hub's CPU per delivery goes (user = its own Python, system = the kernel's UDP "
           "work, on loopback the receivers' side included; the C relay's system time is the floor):"]  # fmt: skip
    hub, c = by_relay[HUB_NAME], by_relay[C_RELAY.name]
    for size in SIZES:
        h, r = hub.get(f"sat{size}", {}), c.get(f"sat{size}", {})
        if "user_us_per_delivery" not in h or "system_us_per_delivery" not in r:
            continue
        out.append(
            f"  - room of {size:,}: hub user {h['user_us_per_delivery']:.2f} + system "
            f"{h['system_us_per_delivery']:.2f} µs; C relay user {r['user_us_per_delivery']:.2f} + system "
            f"{r['system_us_per_delivery']:.2f} µs"
        )
    return out


BEGIN, END = "<!-- bench:begin (written by make bench from bench/RESULTS.md) -->", "<!-- bench:end -->"


def update_readme(markdown: str, readme: Path) -> bool:
    """Put this run's RESULTS.md (figures, date, commit, chart, targets) into the README between
    its markers, so the README never shows figures from other code; False when it has none."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    body = markdown.replace("# Roomcast fan-out benchmark\n", "", 1).replace("## Targets", "### Targets")
    body = body.replace("](RESULTS.png)", "](bench/RESULTS.png)").strip()
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + BEGIN + "\n" + body + "\n" + END + rest.split(END, 1)[1])
    return True
