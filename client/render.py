"""How the terminal client shows things: time, room and nick (a stable colour per nick).

Everything received passes through :func:`shared.text.visible`, so control characters and
escape sequences appear as harmless text.  Output is a list of (style, text) fragments that
prompt_toolkit prints in colour, or that :func:`plain` joins for pipes and ``NO_COLOR``.
"""

from __future__ import annotations

import functools
import math
import time
import zlib

from roomcast.shared import events, text
from roomcast.shared.inbox import Shown
from roomcast.shared.names import fold

Fragments = list[tuple[str, str]]

NICK_COLOURS = (
    "ansired", "ansigreen", "ansiyellow", "ansiblue", "ansimagenta", "ansicyan",
    "ansibrightred", "ansibrightgreen", "ansibrightyellow", "ansibrightblue", "ansibrightmagenta",
    "ansibrightcyan",
)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def nick_style(nick: str) -> str:
    """The same colour for the same nick in every session and script (crc32 of the folded
    nick, so ``Straße`` and ``STRASSE`` share one)."""
    return "fg:" + NICK_COLOURS[zlib.crc32(fold(nick).encode()) % len(NICK_COLOURS)]


def clock(ts: float) -> str:
    """``HH:MM`` of ``ts`` in local time.  The lines of one second share one: a busy room shows
    thousands a second, and ``strftime(localtime())`` was half the cost of formatting each."""
    return _clock_of_second(math.floor(ts))


@functools.lru_cache(maxsize=4)
def _clock_of_second(second: int) -> str:
    return time.strftime("%H:%M", time.localtime(second))


def event_line(event: Shown) -> Fragments:
    """``12:03 [lobby] <alice> hello`` and its presence, action and private forms."""
    where = f"[{event.room}]" if event.room else "[private]"
    head: Fragments = [("class:time", f"{clock(event.ts)} "), ("class:room", f"{where} ")]
    if event.history:
        head.insert(1, ("class:history", "(history) "))
    nick = (nick_style(event.nick), event.nick)
    if isinstance(event, events.Presence):
        return [*head, ("class:notice", "* "), nick, ("class:notice", " " + text.presence_phrase(event))]
    if event.action:
        return [*head, ("", "* "), nick, ("", " " + text.visible(event.body))]
    return [*head, ("", "<"), nick, ("", "> " + text.visible(event.body))]


def notice(message: str) -> Fragments:
    """A line from the client itself (answers, errors, connection news)."""
    return [("class:time", f"{clock(time.time())} "), ("class:notice", "-- " + text.visible(message))]


def error(message: str) -> Fragments:
    return [("class:time", f"{clock(time.time())} "), ("class:error", "!! " + text.visible(message))]


def plain(fragments: Fragments) -> str:
    return "".join([part for _style, part in fragments])
