"""Hypothesis strategies for nicks and room names in many scripts, shown forms only.

Each name draws its letters from one script's alphabet (as people write), the rest of the
rule's characters ('.', '_', '-', digits) sprinkled in; whatever the naming rule refuses
(a byte limit, the bidi rule) is filtered out, so every example is a name the rule accepts
and that stays as written (``check_*(name) == name``).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from roomcast.shared import limits
from roomcast.shared.names import BadName, check_nick, check_room


def _letters(first: int, last: int) -> str:
    return "".join(chr(cp) for cp in range(first, last + 1))


#: One alphabet per script (ranges of letters that PRECIS accepts as they are).
ALPHABETS: dict[str, str] = {
    "latin": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzßéüñøçå",
    "han": _letters(0x4E00, 0x4E80) + "聊天小明中文字",
    "kana": _letters(0x3041, 0x3096) + _letters(0x30A1, 0x30FA) + "漢字",
    "hangul": _letters(0xAC00, 0xAC80),
    "cyrillic": _letters(0x0410, 0x044F),
    "greek": _letters(0x0391, 0x03A9).replace("\u03a2", "") + _letters(0x03B1, 0x03C9),
    "hebrew": _letters(0x05D0, 0x05EA),
    "arabic": _letters(0x0628, 0x063A),
    "devanagari": _letters(0x0915, 0x0939),
}
DIGITS = "0123456789"
PUNCTUATION = "._-"


def _accepted(check: Callable[[str], str]) -> Callable[[str], bool]:
    def accepted(name: str) -> bool:
        try:
            return check(name) == name
        except BadName:
            return False

    return accepted


def _script_names(max_chars: int, prefix: str) -> st.SearchStrategy[str]:
    @st.composite
    def build(draw: st.DrawFn) -> str:
        alphabet = draw(st.sampled_from(sorted(ALPHABETS.values())))
        first = draw(st.sampled_from(alphabet + DIGITS))
        rest = draw(st.text(alphabet=alphabet + DIGITS + PUNCTUATION, max_size=max_chars - 1))
        return draw(st.sampled_from(["", prefix])) + first + rest if prefix else first + rest

    return build()


NICKS: st.SearchStrategy[str] = _script_names(limits.MAX_NICK, "").filter(_accepted(check_nick))
ROOMS: st.SearchStrategy[str] = _script_names(limits.MAX_ROOM - 1, "#").filter(_accepted(check_room))
