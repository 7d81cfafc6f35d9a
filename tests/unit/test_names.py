"""Name encodings that leave the hub: the ASCII-safe subject token of a folded name."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from roomcast.shared.names import subject_token

TOKEN = re.compile(r"[a-z0-9_-]+")


def test_plain_names_stay_readable() -> None:
    assert subject_token("lobby") == "lobby"
    assert subject_token("dev-ops") == "dev-ops"


def test_other_characters_are_escaped_by_code_point() -> None:
    assert subject_token("聊天") == "_804a__5929_"
    assert subject_token("a.b") == "a_2e_b"
    assert subject_token("a_b") == "a_5f_b"


@given(st.text(min_size=1, max_size=32))
def test_tokens_are_ascii_subject_safe(name: str) -> None:
    assert TOKEN.fullmatch(subject_token(name))


@given(st.text(min_size=1, max_size=16), st.text(min_size=1, max_size=16))
def test_tokens_are_one_to_one(a: str, b: str) -> None:
    assert (subject_token(a) == subject_token(b)) == (a == b)
