"""Replies to text clients that are too long: cut in the middle, never at their essential end.

A text reply holds at most MAX_TEXT_REPLY bytes (the textbook server reads recvfrom(1024)).
What must survive a cut: the answer's first line (what it is) and last line (``sent to lobby``,
``... and 3 more``), the ``[room] nick:`` of a room line, and valid UTF-8 in any script.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.shared import limits
from roomcast.shared.text import ELLIPSIS, fit_lines, live_line, pack_reply, shorten, truncate_utf8
from tests.unit.hubwire import UNTRUSTED, Hub, TextPeer

PROPERTY = settings(max_examples=200, deadline=None)
UNICODE = st.text(alphabet=st.characters(codec="utf-8"))
#: Multi-byte scripts: CJK (3 bytes), emoji (4 bytes), accented Latin (2 bytes), mixed.
SCRIPTS = ("聊天室的消息", "🎉😀👍", "éàü", "a聊🎉é")
LIMIT = limits.MAX_TEXT_REPLY


def _size(lines: list[str]) -> int:
    return len("\n".join(lines).encode())


# --- shorten --------------------------------------------------------------------------------------


def test_a_line_that_fits_is_kept_whole() -> None:
    assert shorten("sent to lobby", 13) == "sent to lobby"


def test_a_long_line_keeps_its_start_and_its_end_around_an_ellipsis() -> None:
    line = "[lobby] bob: " + "x" * 2000 + " THE END"
    cut = shorten(line, 100)
    assert len(cut.encode()) == 100
    assert cut.startswith("[lobby] bob: xxx") and cut.endswith("xx THE END")
    assert cut.count(ELLIPSIS) == 1


def test_multi_byte_scripts_are_cut_between_characters_right_at_the_limit() -> None:
    for script in SCRIPTS:
        line = script * 400
        for limit in range(LIMIT - 8, LIMIT + 1):
            cut = shorten(line, limit)
            data = cut.encode()
            assert len(data) <= limit
            assert len(data) > limit - 4, "at most one partial character is given up"
            head, tail = cut.split(ELLIPSIS)
            assert line.startswith(head) and line.endswith(tail)


@PROPERTY
@given(text=UNICODE, limit=st.integers(min_value=0, max_value=200))
def test_shorten_stays_within_the_limit_and_keeps_whole_characters(text: str, limit: int) -> None:
    cut = shorten(text, limit)
    assert len(cut.encode()) <= limit
    if len(text.encode()) <= limit:
        assert cut == text
    elif limit >= 5:
        # The mark is the ellipsis the text does not have (where it has its own, any of them).
        assert any(
            text.startswith(cut[:i]) and text.endswith(cut[i + 1 :])
            for i, char in enumerate(cut)
            if char == ELLIPSIS
        )
        assert len(cut.encode()) > limit - 4


# --- fit_lines: the answer ---------------------------------------------------------------------


def test_a_long_first_line_does_not_push_out_sent_to_lobby() -> None:
    answer = ["welcome " + "聊" * 400, "sent to lobby"]
    lines = fit_lines(answer, LIMIT)
    assert _size(lines) <= LIMIT
    assert lines[-1] == "sent to lobby"
    assert lines[0].startswith("welcome 聊") and ELLIPSIS in lines[0]


def test_a_long_listing_keeps_its_heading_and_its_last_line_and_says_what_was_cut() -> None:
    answer = ["40 rooms", *(f"room-{n:02d} (3) {'🎉' * 20}" for n in range(40)), "... and 9 more"]
    lines = fit_lines(answer, LIMIT)
    assert _size(lines) <= LIMIT
    assert lines[0] == "40 rooms" and lines[-1] == "... and 9 more"
    marker = lines[-2]
    kept = lines[1:-2]
    assert kept == answer[1 : 1 + len(kept)], "the lines between are kept from the start"
    assert marker == f"{ELLIPSIS} ({40 - len(kept)} lines cut)"
    assert _size([*lines[:-1], answer[1 + len(kept)], lines[-1]]) > LIMIT, "one more would not fit"


def test_two_huge_lines_share_the_limit() -> None:
    lines = fit_lines(["😀" * 500, "é" * 700], LIMIT)
    assert _size(lines) <= LIMIT
    assert all(ELLIPSIS in line for line in lines)
    assert min(len(line.encode()) for line in lines) > LIMIT // 2 - 8


@PROPERTY
@given(
    answer=st.lists(UNICODE, min_size=1, max_size=8),
    last=st.sampled_from(["sent to lobby", "left 聊天", "... and 7 more", "topic of 🎉 set"]),
    limit=st.integers(min_value=64, max_value=LIMIT),
)
def test_fit_lines_always_fits_and_keeps_a_short_last_line_whole(
    answer: list[str], last: str, limit: int
) -> None:
    lines = fit_lines([*answer, last], limit)
    assert _size(lines) <= limit
    assert lines[-1] == last


# --- pack_reply --------------------------------------------------------------------------------


def test_an_answer_over_the_limit_still_ends_with_its_confirmation() -> None:
    answer = [
        "welcome guest-1, you are in lobby",
        *(f"line {n} {'聊' * 30}" for n in range(30)),
        "sent to lobby",
    ]
    reply = pack_reply(["[lobby] bob: hi"], answer)
    assert len(reply) <= LIMIT
    lines = reply.decode("utf-8").split("\n")
    assert answer[0] in lines and lines[-1] == "sent to lobby"
    assert any(line.endswith(" lines cut)") for line in lines)


def test_a_room_line_too_long_for_the_reply_is_cut_in_its_middle_not_skipped() -> None:
    line = "[" + "房" * 32 + "] " + "名" * 21 + ": " + "话" * 333 + " END"  # a full body, over 1 KiB
    assert len(line.encode()) > LIMIT
    reply = pack_reply([line], [])
    assert len(reply) <= LIMIT
    shown = reply.decode("utf-8")
    assert shown.startswith("[" + "房" * 32 + "] " + "名" * 21 + ": 话")
    assert shown.endswith("话 END") and ELLIPSIS in shown


def test_older_lines_are_skipped_and_the_newest_long_one_cut() -> None:
    queued = ["[lobby] ann: hi", "[lobby] bob: " + "🎉" * 300]
    reply = pack_reply(queued, ["sent to lobby"], dropped=3)
    lines = reply.decode("utf-8").split("\n")
    assert len(reply) <= LIMIT
    assert lines[0] == "(4 earlier messages skipped)"
    assert lines[1].startswith("[lobby] bob: 🎉") and ELLIPSIS in lines[1]
    assert lines[-1] == "sent to lobby"


@PROPERTY
@given(
    queued=st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n")), max_size=30),
    answer=st.lists(UNICODE, max_size=5),
    limit=st.integers(min_value=100, max_value=LIMIT),
    dropped=st.integers(min_value=0, max_value=100),
)
def test_every_reply_is_valid_utf8_within_the_limit_and_ends_with_the_fitted_answer(
    queued: list[str], answer: list[str], limit: int, dropped: int
) -> None:
    reply = pack_reply(queued, answer, limit=limit, dropped=dropped)
    assert len(reply) <= limit
    text = reply.decode("utf-8")
    tail = "\n".join(fit_lines(answer, limit))
    assert text.endswith(tail)


def test_a_live_line_ends_with_a_newline_within_the_limit_and_keeps_its_end() -> None:
    line = ("[lobby] bob: " + "😀" * 300 + " bye").encode()
    live = live_line(line)
    assert len(live) <= LIMIT and live.endswith(b" bye\n")
    assert live.decode("utf-8").startswith("[lobby] bob: 😀")
    assert live_line(b"[lobby] bob: hi") == b"[lobby] bob: hi\n"


# --- the hub: a reply within an unvalidated address's budget -------------------------------------


def test_an_untrusted_one_byte_bad_line_still_gets_its_one_reply_within_3x() -> None:
    hub = Hub(UNTRUSTED)
    peer = TextPeer(hub, 40001)
    for bad in (b"\xff", b"\xff\xfe", "é".encode()[:1] * 7):
        [reply] = peer.send(bad)
        assert reply == truncate_utf8(b"error: a text line must be valid UTF-8", 3 * len(bad))
    assert hub.bytes_out[peer.address] <= 3 * hub.bytes_in[peer.address]
