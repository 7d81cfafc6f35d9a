"""How the terminal client shows names in any script: one colour per nick, whatever its case
or width, and the nick kept whole in its own coloured fragment."""

from __future__ import annotations

import re

from roomcast.client import render
from roomcast.shared import events


def test_a_nick_has_one_colour_in_every_case_and_width() -> None:
    assert render.nick_style("Straße") == render.nick_style("STRASSE") == render.nick_style("strasse")
    assert render.nick_style("ALICE") == render.nick_style("alice")
    assert render.nick_style("小明") == render.nick_style("小明")
    assert len({render.nick_style(f"user{n}") for n in range(50)}) > 1, "nicks get different colours"


def test_a_cjk_line_keeps_the_nick_whole_in_its_colour() -> None:
    line = events.Deliver(room="聊天", seq=1, nick="小明", body="你好，世界", ts=0.0)
    fragments = render.event_line(line)
    assert (render.nick_style("小明"), "小明") in fragments
    assert re.fullmatch(r"\d\d:\d\d \[聊天\] <小明> 你好，世界", render.plain(fragments))
    presence = events.Presence(room="聊天", seq=2, nick="小明", what="renamed", detail="李雷")
    assert render.plain(render.event_line(presence)).endswith("[聊天] * 小明 is now known as 李雷")
