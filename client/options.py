"""``roomcast``'s command line: options, environment variables and their defaults.

A client reads ``ROOMCAST_HUB``, ``ROOMCAST_NICK``, ``ROOMCAST_ROOM``, ``ROOMCAST_HISTORY`` and
``NO_COLOR``, never ``PORT`` (honcho sets that per process for servers).
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

import attrs

from roomcast.client.runner import resolve_hubs, split_hub_list
from roomcast.shared import __version__, limits
from roomcast.shared.names import BadName, check_nick, check_room

DEFAULT_HUB = f"{limits.DEFAULT_HOST}:{limits.DEFAULT_PORT}"


@attrs.frozen
class ClientOptions:
    command: str
    hub: str
    #: ``hub`` resolved to a socket address, once, when the options are read.
    hub_address: tuple[Any, ...]
    #: ``--hub`` may list several hubs of one cluster (``hub`` is the text as given,
    #: ``hub_address`` the first): each ``HOST:PORT``, in the order the client tries them, and
    #: its socket address.
    hubs: tuple[str, ...]
    hub_addresses: tuple[tuple[Any, ...], ...]
    nick: str
    rooms: tuple[str, ...]
    history: int
    plain: bool
    color: bool


def default_nick() -> str:
    try:
        name = getpass.getuser()
        return check_nick(name[: limits.MAX_NICK])
    except (BadName, OSError, KeyError):
        return f"user-{os.getpid()}"


def parse_args(argv: list[str] | None, environ: dict[str, str]) -> ClientOptions:
    parser = argparse.ArgumentParser(
        prog="roomcast",
        description="Roomcast terminal client. Without a terminal (a pipe, a script) it sends each "
        "input line to the room, waits for the hub to confirm them all, and exits.",
    )
    parser.add_argument("command", nargs="?", default="chat", choices=["chat", "stats"],
                        help="chat (default), or stats: print the hub's counters and exit")  # fmt: skip
    parser.add_argument("--hub", default=environ.get("ROOMCAST_HUB", DEFAULT_HUB),
                        help="hub address HOST:PORT, or a list HOST:PORT,HOST:PORT,... of hubs of one "
                        "cluster: the client uses the first that answers and moves on to the next "
                        "by itself when it goes silent (default %(default)s; env ROOMCAST_HUB)")  # fmt: skip
    parser.add_argument("--nick", default=environ.get("ROOMCAST_NICK") or default_nick(),
                        help="your nick (default: your user name; env ROOMCAST_NICK)")  # fmt: skip
    parser.add_argument("--room", action="append", default=None,
                        help="room to join, repeatable or comma-separated; the last is current "
                        f"(default {limits.DEFAULT_ROOM}; env ROOMCAST_ROOM)")  # fmt: skip
    parser.add_argument("--history", type=int, default=None,
                        help="recent messages to show from each room on join (default 0; env ROOMCAST_HISTORY)")  # fmt: skip
    parser.add_argument("--plain", action="store_true",
                        help="speak plain UTF-8 lines instead of the envelope (works with the textbook UDP server)")  # fmt: skip
    parser.add_argument("--no-color", action="store_true", help="no colours (also: env NO_COLOR)")
    parser.add_argument("--version", action="version", version=f"roomcast {__version__}")
    args = parser.parse_args(argv)
    raw_rooms = args.room or [environ.get("ROOMCAST_ROOM") or limits.DEFAULT_ROOM]
    rooms = tuple(r.strip() for spec in raw_rooms for r in spec.split(",") if r.strip())
    try:  # names as they are shown: full-width letters mapped, NFC
        nick = check_nick(args.nick)
        rooms = tuple(check_room(room) for room in rooms)
    except BadName as exc:
        parser.error(str(exc))
    source = "--history"
    if args.history is None:
        source = f"ROOMCAST_HISTORY={environ.get('ROOMCAST_HISTORY')!r}"
        try:
            args.history = int(environ.get("ROOMCAST_HISTORY") or 0)
        except ValueError:
            parser.error(f"{source} is not a whole number; give 0 to {limits.HISTORY_PER_ROOM}")
    if not 0 <= args.history <= limits.HISTORY_PER_ROOM:
        parser.error(f"{source} must be between 0 and {limits.HISTORY_PER_ROOM}")
    try:
        hubs = split_hub_list(args.hub)
        hub_addresses = resolve_hubs(hubs)
        hub_address = hub_addresses[0]
    except (ValueError, OSError) as exc:
        parser.error(f"--hub {exc}")
    return ClientOptions(
        command=args.command,
        hub=args.hub,
        hub_address=hub_address,
        nick=nick,
        rooms=rooms,
        history=args.history,
        plain=args.plain,
        color=not (args.no_color or environ.get("NO_COLOR")),
        hubs=hubs,
        hub_addresses=hub_addresses,
    )
