"""The naming rule (names in any script, folded comparison, named refusals, limits in
characters and bytes) and the ASCII-safe subject token of a folded name."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomcast.shared import envelope, events, limits
from roomcast.shared.names import BadName, check_name, check_nick, check_room, fold, subject_token
from roomcast.shared.text import format_event, parse_line, strip_line
from tests.unit.namegen import NICKS, ROOMS

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


# --- the naming rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["alice", "小明", "聊天", "Straße", "москва", "Ελλάδα", "漢字かなカナ", "한국어", "x.y-z_1"]
)
def test_names_in_any_script_are_accepted_as_written(name: str) -> None:
    assert check_nick(name) == name
    assert check_room(name) == name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Straße", "STRASSE"),
        ("Alice", "aLICE"),
        ("ＡＬＩＣＥ", "alice"),
        ("ｶﾀｶﾅ", "カタカナ"),
        ("ΣΑΣ", "σας"),
    ],
)
def test_case_and_width_variants_fold_together(a: str, b: str) -> None:
    assert fold(check_nick(a)) == fold(check_nick(b))


def test_full_width_letters_are_shown_half_width_and_decomposed_accents_composed() -> None:
    assert check_nick("ＡＬＩＣＥ") == "ALICE"
    assert check_room("＃聊天") == "#聊天"
    assert check_nick("e\u0301mile") == "émile"


def test_a_room_may_start_with_a_hash_and_a_nick_may_not() -> None:
    assert check_room("#rust") == "#rust"
    assert fold("#Rust") != fold("rust"), "the # is part of the room's name"
    for bad in ("#rust", "a#b"):
        with pytest.raises(BadName, match=r"start with a letter or digit|which names may not hold"):
            check_nick(bad)
    for bad in ("#", "##x", "x#y"):
        with pytest.raises(BadName):
            check_room(bad)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a b", "contains a space (U+0020 SPACE)"),
        ("小\u3000明", "contains a space (U+3000 IDEOGRAPHIC SPACE)"),
        ("a\tb", "contains the control character U+0009"),
        ("a\x1b[31m", "contains the control character U+001B"),
        ("ab\u202ec", "contains the bidi control U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("ab\u2066c", "contains the bidi control U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("a\u200bb", "contains the invisible character U+200B ZERO WIDTH SPACE"),
        ("a\u200db", "contains the invisible character U+200D ZERO WIDTH JOINER"),
        ("a\u3164b", "contains the invisible character U+3164 HANGUL FILLER"),
        ("a\u00adb", "contains the invisible character U+00AD SOFT HYPHEN"),
    ],
)
def test_spaces_controls_bidi_and_invisible_characters_are_refused_by_name(name: str, problem: str) -> None:
    for check in (check_nick, check_room):
        with pytest.raises(BadName) as info:
            check(name)
        assert problem in str(info.value)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("☃", "U+2603 SNOWMAN"),
        ("a!", "'!'"),
        ("-x", "must start with a letter or digit"),
        ("Ⅳ", "a compatibility form; write 'IV' instead"),
        ("abcשלום", "bidi rule"),
        ("", "is empty"),
    ],
)
def test_other_refusals_say_what_to_do(name: str, problem: str) -> None:
    with pytest.raises(BadName) as info:
        check_nick(name)
    assert problem in str(info.value)


def test_limits_hold_in_characters_and_in_bytes() -> None:
    assert check_nick("n" * limits.MAX_NICK)
    with pytest.raises(BadName, match=f"25 characters; the limit is {limits.MAX_NICK}"):
        check_nick("n" * (limits.MAX_NICK + 1))
    cjk_fit = "明" * (limits.MAX_NICK_BYTES // 3)  # 21 characters, 63 bytes
    assert check_nick(cjk_fit) == cjk_fit
    with pytest.raises(BadName, match=f"66 bytes of UTF-8; the limit is {limits.MAX_NICK_BYTES}"):
        check_nick("明" * 22)  # 22 characters, within the character limit
    assert check_room("房" * limits.MAX_ROOM) == "房" * limits.MAX_ROOM  # 96 bytes
    with pytest.raises(BadName, match=f"the limit is {limits.MAX_ROOM_BYTES}"):
        check_room("\U00020000" * 25)  # CJK extension B: 4 bytes each, 25 characters
    with pytest.raises(BadName, match="is 33 characters"):
        check_room("r" * 33)


def test_bad_input_of_any_type_or_size_is_a_bad_name() -> None:
    with pytest.raises(BadName, match="characters; the limit"):
        check_nick("x" * 100_000)
    with pytest.raises(BadName, match="must be text"):
        check_name(b"bytes", "nick", limits.MAX_NICK, limits.MAX_NICK_BYTES)


# --- properties -----------------------------------------------------------------------------------


@given(st.text(max_size=40))
def test_folding_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(NICKS)
def test_the_shown_form_and_the_folded_form_are_fixed_points(nick: str) -> None:
    assert check_nick(nick) == nick
    folded = fold(nick)
    assert fold(folded) == folded
    # Folding may lengthen a name (ß is ss): the key of a 24-character nick can be longer
    # than a nick may be; within the limits it is itself a valid nick with the same key.
    if len(folded) <= limits.MAX_NICK and len(folded.encode()) <= limits.MAX_NICK_BYTES:
        assert fold(check_nick(folded)) == folded


@given(st.text(max_size=40))
def test_any_text_is_a_name_or_a_bad_name(text: str) -> None:
    try:
        shown = check_room(text)
    except BadName as exc:
        assert str(exc)
    else:
        assert check_room(shown) == shown


@given(NICKS, ROOMS)
def test_accepted_names_round_trip_through_the_envelope(nick: str, room: str) -> None:
    sent = events.Deliver(room=room, seq=1, nick=nick, body="hi", ts=0.0)
    assert envelope.decode(envelope.encode(sent)).event == sent
    hello = events.Hello(nick=nick)
    assert envelope.decode(envelope.encode(hello)).event == hello


@given(NICKS, ROOMS)
def test_accepted_names_round_trip_through_the_text_dialect(nick: str, room: str) -> None:
    wire = lambda line: strip_line(line.encode("utf-8").decode("utf-8"))  # noqa: E731
    assert parse_line(wire(f"/join {room}"), "") == events.Join(id=0, room=room)
    assert parse_line(wire(f"/nick {nick}"), room) == events.Nick(id=0, nick=nick)
    assert parse_line(wire(f"/msg {nick} 你好"), room) == events.Msg(id=0, to=nick, body="你好")
    assert parse_line(wire(f"/who {room}"), "") == events.Who(id=0, room=room)
    line = format_event(events.Deliver(room=room, seq=1, nick=nick, body="你好", ts=0.0))
    assert line == f"[{room}] {nick}: 你好"


def test_subject_tokens_of_folded_names_join_case_and_width_variants_only() -> None:
    token = lambda name: subject_token(fold(check_nick(name)))  # noqa: E731
    assert token("Alice") == token("ＡＬＩＣＥ") == token("alice") == "alice"
    assert token("Straße") == token("STRASSE")
    assert token("小明") == "_5c0f__660e_" != token("小朋")
    assert token("a.b") != token("a_b") != token("a-b")
