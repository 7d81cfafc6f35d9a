"""Names that look like other names: the UTS #39 skeleton and the mixed-script rule.

Two names whose *skeletons* are equal look alike (``аlice`` with a Cyrillic а and ``alice``),
so the hub never lets two of them be in use together.  Unicode's ``confusables.txt`` holds
the mapping; no package on PyPI computes a UTS #39 skeleton from it (``confusable_homoglyphs``
keeps homoglyph pairs, not the prototypes a skeleton needs), so the file ships in
``shared/data/`` unmodified; ``shared/data/README.md`` says where it comes from and its licence,
and ``tests/unit/test_lookalikes.py`` pins its version.

A name that mixes scripts the way no writer does (Latin with Cyrillic or Greek) is refused
whatever else is in use: that is UTS #39's "highly restrictive" level (section 5.2), which
still accepts Han with Hiragana and Katakana, Han with Hangul or Bopomofo, and any of those
with Latin.  Scripts come from ``unicodedataplus`` (UAX #24 Script_Extensions), the same
Unicode version that the name rules use.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final

import unicodedataplus

from roomcast.shared.names import fold

#: Unicode's confusables.txt (UTS #39 data), shipped unmodified.
CONFUSABLES_FILE: Final = Path(__file__).parent / "data" / "confusables.txt"

_LINE = re.compile(r"^([0-9A-F]{4,6}) ;\t([0-9A-F ]+?) ;\tMA\t", re.ASCII)
_VERSION = re.compile(r"^# Version: (\S+)$", re.ASCII | re.MULTILINE)

#: Script_Extensions values that every script shares (Common, Inherited).
_ANY_SCRIPT: Final = frozenset({"Zyyy", "Zinh"})
#: UTS #39 §5.1: Han, Hiragana, Katakana, Hangul and Bopomofo count as the writing systems
#: that combine them (Japanese, Korean, Han with Bopomofo), so 漢字かな is one script.
_WRITING_SYSTEMS: Final = {
    "Hani": {"Hanb", "Jpan", "Kore"},
    "Hira": {"Jpan"},
    "Kana": {"Jpan"},
    "Hang": {"Kore"},
    "Bopo": {"Hanb"},
}
#: UTS #39 §5.2, highly restrictive: the script sets a name may draw on besides one script.
_ALLOWED_MIXES: Final = (
    frozenset({"Latn", "Hani", "Hira", "Kana"}),
    frozenset({"Latn", "Hani", "Bopo"}),
    frozenset({"Latn", "Hani", "Hang"}),
)


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character and the prototype it looks like, from confusables.txt."""
    table: dict[str, str] = {}
    with CONFUSABLES_FILE.open(encoding="utf-8-sig") as lines:
        for line in lines:
            match = _LINE.match(line)
            if match:
                target = "".join(chr(int(code, 16)) for code in match[2].split())
                table[chr(int(match[1], 16))] = target
    return table


def confusables_version() -> str:
    """The Unicode version of the shipped confusables.txt, from its header."""
    with CONFUSABLES_FILE.open(encoding="utf-8-sig") as lines:
        head = "".join(next(lines) for _ in range(12))
    match = _VERSION.search(head)
    return match[1] if match else "unknown"


@functools.lru_cache(maxsize=8192)
def skeleton(text: str) -> str:
    """UTS #39 §4 ``skeleton``: NFD, each character mapped to its prototype, NFD again.
    Equal skeletons mean the strings look alike; a skeleton is a key, never shown."""
    table = _prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedataplus.normalize("NFD", text))
    return str(unicodedataplus.normalize("NFD", mapped))


@functools.lru_cache(maxsize=8192)
def looks(name: str) -> frozenset[str]:
    """The keys under which ``name`` (as shown) may look like another name: two names look
    alike when they share one.  A skeleton is case-sensitive (``I`` looks like ``l``, ``i``
    does not), and names compare case-insensitively, so a name has two: the skeleton of its
    shown form, case-folded (``aIice`` as ``alice``), and the skeleton of its folded form
    (``аlice`` as ``ALICE``, whose folded form is ``alice``).  As in ergo (IRC)."""
    shown = str(unicodedataplus.normalize("NFD", skeleton(name).casefold()))
    return frozenset({shown, skeleton(fold(name))})


def _scripts(ch: str) -> frozenset[str]:
    """The character's Script_Extensions, with the writing systems it belongs to."""
    codes = set(unicodedataplus.script_extensions(ch))
    for code in list(codes):
        codes |= _WRITING_SYSTEMS.get(code, set())
    return frozenset(codes)


def script_names(text: str) -> list[str]:
    """The scripts of ``text``'s letters by their Unicode names, in order of appearance."""
    names: list[str] = []
    for ch in text:
        name = str(unicodedataplus.script(ch))
        if name not in ("Common", "Inherited") and name not in names:
            names.append(name)
    return names


@functools.lru_cache(maxsize=4096)
def mixes_scripts(text: str) -> bool:
    """Whether ``text`` mixes scripts beyond UTS #39's highly restrictive level."""
    sets = [codes for codes in map(_scripts, text) if not codes <= _ANY_SCRIPT]
    if not sets or frozenset.intersection(*sets):
        return False  # a single script (Common and Inherited go with any)
    return not any(all(codes & mix for codes in sets) for mix in _ALLOWED_MIXES)


def mixed_scripts_error(what: str, name: str) -> str:
    """Why ``name`` may not be used, if it mixes scripts confusably; else ""."""
    if not mixes_scripts(name):
        return ""
    return (
        f"{what} {name} mixes {' and '.join(script_names(name))} letters, which lets a name pose as "
        "another; write it in one script (Han with Hiragana and Katakana, with Hangul or Bopomofo, "
        "or with Latin is fine)"
    )
