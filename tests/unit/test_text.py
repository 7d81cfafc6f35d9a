"""The plain UTF-8 dialect: commands, showing received text safely, and text replies."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.shared import events, limits
from roomcast.shared.text import (
    HELP_LINES,
    Help,
    Leave,
    Live,
    TextCommandError,
    format_event,
    pack_reply,
    parse_line,
    shorten,
    strip_line,
    truncate_utf8,
    visible,
)

PROPERTY = settings(max_examples=200, deadline=None)
UNICODE = st.text(alphabet=st.characters(codec="utf-8"))
SKIP_LINE = re.compile(rb"^\((\d+) earlier messages skipped\)$")


def _error(line: str, room: str = "lobby") -> str:
    with pytest.raises(TextCommandError) as info:
        parse_line(line, room)
    return str(info.value)


# --- parse_line: each command ----------------------------------------------------------------


def test_plain_line_is_said_to_the_current_room() -> None:
    assert parse_line("hello there", "lobby") == events.Say(id=0, room="lobby", body="hello there")


def test_plain_non_ascii_line_is_said_unchanged() -> None:
    assert parse_line("héllo 世界 🎉", "lobby") == events.Say(id=0, room="lobby", body="héllo 世界 🎉")


def test_double_slash_escapes_a_line_starting_with_slash() -> None:
    assert parse_line("//etc/passwd is a path", "lobby") == events.Say(
        id=0, room="lobby", body="/etc/passwd is a path"
    )


def test_join_names_the_room() -> None:
    assert parse_line("/join rust-lang", "lobby") == events.Join(id=0, room="rust-lang")


def test_join_works_with_no_current_room() -> None:
    assert parse_line("/join lobby", "") == events.Join(id=0, room="lobby")


def test_command_names_are_case_insensitive() -> None:
    assert parse_line("/JOIN lobby", "") == events.Join(id=0, room="lobby")
    assert parse_line("/Quit", "") == Leave()


def test_spaces_around_the_argument_are_ignored() -> None:
    assert parse_line("/join   lobby  ", "") == events.Join(id=0, room="lobby")


def test_part_without_argument_leaves_the_current_room() -> None:
    assert parse_line("/part", "lobby") == events.Part(id=0, room="lobby")


def test_part_with_argument_leaves_that_room() -> None:
    assert parse_line("/part games", "lobby") == events.Part(id=0, room="games")


def test_nick_names_the_new_nick() -> None:
    assert parse_line("/nick alice_2", "lobby") == events.Nick(id=0, nick="alice_2")


def test_who_without_argument_lists_the_current_room() -> None:
    assert parse_line("/who", "lobby") == events.Who(id=0, room="lobby")


def test_who_with_argument_lists_that_room() -> None:
    assert parse_line("/who games", "lobby") == events.Who(id=0, room="games")


def test_rooms_lists_rooms_even_with_no_current_room() -> None:
    assert parse_line("/rooms", "") == events.Rooms(id=0)


def test_msg_sends_the_rest_of_the_line_privately() -> None:
    assert parse_line("/msg bob hi there, bob", "") == events.Msg(id=0, to="bob", body="hi there, bob")


def test_me_is_an_action_line_to_the_current_room() -> None:
    assert parse_line("/me waves", "lobby") == events.Say(id=0, room="lobby", body="waves", action=True)


def test_topic_without_text_asks_for_the_topic() -> None:
    assert parse_line("/topic", "lobby") == events.Topic(id=0, room="lobby", text="", set=False)


def test_topic_with_text_sets_the_topic() -> None:
    assert parse_line("/topic all about trio", "lobby") == events.Topic(
        id=0, room="lobby", text="all about trio", set=True
    )


def test_history_without_count_asks_for_twenty() -> None:
    assert parse_line("/history", "lobby") == events.History(id=0, room="lobby", count=20)


def test_history_with_count_asks_for_that_many() -> None:
    assert parse_line("/history 5", "lobby") == events.History(id=0, room="lobby", count=5)


def test_history_count_is_capped_at_what_a_room_keeps() -> None:
    assert parse_line("/history 99999", "lobby") == events.History(
        id=0, room="lobby", count=limits.HISTORY_PER_ROOM
    )


def test_stats_asks_for_the_hub_summary() -> None:
    assert parse_line("/stats", "") == events.Stats(id=0)


def test_help_asks_for_the_command_list() -> None:
    assert parse_line("/help", "") == Help()


def test_help_lines_mention_every_command() -> None:
    listed = "\n".join(HELP_LINES)
    for command in ("/join", "/part", "/nick", "/who", "/rooms", "/msg", "/me", "/topic", "/history"):
        assert command in listed
    for command in ("/stats", "/live", "/help", "bye"):
        assert command in listed


@pytest.mark.parametrize(("arg", "on"), [("on", True), ("off", False), ("ON", True), ("Off", False)])
def test_live_switches_live_mode(arg: str, on: bool) -> None:
    assert parse_line(f"/live {arg}", "") == Live(on=on)


def test_quit_leaves() -> None:
    assert parse_line("/quit", "lobby") == Leave()


def test_bye_alone_leaves() -> None:
    assert parse_line("bye", "lobby") == Leave()
    assert parse_line("bye", "") == Leave()


def test_bye_within_a_line_is_just_chat() -> None:
    assert parse_line("bye all", "lobby") == events.Say(id=0, room="lobby", body="bye all")
    assert parse_line("Bye", "lobby") == events.Say(id=0, room="lobby", body="Bye")


def test_requests_come_back_numbered_zero() -> None:
    for line in (
        "/join a",
        "/part",
        "/nick b",
        "/who",
        "/rooms",
        "/msg b x",
        "/me x",
        "/topic",
        "/stats",
        "x",
    ):
        command = parse_line(line, "lobby")
        assert isinstance(command, events.REQUESTS)
        assert command.id == 0


# --- parse_line: errors say what to type --------------------------------------------------------


def test_unknown_command_names_it_and_points_at_help() -> None:
    message = _error("/dance now")
    assert "/dance" in message
    assert "/help" in message


def test_lone_slash_is_an_unknown_command() -> None:
    assert "/help" in _error("/")


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("/join", "/join ROOM"),
        ("/nick", "/nick NAME"),
        ("/msg", "/msg NICK TEXT"),
        ("/msg bob", "/msg NICK TEXT"),
        ("/me", "/me TEXT"),
        ("/history many", "/history [N]"),
        ("/history -3", "/history [N]"),
        ("/live", "/live on|off"),
        ("/live maybe", "/live on|off"),
    ],
)
def test_missing_or_extra_arguments_show_the_usage(line: str, usage: str) -> None:
    assert f"usage: {usage}" in _error(line)


@pytest.mark.parametrize(
    "line",
    [
        "/join bad!room",
        "/join -dash",
        "/part no#room",
        "/who b@d",
        "/nick h☃llo",
        "/msg b*b hi",
        "/join 聊天!",
    ],
)
def test_bad_names_are_refused_with_the_naming_rule(line: str) -> None:
    assert limits.NAME_RULE in _error(line)


@pytest.mark.parametrize(
    ("line", "limit"),
    [("/join " + "r" * (limits.MAX_ROOM + 1), limits.MAX_ROOM), ("/nick " + "n" * 25, limits.MAX_NICK)],
)
def test_over_long_names_are_refused_with_their_limit(line: str, limit: int) -> None:
    assert f"the limit is {limit}" in _error(line)


@pytest.mark.parametrize("line", ["hello", "//x", "/part", "/who", "/me waves", "/topic", "/history"])
def test_commands_needing_a_room_say_to_join_first_when_in_none(line: str) -> None:
    assert "/join ROOM" in _error(line, room="")


@pytest.mark.parametrize(
    "line",
    [
        "x" * (limits.MAX_BODY + 1),
        "é" * (limits.MAX_BODY // 2 + 1),
        "/me " + "x" * (limits.MAX_BODY + 1),
        "/msg bob " + "x" * (limits.MAX_BODY + 1),
        "/topic " + "x" * (limits.MAX_BODY + 1),
        "//" + "x" * (limits.MAX_BODY + 1),
    ],
)
def test_over_long_body_is_refused_with_its_size_and_the_limit(line: str) -> None:
    message = _error(line)
    assert f"the limit is {limits.MAX_BODY}" in message


def test_body_of_exactly_max_body_bytes_is_accepted() -> None:
    body = "€" * (limits.MAX_BODY // 3) + "x" * (limits.MAX_BODY % 3)
    assert len(body.encode()) == limits.MAX_BODY
    assert parse_line(body, "lobby") == events.Say(id=0, room="lobby", body=body)


def test_history_with_a_superscript_digit_shows_the_usage() -> None:
    assert "usage: /history [N]" in _error("/history ²")


@PROPERTY
@given(line=UNICODE, room=st.sampled_from(["", "lobby"]))
def test_any_line_parses_or_raises_text_command_error(line: str, room: str) -> None:
    try:
        parse_line(line, room)
    except TextCommandError as error:
        assert str(error)


# --- strip_line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ("hi\n", "hi"),
        ("hi\r\n", "hi"),
        ("hi\r", "hi"),
        ("hi", "hi"),
        ("", ""),
        ("\n", ""),
        ("bye\r\n", "bye"),
    ],
)
def test_strip_line_removes_one_line_ending(raw: str, line: str) -> None:
    assert strip_line(raw) == line


def test_strip_line_keeps_other_whitespace() -> None:
    assert strip_line("  hi  \n") == "  hi  "
    assert strip_line("hi\n\n") == "hi\n"


# --- visible ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("ding\x07", "ding\\x07"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("\x85", "\\x85"),  # C1 NEL
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("a\u200fb", "a\\u200fb"),  # right-to-left mark
        ("tab\there", "tab\\x09here"),
        ("line\nbreak", "line\\x0abreak"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("no\u00a0break", "no break"),  # other spaces shown as a plain space
        ("lone\ud800", "lone\\ud800"),  # surrogate
        ("pua\ue000", "pua\\ue000"),  # private use
    ],
)
def test_visible_turns_control_characters_into_escapes(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize("text", ["hello world", "héllo wörld", "日本語のテキスト", "emoji 🎉👍", "", "a  b"])
def test_visible_leaves_normal_text_untouched(text: str) -> None:
    assert visible(text) == text


@PROPERTY
@given(text=st.text())
def test_visible_output_is_printable_or_space(text: str) -> None:
    assert all(ch.isprintable() or ch == " " for ch in visible(text))


@PROPERTY
@given(text=st.text())
def test_visible_output_has_no_escape_or_bidi_character(text: str) -> None:
    shown = visible(text)
    assert "\x1b" not in shown
    assert not any(0x80 <= ord(ch) < 0xA0 for ch in shown)
    assert not any(ch in shown for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@PROPERTY
@given(text=st.text(alphabet=st.characters(exclude_categories=["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"])))
def test_visible_keeps_printable_text_and_ascii_spaces(text: str) -> None:
    shown = visible(text)
    assert len(shown) == len(text)
    assert all(a == b or (b == " " and a.isspace()) for a, b in zip(text, shown, strict=True))


# --- truncate_utf8 ------------------------------------------------------------------------------


def test_truncate_keeps_short_data_whole() -> None:
    assert truncate_utf8(b"hello", 5) == b"hello"
    assert truncate_utf8(b"hello", 100) == b"hello"


def test_truncate_cuts_ascii_at_the_limit() -> None:
    assert truncate_utf8(b"hello", 3) == b"hel"
    assert truncate_utf8(b"hello", 0) == b""


@pytest.mark.parametrize(("limit", "kept"), [(1, ""), (2, "é"), (3, "é"), (4, "éé"), (5, "éé")])
def test_truncate_backs_up_to_a_character_boundary(limit: int, kept: str) -> None:
    assert truncate_utf8("ééé".encode(), limit) == kept.encode()


def test_truncate_never_splits_a_four_byte_character() -> None:
    data = "a🎉".encode()
    assert [truncate_utf8(data, n) for n in range(6)] == [b"", b"a", b"a", b"a", b"a", data]


@PROPERTY
@given(text=UNICODE, limit=st.integers(min_value=0, max_value=200))
def test_truncate_respects_the_limit_and_never_cuts_inside_a_character(text: str, limit: int) -> None:
    data = text.encode()
    cut = truncate_utf8(data, limit)
    assert len(cut) <= limit
    assert data.startswith(cut)
    assert text.startswith(cut.decode("utf-8"))  # valid UTF-8 and whole characters
    assert len(cut) > limit - 4 or cut == data  # and drops at most one partial character


# --- pack_reply -----------------------------------------------------------------------------------


def _lines(reply: bytes) -> list[str]:
    return reply.decode("utf-8").split("\n")


def test_reply_holds_the_queued_lines_then_the_answer() -> None:
    reply = pack_reply(["[lobby] ann: hi", "[lobby] bob: yo"], ["sent to lobby"])
    assert _lines(reply) == ["[lobby] ann: hi", "[lobby] bob: yo", "sent to lobby"]


def test_reply_with_nothing_queued_is_the_answer() -> None:
    assert pack_reply([], ["a", "b"]) == b"a\nb"


def test_reply_with_no_answer_is_the_queued_lines() -> None:
    assert pack_reply(["x", "y"], []) == b"x\ny"


def test_reply_with_nothing_at_all_is_empty() -> None:
    assert pack_reply([], []) == b""


def test_full_queue_keeps_the_newest_lines_and_says_how_many_were_skipped() -> None:
    queued = [f"[lobby] bob: message number {i:03d}" for i in range(100)]
    reply = pack_reply(queued, ["sent to lobby"], limit=300)
    lines = _lines(reply)
    assert len(reply) <= 300
    assert lines[-1] == "sent to lobby"
    match = SKIP_LINE.match(lines[0].encode())
    assert match is not None
    kept = lines[1:-1]
    assert kept == queued[-len(kept) :]
    assert int(match.group(1)) == len(queued) - len(kept)


def test_skip_count_includes_lines_dropped_before() -> None:
    reply = pack_reply(["one", "two"], ["ok"], dropped=7)
    assert _lines(reply) == ["(7 earlier messages skipped)", "one", "two", "ok"]


def test_answer_of_exactly_the_limit_is_kept_whole() -> None:
    answer = ["x" * limits.MAX_TEXT_REPLY]
    assert pack_reply(["queued"], answer) == answer[0].encode()


def test_answer_near_the_limit_with_queued_lines_stays_within_the_limit() -> None:
    reply = pack_reply(["[lobby] bob: hi"], ["x" * 1000])
    assert len(reply) <= limits.MAX_TEXT_REPLY


def test_huge_skip_count_stays_within_the_limit() -> None:
    # 16 lines of 10 bytes with the 2-byte answer fill the limit up to exactly the reserve.
    queued = ["y" * 9] * 200
    reply = pack_reply(queued, ["ok"], limit=195, dropped=10**6)
    assert len(reply) <= 195


_QUEUED_LINES = st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n")), max_size=60)


def _expected_reply(queued: list[str], answer: list[str], kept: int, dropped: int) -> bytes:
    """The reply that keeps the newest ``kept`` queued lines."""
    skipped = len(queued) - kept + dropped
    parts = [f"({skipped} earlier messages skipped)"] if skipped else []
    parts += queued[len(queued) - kept :]
    tail = "\n".join(answer)
    if tail:
        parts.append(tail)
    return "\n".join(parts).encode()


@PROPERTY
@given(
    queued=_QUEUED_LINES,
    answer=st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=10), max_size=4),
    limit=st.integers(min_value=200, max_value=limits.MAX_TEXT_REPLY),
    dropped=st.integers(min_value=0, max_value=1000),
)
def test_reply_with_a_short_answer_fits_and_keeps_the_answer_and_the_newest_lines(
    queued: list[str], answer: list[str], limit: int, dropped: int
) -> None:
    # A short answer (at most 4 lines of 10 characters, 163 bytes) leaves room for the skip
    # line.
    reply = pack_reply(queued, answer, limit=limit, dropped=dropped)
    assert len(reply) <= limit
    reply.decode("utf-8")
    matches = [k for k in range(len(queued) + 1) if _expected_reply(queued, answer, k, dropped) == reply]
    if not matches and queued:  # the newest line, too long to fit whole, cut in its middle
        cut = [*queued[:-1], ""]
        for size in range(limit + 1):
            cut[-1] = shorten(queued[-1], size)
            if _expected_reply(cut, answer, 1, dropped) == reply:
                return
    assert matches, "reply is not skip line + newest queued lines + answer"
    tail = "\n".join(answer).encode()
    if queued and len(tail) + len(queued[-1].encode()) + 1 + 40 <= limit:
        assert max(matches) >= 1, "the newest queued line fitted but was skipped"


# --- format_event ---------------------------------------------------------------------------------


def _deliver(**fields: object) -> events.Deliver:
    base: dict[str, object] = {"room": "lobby", "seq": 1, "nick": "bob", "body": "hi", "ts": 0.0}
    return events.Deliver(**(base | fields))  # type: ignore[arg-type]


def _presence(what: str, detail: str = "") -> events.Presence:
    return events.Presence(room="lobby", seq=1, nick="bob", what=what, detail=detail)


def test_room_line_shows_room_nick_and_body() -> None:
    assert format_event(_deliver()) == "[lobby] bob: hi"


def test_action_line_shows_a_star() -> None:
    assert format_event(_deliver(body="waves", action=True)) == "[lobby] * bob waves"


def test_private_message_shows_private() -> None:
    assert format_event(_deliver(room="")) == "[private] bob: hi"


def test_private_action_shows_private_and_a_star() -> None:
    assert format_event(_deliver(room="", body="nods", action=True)) == "[private] * bob nods"


def test_body_with_control_characters_is_shown_escaped() -> None:
    assert format_event(_deliver(body="\x1b[31mred\u202e")) == "[lobby] bob: \\x1b[31mred\\u202e"
    assert format_event(_deliver(body="\x07", action=True)) == "[lobby] * bob \\x07"


def test_join_presence_shows_joined() -> None:
    assert format_event(_presence("joined")) == "[lobby] * bob joined"


def test_leave_presence_shows_the_reason() -> None:
    assert format_event(_presence("left", "timeout")) == "[lobby] * bob left (timeout)"


def test_rename_presence_shows_the_new_nick() -> None:
    assert format_event(_presence("renamed", "robert")) == "[lobby] * bob is now known as robert"


def test_topic_presence_shows_the_new_topic_escaped() -> None:
    assert format_event(_presence("topic", "news\x1b")) == "[lobby] * bob set the topic: news\\x1b"


def test_leave_reason_with_control_characters_is_shown_escaped() -> None:
    assert format_event(_presence("left", "\x1b]0;pwned\x07")) == "[lobby] * bob left (\\x1b]0;pwned\\x07)"


@pytest.mark.parametrize(("what", "detail"), [("\x1b[2J", ""), ("renamed", "\x1b[2J")])
def test_presence_fields_from_the_wire_cannot_drive_the_terminal(what: str, detail: str) -> None:
    assert "\x1b" not in format_event(_presence(what, detail))


@PROPERTY
@given(
    body=UNICODE.map(lambda s: s.encode()[: limits.MAX_BODY].decode("utf-8", "ignore")), action=st.booleans()
)
def test_formatted_delivery_is_printable_or_space(body: str, action: bool) -> None:
    assert all(ch.isprintable() or ch == " " for ch in format_event(_deliver(body=body, action=action)))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("/join my room", "room name 'my room' contains a space"),
        ("/nick 小 明", "nick '小 明' contains a space (U+0020 SPACE)"),
        ("/join 聊\u200b天", "contains the invisible character U+200B ZERO WIDTH SPACE"),
        ("/nick a\u202eb", "contains the bidi control U+202E RIGHT-TO-LEFT OVERRIDE"),
    ],
)
def test_a_name_with_a_space_or_unseen_character_is_refused_naming_it(line: str, problem: str) -> None:
    assert problem in _error(line)


def test_names_in_any_script_work_in_every_command() -> None:
    assert parse_line("/join 聊天", "") == events.Join(id=0, room="聊天")
    assert parse_line("/join #rust", "") == events.Join(id=0, room="#rust")
    assert parse_line("/nick 小明", "聊天") == events.Nick(id=0, nick="小明")
    assert parse_line("/msg 小明 你好 世界", "聊天") == events.Msg(id=0, to="小明", body="你好 世界")
    assert parse_line("/who 聊天", "") == events.Who(id=0, room="聊天")
    assert parse_line("/part 聊天", "lobby") == events.Part(id=0, room="聊天")
    assert parse_line("/nick ＭＩＮＧ", "") == events.Nick(id=0, nick="MING"), "full width is mapped"
