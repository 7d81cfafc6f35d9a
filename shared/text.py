"""The plain UTF-8 dialect: what a text line means, and how replies to text clients look.

Text clients are the textbook UDP client (one reply datagram per line sent) and netcat.
A line is a chat message to the sender's current room; a line starting with ``/`` is a
command; exactly ``bye`` leaves.  The terminal client parses its own input with the same
:func:`parse_line`, so both speak the same commands.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import attrs

from roomcast.shared import events, limits
from roomcast.shared.names import BadName, check_nick, check_room

BYE = "bye"

HELP_LINES: tuple[str, ...] = (
    "commands: a plain line is said to your current room",
    "/join ROOM        join ROOM (created if new) and make it current",
    "/part [ROOM]      leave ROOM (default: the current one)",
    "/nick NAME        change your nick",
    "/who [ROOM]       list the members of ROOM",
    "/rooms            list rooms with member counts and topics",
    "/msg NICK TEXT    private message to NICK",
    "/me TEXT          an action line: * nick TEXT",
    "/topic [TEXT]     show or set the current room's topic",
    "/history [N]      the last N messages of the current room",
    "/stats            a summary of the hub's counters",
    "/live on|off      text clients: receive room lines as they happen (for netcat)",
    "/help             this list;  bye (alone on a line) leaves",
)


class TextCommandError(ValueError):
    """The line is not a valid command; the message says what to type instead."""


@attrs.frozen
class Help:
    """Show the command list."""


@attrs.frozen
class Live:
    """Switch a text client's live mode."""

    on: bool


@attrs.frozen
class Leave:
    """``bye`` from a text client, or /quit in the terminal client."""


Command = events.Event | Help | Live | Leave


def strip_line(line: str) -> str:
    """A datagram's text without the line ending that netcat and terminals add."""
    return line.removesuffix("\n").removesuffix("\r")


def parse_line(line: str, room: str) -> Command:
    """What ``line`` asks for, given the sender's current ``room`` ("" when in none).

    Requests come back with ``id=0``; the caller numbers them.
    """
    if line == BYE:
        return Leave()
    if not line.startswith("/") or line.startswith("//"):
        text = line[1:] if line.startswith("//") else line
        return events.Say(id=0, room=_current(room), body=_body(text))
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    parse = _COMMANDS.get(name.lower())
    if parse is None:
        raise TextCommandError(f"unknown command /{name}; type /help for the list")
    try:
        return parse(rest, room)
    except BadName as exc:
        raise TextCommandError(str(exc)) from None


def _current(room: str) -> str:
    if not room:
        raise TextCommandError("you are in no room; type /join ROOM first")
    return room


def _body(text: str) -> str:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_BODY:
        raise TextCommandError(f"line is {size} bytes; the limit is {limits.MAX_BODY}")
    return text


def _one_arg(rest: str, usage: str) -> str:
    """The one name a command takes: all of ``rest`` (a space in it is the name's problem)."""
    if not rest:
        raise TextCommandError(f"usage: {usage}")
    return rest


def _join(rest: str, _room: str) -> Command:
    return events.Join(id=0, room=check_room(_one_arg(rest, "/join ROOM")))


def _part(rest: str, room: str) -> Command:
    return events.Part(id=0, room=check_room(rest) if rest else _current(room))


def _nick(rest: str, _room: str) -> Command:
    return events.Nick(id=0, nick=check_nick(_one_arg(rest, "/nick NAME")))


def _who(rest: str, room: str) -> Command:
    return events.Who(id=0, room=check_room(rest) if rest else _current(room))


def _rooms(_rest: str, _room: str) -> Command:
    return events.Rooms(id=0)


def _msg(rest: str, _room: str) -> Command:
    nick, _, text = rest.partition(" ")
    if not nick or not text:
        raise TextCommandError("usage: /msg NICK TEXT")
    return events.Msg(id=0, to=check_nick(nick), body=_body(text))


def _me(rest: str, room: str) -> Command:
    if not rest:
        raise TextCommandError("usage: /me TEXT")
    return events.Say(id=0, room=_current(room), body=_body(rest), action=True)


def _topic(rest: str, room: str) -> Command:
    return events.Topic(id=0, room=_current(room), text=_body(rest), set=bool(rest))


def _history(rest: str, room: str) -> Command:
    if rest and not (rest.isascii() and rest.isdigit()):
        raise TextCommandError("usage: /history [N]")
    count = min(int(rest), limits.HISTORY_PER_ROOM) if rest else 20
    return events.History(id=0, room=_current(room), count=count)


def _stats(_rest: str, _room: str) -> Command:
    return events.Stats(id=0)


def _help(_rest: str, _room: str) -> Command:
    return Help()


def _live(rest: str, _room: str) -> Command:
    if rest.lower() not in ("on", "off"):
        raise TextCommandError("usage: /live on|off")
    return Live(on=rest.lower() == "on")


def _quit(_rest: str, _room: str) -> Command:
    return Leave()


_COMMANDS = {
    "join": _join, "part": _part, "nick": _nick, "who": _who, "rooms": _rooms, "msg": _msg,
    "me": _me, "topic": _topic, "history": _history, "stats": _stats, "help": _help,
    "live": _live, "quit": _quit,
}  # fmt: skip


# --- showing text -----------------------------------------------------------------------------


def visible(text: str) -> str:
    """``text`` with control characters (ESC, C1, bidi overrides, ...) shown as harmless
    escapes like ``\\x1b``, so nothing received can drive a terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if unicodedata.category(ch) in ("Zs",):
        return " "
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of UTF-8 ``data``, never cut inside a character."""
    if len(data) <= limit:
        return data
    cut = max(limit, 0)
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # continuation byte: back up to a boundary
        cut -= 1
    return data[:cut]


def _last_bytes_utf8(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes from the end of UTF-8 ``data``, starting on a character."""
    if limit <= 0:
        return b""
    start = max(len(data) - limit, 0)
    while start < len(data) and (data[start] & 0xC0) == 0x80:  # skip a partial character
        start += 1
    return data[start:]


#: What stands for the bytes cut out of a line too long for its reply.
ELLIPSIS = "\u2026"
_MARK = ELLIPSIS.encode()


def shorten(line: str, limit: int) -> str:
    """``line`` in at most ``limit`` bytes of UTF-8: whole when it fits, else its start (two
    thirds) and its end with ``…`` between, so a room line keeps its ``[room] nick:`` and an
    answer its last words.  Cuts fall between characters."""
    data = line.encode()
    if len(data) <= limit:
        return line
    if limit < len(_MARK) + 2:
        return truncate_utf8(data, limit).decode()
    room = limit - len(_MARK)
    head = truncate_utf8(data, room - room // 3)
    return (head + _MARK + _last_bytes_utf8(data, room - len(head))).decode()


def shorten_utf8(line: bytes, limit: int) -> bytes:
    """:func:`shorten` for an encoded line (returned as is when it fits: the common case)."""
    return line if len(line) <= limit else shorten(line.decode(), limit).encode()


def live_line(line: bytes) -> bytes:
    """A room line as a live datagram: newline-terminated (netcat prints datagrams back to
    back), within MAX_TEXT_REPLY, a long one cut in its middle."""
    return shorten_utf8(line, limits.MAX_TEXT_REPLY - 1) + b"\n"


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) for line in lines) + max(len(lines) - 1, 0)


def _cut_line(count: int) -> str:
    return f"{ELLIPSIS} ({count} line{'s' if count != 1 else ''} cut)"


#: Below this limit lines are not worth keeping apart: the whole text is shortened.
_MIN_LINES_LIMIT = 64


def fit_lines(lines: Sequence[str], limit: int) -> list[str]:
    """``lines`` joined by newlines in at most ``limit`` bytes, keeping what says the most.

    The first line (what the answer is) and the last (how it ends: ``sent to lobby``,
    ``... and 3 more``) always stay; the lines between are kept from the start while they fit,
    the rest replaced by one ``… (N lines cut)`` line; a line too long for its share is cut in
    its middle (:func:`shorten`).
    """
    if _size(lines) <= limit:
        return list(lines)
    if len(lines) == 1 or limit < _MIN_LINES_LIMIT:
        return [shorten("\n".join(lines), limit)]
    first, middle, last = lines[0], lines[1:-1], lines[-1]
    reserve = len(_cut_line(len(middle)).encode()) + 1 if middle else 0
    ends = limit - 1 - reserve  # bytes for the first and the last line
    first_size, last_size = len(first.encode()), len(last.encode())
    if first_size + last_size > ends:
        half = ends // 2
        if last_size <= half:
            first = shorten(first, ends - last_size)
        elif first_size <= half:
            last = shorten(last, ends - first_size)
        else:
            first, last = shorten(first, ends - half), shorten(last, half)
    budget = limit - reserve - _size([first, last])
    kept: list[str] = []
    for line in middle:
        cost = len(line.encode()) + 1
        if cost > budget:
            break
        kept.append(line)
        budget -= cost
    cut = [_cut_line(len(middle) - len(kept))] if len(kept) < len(middle) else []
    return [first, *kept, *cut, last]


#: A queued line cut to fit a reply keeps at least this many bytes (else it is skipped).
_MIN_QUEUED_CUT = 40


def pack_reply(
    queued: Sequence[str], answer: Sequence[str], limit: int = limits.MAX_TEXT_REPLY, dropped: int = 0
) -> bytes:
    """One reply datagram for a text client: the ``queued`` room lines (oldest first) then the
    ``answer`` lines, at most ``limit`` bytes of valid UTF-8.

    The answer always comes first in the budget (:func:`fit_lines`: its first and last lines
    stay).  Queued lines are dropped oldest first, with a line saying how many were skipped
    (counting ``dropped`` lines lost before); when even the newest does not fit whole, it is cut
    in its middle rather than lost.
    """
    tail = "\n".join(fit_lines(answer, limit)).encode()
    room = limit - (len(tail) + 1 if tail else 0)  # for the notice and the queued lines
    lines = [line.encode() for line in queued]
    if sum(len(line) + 1 for line in lines) + (len(_skipped_line(dropped)) + 1 if dropped else 0) <= room:
        kept, skipped = lines, dropped
    else:
        kept, skipped = _newest_that_fit(lines, room - len(_skipped_line(dropped + len(lines))) - 1)
        skipped += dropped
    notice = _skipped_line(skipped) if skipped else b""
    used = sum(len(line) + 1 for line in kept)
    parts = [notice] if notice and used + len(notice) + 1 <= room else []
    parts += kept
    if tail:
        parts.append(tail)
    return b"\n".join(parts)


def _newest_that_fit(lines: list[bytes], room: int) -> tuple[list[bytes], int]:
    """The newest ``lines`` that fit ``room`` bytes (each with its newline), and how many of
    the older ones are left out; a newest line too long alone is cut to fit."""
    kept: list[bytes] = []
    for line in reversed(lines):
        if len(line) + 1 > room:
            if not kept and room - 1 >= _MIN_QUEUED_CUT:
                kept.append(shorten_utf8(line, room - 1))
            break
        kept.append(line)
        room -= len(line) + 1
    kept.reverse()
    return kept, len(lines) - len(kept)


def _skipped_line(count: int) -> bytes:
    return f"({count} earlier messages skipped)".encode()


def format_event(event: events.Deliver | events.Presence) -> str:
    """One line for a text client: ``[room] nick: body``, ``[room] * nick action``,
    ``[private] nick: body``, ``[room] * nick joined``."""
    where = f"[{event.room}]" if event.room else "[private]"
    if isinstance(event, events.Presence):
        return f"{where} * {event.nick} {presence_phrase(event)}"
    if event.action:
        return f"{where} * {event.nick} {visible(event.body)}"
    return f"{where} {event.nick}: {visible(event.body)}"


def presence_phrase(event: events.Presence) -> str:
    """``joined``, ``left (timeout)``, ``is now known as bob``, ``set the topic: ...``."""
    what, detail = visible(event.what), visible(event.detail)
    if event.what == "renamed":
        return f"is now known as {detail}"
    if event.what == "topic":
        return f"set the topic: {detail}"
    return f"{what} ({detail})" if detail else what
