"""The interactive client with a CJK nick in a real terminal (tmux): wide characters take two
columns, lines stay aligned (each starts at the left edge, a long one wraps where the terminal
says), every nick keeps its colour, and the half-typed line stays intact below them."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.utils import get_cwidth

from roomcast.client import render
from tests.e2e.test_interactive import TIMEOUT, Terminal
from tests.tools.hubproc import BIN, HubProcess
from tests.tools.liveproc import clean_env

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

WIDTH = 120
PROMPT = "[聊天] 小明> "
#: SGR foreground codes of prompt_toolkit's ANSI colour names.
SGR = {"ansired": 31, "ansigreen": 32, "ansiyellow": 33, "ansiblue": 34, "ansimagenta": 35, "ansicyan": 36}
SGR |= {f"ansibright{name[4:]}": code + 60 for name, code in SGR.items()}


class ColourTerminal(Terminal):
    """The tmux terminal of test_interactive, with colours on and a CJK nick and room."""

    def start_colour(self, hub: HubProcess, nick: str, room: str) -> None:
        client = shlex.join([str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", nick, "--room", room])
        script = self.workdir / "wide.sh"
        script.write_text(f'{client}; echo "EXIT=$?"; sleep 60\n')
        self.tmux(
            "new-session",
            "-d",
            "-x",
            str(WIDTH),
            "-y",
            "30",
            "-e",
            "LANG=C.UTF-8",
            "sh " + shlex.quote(str(script)),
        )
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def cursor(self) -> tuple[int, int]:
        x, y = self.tmux("display-message", "-p", "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[ColourTerminal]:
    term = ColourTerminal(tmp_path)
    yield term
    term.kill()


def say(hub: HubProcess, nick: str, *lines: str) -> None:
    """``roomcast --nick NICK --room 聊天`` in a pipe: says the lines and exits once confirmed."""
    done = subprocess.run(
        [str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", nick, "--room", "聊天"],
        input="".join(line + "\n" for line in lines).encode(),
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr.decode()


def colour_of(nick: str) -> int:
    return SGR[render.nick_style(nick).removeprefix("fg:")]


def test_a_cjk_nick_sees_wide_lines_aligned_in_colour_with_its_typed_line_intact(
    hub: HubProcess, terminal: ColourTerminal
) -> None:
    terminal.start_colour(hub, "小明", "聊天")
    terminal.wait_for("joined 聊天")
    typed = "半行字 half"
    terminal.type(typed)
    terminal.wait_for(lambda lines: PROMPT + typed in lines)

    long = "长" * 70  # 140 columns: wraps once in a 120-column terminal
    say(hub, "李雷", "你好世界", long)

    def shown(lines: list[str]) -> bool:
        rows = [line for line in lines if line]
        return rows[-1:] == [PROMPT + typed] and any(row.endswith("* 李雷 left (quit)") for row in rows)

    lines = [line for line in terminal.wait_for(shown) if line]
    hello = next(n for n, line in enumerate(lines) if "<李雷> 你好世界" in line)
    assert re.fullmatch(r"\d\d:\d\d \[聊天\] <李雷> 你好世界", lines[hello]), lines[hello]
    # The long line starts at the left edge, fills the row to exactly 120 columns (60 + the
    # head), and the rest goes on the next row: nothing overwritten, nothing shifted.
    first, rest = lines[hello + 1], lines[hello + 2]
    assert re.fullmatch(r"\d\d:\d\d \[聊天\] <李雷> 长+", first), first
    head = get_cwidth(first.rstrip("长"))
    assert head + 2 * first.count("长") in (WIDTH, WIDTH - 1)
    assert rest == "长" * (70 - first.count("长")), rest
    assert lines[hello + 3].endswith("[聊天] * 李雷 left (quit)")
    assert lines[hello + 4 :] == [PROMPT + typed], "the typed line is intact right below"
    # The cursor sits after the typed text: the prompt's width counted in columns, not characters.
    x, _y = terminal.cursor()
    assert x == get_cwidth(PROMPT + typed) == len(PROMPT + typed) + 7  # 7 wide characters

    # Each nick in its own colour, the same on every line.
    coloured = terminal.tmux("capture-pane", "-p", "-e")
    li_lei = re.findall(r"\x1b\[([0-9;]*)m李雷", coloured)
    assert len(li_lei) == 4, li_lei  # joined, two lines, left
    assert all(str(colour_of("李雷")) in codes.split(";") for codes in li_lei), li_lei

    terminal.type("，完")
    terminal.press("Enter")
    mine = terminal.wait_for(lambda lines: any(line.endswith("<小明> 半行字 half，完") for line in lines))
    assert mine[-1] == "" or PROMPT in "\n".join(mine)
    coloured = terminal.tmux("capture-pane", "-p", "-e")
    assert re.search(rf"\x1b\[(?:[0-9;]*;)?{colour_of('小明')}(?:;[0-9;]*)?m小明", coloured), coloured
