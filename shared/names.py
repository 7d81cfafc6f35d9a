"""Rules for nicks and room names, and their case-insensitive comparison keys."""

from __future__ import annotations

from shared import limits


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
