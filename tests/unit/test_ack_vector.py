"""One acknowledgement test vector pins both the real client (``shared/inbox.py``) and the
benchmark generator (``bench/loadgen.c``), so "acknowledges like the real client" stays true:
up to the first gap, selective acks beyond it, at once on a gap or a duplicate, and a
reordered delivery is not a duplicate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from roomcast.shared import events, limits
from roomcast.shared.inbox import Inbox

VECTOR = Path(__file__).with_name("ack_vector.txt")
ROOT = Path(__file__).resolve().parents[2]


def steps() -> list[tuple[str, str]]:
    """(input line, expected acks) for every step of the vector."""
    out = []
    for line in VECTOR.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            given, expected = line.split(" = ")
            out.append((given, expected))
    return out


def render(ack: events.Ack | None) -> str:
    if ack is None:
        return "-"
    return str(ack.upto) + (":" + ",".join(map(str, ack.sack)) if ack.sack else "")


def test_the_vector_covers_gaps_duplicates_reordering_and_the_sack_limit() -> None:
    expected = [e for _, e in steps()]
    assert any(":" in e for e in expected)  # selective acks
    assert max(len(e.split(":")[1].split(",")) for e in expected if ":" in e) == limits.MAX_SACK
    delivered = [g.split()[2] for g, _ in steps() if g.startswith("d ")]
    assert len(delivered) > len(set(delivered))  # a duplicate
    assert any(g.startswith("o ") for g, _ in steps())  # our own lines


def test_the_real_client_acknowledges_as_the_vector_says() -> None:
    inbox = Inbox()
    inbox.joining("hall")
    inbox.start("hall", 0, 0.0)
    for given, expected in steps():
        kind, ms, *seq = given.split()
        now = int(ms) / 1000
        if kind == "d":
            inbox.receive(events.Deliver(room="hall", seq=int(seq[0]), nick="a", body="x", ts=0.0), now)
        elif kind == "o":
            inbox.own("hall", int(seq[0]), now)
        else:
            inbox.on_timer(now)
        acks = inbox.acks_to_send()
        assert len(acks) <= 1
        assert render(acks[0] if acks else None) == expected, given


def test_the_benchmark_generator_acknowledges_as_the_vector_says(tmp_path: Path) -> None:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler: the benchmark generator cannot be built here")
    binary = tmp_path / "loadgen"
    subprocess.run([cc, "-O2", "-o", str(binary), str(ROOT / "bench" / "loadgen.c")], check=True, timeout=120)
    result = subprocess.run(
        [str(binary), "acks"],
        input=VECTOR.read_text(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    got = [line.split(" = ") for line in result.stdout.splitlines()]
    assert [(g, e) for g, e in got] == steps()
