"""Rules for nicks and room names in any script, their comparison key and their subject token.

A nick follows the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3): letters and digits of
any script, width-mapped (full-width ``ＡＢＣ`` is ``ABC``) and in NFC.  On top of the profile,
Roomcast allows only ``.``, ``_`` and ``-`` of ASCII punctuation, wants a letter or digit first
(a room may also start with ``#``, as on IRC) and limits the length in characters and in
bytes.  Names are shown as their owner wrote them (after width mapping) and compared by
:func:`fold`, the UsernameCaseMapped:CaseFold form: ``Straße`` and ``STRASSE`` are one name.

Spaces, control characters, bidi controls and invisible characters are refused first, each
with an error that names it.  Look-alikes (one name posing as another) are the hub's business:
see :mod:`shared.lookalikes` and ``hub/rooms.py``.

All Unicode data comes from ``unicodedataplus`` (one Unicode version whatever the Python), so
a hub and its clients agree on what a name is.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import unicodedataplus
from precis_i18n import get_profile
from precis_i18n.unicode import UnicodeData

from roomcast.shared import limits

#: precis-i18n's view of unicodedataplus (its stub types the argument as its own wrapper).
_UCD: Final[Any] = unicodedataplus
#: Case-preserving enforcement (RFC 8265 §3.4) gives the form a name is shown in; the
#: case-folding one (RFC 8265 §3.3.1, with Unicode default case folding) its comparison key.
_SHOWN: Final = get_profile("UsernameCasePreserved", unicodedata=_UCD)
_FOLDED: Final = get_profile("UsernameCaseMapped:CaseFold", unicodedata=_UCD)
_IGNORABLE: Final = UnicodeData(unicodedataplus)

#: Bidi controls (UAX #9 §2): they reorder how text is shown, so a name could pose as another.
BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: The only ASCII punctuation a name may hold (PRECIS alone would allow all of it).
NAME_PUNCTUATION: Final = frozenset("._-")
#: A room name may start with this, as IRC channels do (``#rust``).
ROOM_PREFIX: Final = "#"


class BadName(ValueError):
    """A nick or room name breaks the naming rule; the message says which rule."""


def describe(ch: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: a character named so that a person can find it (controls
    have no name: ``U+0007``)."""
    name = unicodedataplus.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def _refuse_unseen(name: str, what: str) -> None:
    """Spaces, controls, bidi controls and invisible characters, each named in the error."""
    for ch in name:
        category = unicodedataplus.category(ch)
        if ch in BIDI_CONTROLS:
            problem = f"the bidi control {describe(ch)}, which reorders how text is shown; remove it"
        elif category == "Cc":
            problem = f"the control character {describe(ch)}; remove it"
        elif category == "Zs" or ch.isspace():
            problem = f"a space ({describe(ch)}); names have no spaces: use '_' or '-' between words"
        elif category == "Cf" or _IGNORABLE.default_ignorable(ord(ch)):
            problem = f"the invisible character {describe(ch)}; remove it"
        else:
            continue
        raise BadName(f"{what} {name!r} contains {problem}")


def _precis_error(exc: UnicodeEncodeError, name: str, what: str) -> BadName:
    """What PRECIS refused, in words: which character, and why."""
    reason = str(exc.reason).removeprefix("DISALLOWED/")
    ch = exc.object[exc.start] if exc.end - exc.start == 1 else ""
    if reason == "bidi_rule":
        return BadName(
            f"{what} {name!r} breaks the bidi rule of RFC 5893: a right-to-left name starts with "
            "a right-to-left letter and holds no left-to-right letters; use one direction"
        )
    if reason == "has_compat" and ch:
        plain = unicodedataplus.normalize("NFKC", ch)
        return BadName(
            f"{what} {name!r} contains {ch!r} ({describe(ch)}), a compatibility form; write {plain!r} instead"
        )
    if reason == "unassigned" and ch:
        return BadName(f"{what} {name!r} contains {describe(ch)}, which this Unicode version does not assign")
    if ch:
        return BadName(
            f"{what} {name!r} contains {ch!r} ({describe(ch)}), which names may not hold; use {limits.NAME_RULE}"
        )
    return BadName(f"{what} {name!r} is not allowed ({reason}); use {limits.NAME_RULE}")


def _check_shape(shown: str, what: str, prefix: str) -> None:
    """Roomcast's own rules beyond PRECIS: a letter or digit first, little punctuation."""
    body = shown.removeprefix(prefix) if prefix else shown
    if not body:
        raise BadName(f"{what} {shown!r} has nothing after {prefix!r}; use {limits.NAME_RULE}")
    if unicodedataplus.category(body[0])[0] not in "LN":
        raise BadName(f"{what} {shown!r} must start with a letter or digit; use {limits.NAME_RULE}")
    for ch in body:
        if ch.isascii() and not ch.isalnum() and ch not in NAME_PUNCTUATION:
            raise BadName(
                f"{what} {shown!r} contains {ch!r}, which names may not hold; use {limits.NAME_RULE}"
            )


def _check_size(shown: str, what: str, max_chars: int, max_bytes: int) -> None:
    size = len(shown.encode("utf-8"))
    if len(shown) > max_chars:
        raise BadName(f"{what} {shown[:max_chars]!r}... is {len(shown)} characters; the limit is {max_chars}")
    if size > max_bytes:
        raise BadName(f"{what} {shown!r} is {size} bytes of UTF-8; the limit is {max_bytes}")


def check_name(name: Any, what: str, max_chars: int, max_bytes: int, prefix: str = "") -> str:
    """``name`` in the form it is shown in, if it follows the rule; else :class:`BadName`
    saying what was wrong.  ``prefix`` is a character the name may start with."""
    if not isinstance(name, str):
        raise BadName(f"{what} must be text, not {type(name).__name__}")
    if not name:
        raise BadName(f"{what} is empty; use {limits.NAME_RULE}")
    if len(name) > 4 * max_chars:  # no mapping shrinks a name this much: spare PRECIS the work
        raise BadName(f"{what} {name[:max_chars]!r}... is {len(name)} characters; the limit is {max_chars}")
    _refuse_unseen(name, what)
    try:
        shown = str(_SHOWN.enforce(name))
        _FOLDED.enforce(shown)
    except UnicodeEncodeError as exc:
        raise _precis_error(exc, name, what) from None
    _check_shape(shown, what, prefix)
    _check_size(shown, what, max_chars, max_bytes)
    return shown


@functools.lru_cache(maxsize=8192)
def check_nick(nick: str) -> str:
    """A nick as shown, or :class:`BadName` (see the module's rules)."""
    return check_name(nick, "nick", limits.MAX_NICK, limits.MAX_NICK_BYTES)


@functools.lru_cache(maxsize=8192)
def check_room(room: str) -> str:
    """A room name as shown, or :class:`BadName`; it may start with ``#``."""
    return check_name(room, "room name", limits.MAX_ROOM, limits.MAX_ROOM_BYTES, ROOM_PREFIX)


@functools.lru_cache(maxsize=16384)
def fold(name: str) -> str:
    """Comparison key: names are unique case-insensitively, full and half width alike
    (PRECIS UsernameCaseMapped:CaseFold, so ``Straße`` and ``STRASSE`` fold together)."""
    try:
        return str(_FOLDED.enforce(name))
    except (UnicodeEncodeError, ValueError):
        return str(unicodedataplus.normalize("NFC", name.casefold()))  # not a valid name: any stable key


#: Characters a folded name keeps as they are in a subject token; every other character,
#: ``_`` included, becomes ``_<hex code point>_``, so the mapping is one-to-one.
_TOKEN_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def subject_token(folded: str) -> str:
    """An ASCII-safe, one-to-one encoding of a folded name, for a NATS subject token or a KV
    key: only ``[a-z0-9_-]``, never ``.``, ``*``, ``>`` or a space.  ``lobby`` stays ``lobby``;
    ``聊天`` becomes ``_804a__5929_``."""
    return "".join(ch if ch in _TOKEN_PLAIN else f"_{ord(ch):x}_" for ch in folded)
