"""The hub's counters and gauges in the Prometheus text exposition format 0.0.4, written by hand.

Why by hand: the output is a dozen metric families and a few escaping rules, far less than a
client library and its registry, and the hub's counters already live in ``hub.stats``.  Pure
functions, no I/O: ``hub.monitor`` serves the text at ``GET /metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Counter prefixes rendered as one Prometheus metric with a label, e.g. errors_total{code=...}.
LABELLED = {"errors": "code", "drops": "reason", "departures": "reason", "sessions": "kind"}
#: Counters shown (as 0) before the first increment, so rate() works from the first scrape.
ALWAYS = ("datagrams_in", "datagrams_out", "bytes_in", "bytes_out", "messages", "deliveries", "retransmits")
HELP = {
    "errors": "Refused requests and bad input, by error code.",
    "drops": "Datagrams dropped without an answer, by reason.",
    "departures": "Clients that left the hub, by reason.",
    "sessions": "Sessions opened, by client kind.",
    "datagrams_in": "UDP datagrams received.",
    "datagrams_out": "UDP datagrams sent.",
    "bytes_in": "Bytes of UDP payload received.",
    "bytes_out": "Bytes of UDP payload sent.",
    "messages": "Room messages published.",
    "deliveries": "Room events sent to members (first sends).",
    "retransmits": "Deliveries sent again after their timer expired.",
    "evictions": "Clients evicted for silence.",
    "clients_envelope": "Connected envelope clients.",
    "clients_text": "Connected plain-text clients.",
    "rooms": "Rooms that exist.",
    "unacked": "Deliveries held for members, not yet acknowledged.",
    "history": "Room events kept as history, all rooms.",
    "stored": "Records (room events, topics) committed to the --data-dir store.",
    "amplification": "Bytes sent to unvalidated addresses per byte received from them.",
    "uptime_seconds": "Seconds since the hub started.",
    "start_time_seconds": "Start time of the hub, seconds since the epoch.",
}


def metric_name(name: str) -> str:
    return "roomcast_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def label_value(value: str) -> str:
    return help_text(value).replace('"', r"\"")


def help_text(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def sample_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return {float("inf"): "+Inf", float("-inf"): "-Inf"}.get(value, "NaN" if value != value else repr(value))


def render(counters: Mapping[str, int], gauges: Mapping[str, float], info: Mapping[str, str]) -> str:
    """Counters as ``roomcast_<name>_total`` (``errors.x`` as ``roomcast_errors_total{code="x"}``),
    gauges as ``roomcast_<name>``, and ``roomcast_info`` carrying version and hub id as labels."""
    families: dict[str, tuple[str, str, dict[str, float]]] = {}  # name -> (type, help, samples)

    def add(kind: str, name: str, labels: str, value: float, about: str) -> None:
        samples = families.setdefault(name, (kind, about, {}))[2]
        samples[labels] = samples.get(labels, 0) + value  # names equal once sanitized: summed

    for name, value in sorted({**dict.fromkeys(ALWAYS, 0), **counters}.items()):
        prefix, dot, rest = name.partition(".")
        if dot and prefix in LABELLED:
            labels = f'{{{LABELLED[prefix]}="{label_value(rest)}"}}'
            add("counter", metric_name(prefix) + "_total", labels, value, HELP[prefix])
        else:
            add("counter", metric_name(name) + "_total", "", value, HELP.get(name, f"Hub counter {name}."))
    for name, level in gauges.items():
        add("gauge", metric_name(name), "", level, HELP.get(name, f"Hub gauge {name}."))
    pairs = ",".join(f'{key}="{label_value(value)}"' for key, value in info.items())
    add("gauge", "roomcast_info", f"{{{pairs}}}", 1, "Version and run id of the hub; always 1.")
    lines = []
    for name, (kind, about, samples) in families.items():
        lines += [f"# HELP {name} {help_text(about)}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{labels} {sample_value(value)}" for labels, value in samples.items()]
    return "\n".join(lines) + "\n"
