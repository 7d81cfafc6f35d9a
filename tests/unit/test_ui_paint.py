"""The terminal UI paints what arrived once a frame, in its colours, without merging and parsing
prompt_toolkit's whole default style again at every frame (about 1.5 ms of CPU each, which a
busy room paid ten times a second)."""

from __future__ import annotations

import io

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.styles import style as style_module

from roomcast.client import render
from roomcast.client.options import parse_args
from roomcast.client.ui import TerminalChat
from roomcast.shared import events


def paint_frames(color: bool, frames: int) -> str:
    options = parse_args(["--hub", "127.0.0.1:9999", "--nick", "me"], {} if color else {"NO_COLOR": "1"})
    out = io.StringIO()
    with create_app_session(output=Vt100_Output(out, _size, term="xterm")):
        chat = TerminalChat(options, options.hub_addresses)
        for n in range(frames):
            line = events.Deliver(room="hall", seq=n + 1, nick="bob", body=f"line {n}", ts=0.0)
            chat.show(render.event_line(line))  # no painter task yet: painted at once
    return out.getvalue()


def _size() -> Size:
    return Size(rows=24, columns=80)


@pytest.mark.parametrize("color", [True, False])
def test_each_frame_shows_its_lines(color: bool) -> None:
    shown = paint_frames(color, 3)
    for n in range(3):
        assert f"line {n}" in shown
    if color:
        assert "\x1b[0;36m[hall] " in shown  # the room in its colour (STYLE)
    else:
        assert "[hall] <bob> line 0" in shown and "36m" not in shown


def test_no_frame_parses_the_style_again(monkeypatch: pytest.MonkeyPatch) -> None:
    paint_frames(True, 1)  # whatever is built once
    built: list[object] = []
    real = style_module.Style.__init__

    def counted(self: style_module.Style, *args: object, **kwargs: object) -> None:
        built.append(self)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(style_module.Style, "__init__", counted)
    shown = paint_frames(True, 20)
    assert "line 19" in shown
    assert built == []
