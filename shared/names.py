"""Rules for nicks and room names, and their case-insensitive comparison keys."""

from __future__ import annotations

from roomcast.shared import limits


class BadName(ValueError):
    """A nick or room name breaks the naming rule; the message says which rule."""


def check_name(name: str, what: str, max_len: int) -> str:
    """Return ``name`` if it follows the rule, else raise :class:`BadName` saying why."""
    if not name:
        raise BadName(f"{what} is empty; use {limits.NAME_RULE}")
    if len(name) > max_len:
        raise BadName(f"{what} {name[:max_len]!r}... is longer than {max_len} characters")
    if not limits.NAME_PATTERN.fullmatch(name):
        raise BadName(f"{what} {name!r} is not allowed; use {limits.NAME_RULE}")
    return name


def check_nick(nick: str) -> str:
    return check_name(nick, "nick", limits.MAX_NICK)


def check_room(room: str) -> str:
    return check_name(room, "room name", limits.MAX_ROOM)


def fold(name: str) -> str:
    """Comparison key: nicks and rooms are unique case-insensitively (names are ASCII)."""
    return name.lower()


#: Characters a folded name keeps as they are in a subject token; every other character,
#: ``_`` included, becomes ``_<hex code point>_``, so the mapping is one-to-one.
_TOKEN_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def subject_token(folded: str) -> str:
    """An ASCII-safe, one-to-one encoding of a folded name, for a NATS subject token or a KV
    key: only ``[a-z0-9_-]``, never ``.``, ``*``, ``>`` or a space.  ``lobby`` stays ``lobby``;
    ``聊天`` becomes ``_804a__5929_``."""
    return "".join(ch if ch in _TOKEN_PLAIN else f"_{ord(ch):x}_" for ch in folded)
