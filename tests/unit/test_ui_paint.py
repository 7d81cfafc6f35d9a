"""The terminal UI paints what arrived once a frame, in its colours, without merging and parsing
prompt_toolkit's whole default style again at every frame (about 1.5 ms of CPU each, which a
busy room paid ten times a second)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest
import trio
import trio.testing
from prompt_toolkit import PromptSession
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.styles import style as style_module

from roomcast.client import render
from roomcast.client.options import parse_args
from roomcast.client.ui import FLOOD_FRAME, FRAME, TerminalChat
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


class _Terminal(io.StringIO):
    """A StringIO that says it is a terminal (so prompt_toolkit would ask it for the cursor)."""

    def isatty(self) -> bool:
        return True


async def _until(drawn: asyncio.Event, check: Callable[[], bool]) -> None:
    """Wait (bounded) for renders of the prompt until ``check()``."""
    async with asyncio.timeout(10):
        while not check():
            drawn.clear()
            await drawn.wait()


def test_a_frame_prints_above_the_running_prompt_and_draws_it_again_asking_nothing() -> None:
    """While the prompt runs, a frame erases it, prints the lines and draws it again below with
    the half-typed text: one render, and no cursor position request (``ESC [6n``) to the
    terminal, nor raw mode left and entered again, per frame."""
    options = parse_args(["--hub", "127.0.0.1:9999", "--nick", "me"], {"NO_COLOR": "1"})
    out = _Terminal()

    async def main() -> tuple[int, int]:
        with create_pipe_input() as typed, create_app_session(input=typed, output=Vt100_Output(out, _size)):
            chat = TerminalChat(options, options.hub_addresses)
            session: PromptSession[str] = PromptSession(erase_when_done=True)
            drawn = asyncio.Event()
            session.app.after_render += lambda _app: drawn.set()
            prompting = asyncio.create_task(session.prompt_async("me> "))
            typed.send_text("half")
            await _until(drawn, lambda: "half" in out.getvalue())
            renders, asked = session.app.render_counter, out.getvalue().count("\x1b[6n")
            for n in range(3):
                line = events.Deliver(room="hall", seq=n + 1, nick="bob", body=f"line {n}", ts=0.0)
                chat.show(render.event_line(line))
                await _until(drawn, lambda n=n: session.app.render_counter > renders + n)  # drawn again
            frames = session.app.render_counter - renders
            typed.send_text("\r")
            assert await prompting == "half"  # typed on, as if no line had come
            return frames, out.getvalue().count("\x1b[6n") - asked

    frames, asked = asyncio.run(main())
    assert (frames, asked) == (3, 0)
    shown = out.getvalue()
    last = shown.rindex("line 2")
    assert shown.index("line 0") < shown.index("line 1") < last < shown.rindex("me> ") < shown.rindex("half")


async def test_frames_batch_lines_and_stretch_while_the_room_floods(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A line after a quiet spell is painted at once; lines meanwhile wait for the next frame
    (FRAME later); while each frame brings more lines than the screen has rows, frames come
    FLOOD_FRAME apart; once the flood is over, FRAME again."""
    options = parse_args(["--hub", "127.0.0.1:9999", "--nick", "me"], {"NO_COLOR": "1"})
    with create_app_session(output=Vt100_Output(io.StringIO(), _size, term="xterm")):
        chat = TerminalChat(options, options.hub_addresses)
        painted: list[tuple[float, int]] = []
        paint_now = chat._paint_now

        def recorded() -> int:
            lines = paint_now()
            painted.append((trio.current_time(), lines))
            return lines

        chat._paint_now = recorded  # type: ignore[method-assign]
        chat.paint_wanted = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chat._paint)
            start = trio.current_time()

            async def show_at(when: float, count: int = 1) -> None:
                await trio.sleep_until(start + when)
                for _ in range(count):
                    chat.show(render.notice("a line"))

            await show_at(0.0)
            await show_at(0.03)
            await show_at(0.06)  # these two: the next frame
            await show_at(0.5, _size().rows + 1)  # a flood: more than the screen at once
            await show_at(0.55)  # waits for FLOOD_FRAME
            await show_at(0.85, 2)  # a frame of 2: FRAME again after it
            await show_at(0.87)
            await trio.sleep_until(start + 2.0)
            nursery.cancel_scope.cancel()
    times = [(round(when - start, 3), lines) for when, lines in painted if lines]
    flood = _size().rows + 1
    assert FRAME < FLOOD_FRAME < 0.3
    assert times == [(0.0, 1), (FRAME, 2), (0.5, flood), (0.5 + FLOOD_FRAME, 1), (0.85, 2), (0.85 + FRAME, 1)]
