"""Minimal "JOIN room" / "MSG room body" relays the hub is measured against (see bench/README.md).

Each is the smallest honest program of its kind: no validation, no acks, no limits.  They bind
loopback only and exit by themselves after ``--seconds``.
"""

from __future__ import annotations

import argparse


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=30.0, help="exit after this long (at most 120)")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 120.0)
    return args


def room_of(data: bytes) -> tuple[bytes, bytes] | None:
    """(command, room) of a "JOIN room" or "MSG room body" datagram, else None."""
    parts = data.split(b" ", 2)
    if len(parts) < 2:
        return None
    return parts[0], parts[1].rstrip(b"\r\n")
