"""A piped ``roomcast`` given a list of hubs (``--hub A,B``), for the failover tests."""

from __future__ import annotations

from pathlib import Path

from tests.tools.clientproc import PipedClient


def listed_client(nick: str, tmp: Path, hubs: str, room: str = "ops") -> PipedClient:
    """``hubs`` is the ``--hub`` list; given last on the command line, it is the one that counts."""
    return PipedClient(0, nick, tmp, room=room, extra=("--hub", hubs))
