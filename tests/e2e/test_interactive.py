"""The interactive client in a real terminal: ``roomcast`` runs in a detached tmux session and
the tests read the screen with ``tmux capture-pane``, while other clients talk to the same real
hub as subprocesses."""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tools.hubproc import BIN, HubProcess, running_hub
from tests.tools.processes import clean_env, end, run, spawn

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

#: Every wait in this module gives up after this long.
TIMEOUT = 20.0
PROMPT = "[lobby] alice> "


class Terminal:
    """One tmux server of our own (its own socket) with one 120x30 window."""

    def __init__(self, workdir: Path) -> None:
        # Neither the socket name nor tmux's arguments mention the client, so that a broad
        # ``pkill -f roomcast`` elsewhere cannot take the terminal down with the clients.
        self.socket_name = f"tty-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        # tmux itself wants a TERM; inside the pane it sets its own (what it emulates).
        # (from a clean environment: the client in the pane must not see ROOMCAST_* either)
        self.env = clean_env({"TERM": os.environ.get("TERM") or "xterm-256color"})
        self.socket_path: Path | None = None

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket_name, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, f"tmux {args[0]} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def start(self, hub: HubProcess, nick: str = "alice", *extra: str) -> None:
        """Run the client in the pane; afterwards the pane shows ``EXIT=<status>`` and whether
        the terminal settings are back as they were, and stays open to be read."""
        client = shlex.join(
            [str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", nick, "--room", "lobby", *extra]
        )
        script = self.workdir / f"{nick}.sh"
        script.write_text(
            f'before=$(stty -g); {client}; echo "EXIT=$?"; '
            '[ "$(stty -g)" = "$before" ] && echo TTY=restored; sleep 60\n'
        )
        self.tmux(
            "new-session", "-d", "-x", "120", "-y", "30", "-e", "NO_COLOR=1", "sh " + shlex.quote(str(script))
        )
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def screen(self) -> list[str]:
        return [line.rstrip() for line in self.tmux("capture-pane", "-p").splitlines()]

    def wait_for(self, wanted: str | Callable[[list[str]], bool]) -> list[str]:
        """The screen, once it shows ``wanted`` (a text, or a test of the lines)."""
        check = wanted if callable(wanted) else lambda lines: any(wanted in line for line in lines)
        deadline = time.monotonic() + TIMEOUT
        while True:
            lines = self.screen()
            if check(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {wanted!r}:\n" + "\n".join(lines))
            time.sleep(0.05)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-l", text)

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def client_pid(self) -> int:
        """The ``roomcast`` process running in the pane (a descendant of the pane's shell)."""
        client = str(BIN / "roomcast").encode()
        todo = [self.tmux("display-message", "-p", "#{pane_pid}").strip()]
        while todo:
            pid = todo.pop()
            if client in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return int(pid)
            todo += Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        raise AssertionError("no roomcast process in the pane")

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket_name, "kill-server"],
            capture_output=True,
            env=self.env,
            timeout=TIMEOUT,
        )
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)  # tmux leaves it behind


class Listener:
    """A long-lived piped client (stdin left open) whose output lines are collected."""

    def __init__(self, hub: HubProcess, nick: str) -> None:
        self.proc = spawn(
            [str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", nick, "--room", "lobby"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, wanted: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while not any(wanted in line for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"listener never saw {wanted!r}; saw {self.seen}") from None
        return next(line for line in self.seen if wanted in line)

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=TIMEOUT)
        finally:
            end(self.proc, signal.SIGKILL, readers=[self.reader])


def say(hub: HubProcess, nick: str, body: str) -> None:
    """``printf BODY | roomcast --nick NICK``: joins, says it, exits once the hub confirmed."""
    done = run(
        [str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", nick, "--room", "lobby"],
        input=body + "\n",
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr


def wait_for_log(hub: HubProcess, wanted: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while wanted not in hub.log():
        assert time.monotonic() < deadline, f"hub log never showed {wanted!r}:\n{hub.log()}"
        time.sleep(0.05)


def above_prompt(lines: list[str], line_end: str, typed: str) -> bool:
    """A line ending in ``line_end`` is on the screen above the prompt, which is the last line
    and shows ``typed`` intact."""
    shown = [line for line in lines if line]
    return shown[-1:] == [PROMPT + typed] and any(line.endswith(line_end) for line in shown[:-1])


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    yield term
    term.kill()


@pytest.fixture
def listener(hub: HubProcess) -> Iterator[Listener]:
    carol = Listener(hub, "carol")
    yield carol
    carol.close()


def test_incoming_line_appears_above_the_half_typed_line_which_is_then_sent(
    hub: HubProcess, terminal: Terminal, listener: Listener
) -> None:
    listener.wait_for("joined lobby")
    terminal.start(hub)
    terminal.wait_for("joined lobby")
    terminal.type("half a line")
    terminal.wait_for(lambda lines: PROMPT + "half a line" in lines)

    say(hub, "bob", "hello from bob")

    # Bob's line on a line of its own above the prompt, and the typed line intact on the last line.
    terminal.wait_for(lambda lines: above_prompt(lines, "[lobby] <bob> hello from bob", "half a line"))

    terminal.type(", now finished")
    terminal.press("Enter")
    assert listener.wait_for("<alice>").endswith("[lobby] <alice> half a line, now finished")
    terminal.wait_for(lambda lines: any(line.endswith("<alice> half a line, now finished") for line in lines))


def test_escape_sequences_received_are_shown_as_harmless_text(hub: HubProcess, terminal: Terminal) -> None:
    terminal.start(hub)
    terminal.wait_for("joined lobby")

    say(hub, "bob", "\x1b[2J\x1b[31mRED")

    lines = terminal.wait_for("<bob> \\x1b[2J\\x1b[31mRED")
    assert any("joined lobby" in line for line in lines), "the screen was not cleared"
    with_attributes = terminal.tmux("capture-pane", "-p", "-e")
    assert "\x1b[31m" not in with_attributes, "nothing turned the text red"


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        pytest.param("half a line", "C-c", id="ctrl-c"),
        pytest.param("", "C-d", id="ctrl-d"),
        pytest.param("/quit", "Enter", id="quit"),
        pytest.param("bye", "Enter", id="bye"),
    ],
)
def test_user_quit_exits_0_says_bye_and_restores_the_terminal(
    hub: HubProcess, terminal: Terminal, typed: str, key: str
) -> None:
    terminal.start(hub)
    terminal.wait_for("joined lobby")
    if typed:
        terminal.type(typed)
    terminal.press(key)

    terminal.wait_for("EXIT=0")
    terminal.wait_for("TTY=restored")
    wait_for_log(hub, "alice left the hub (quit)")


def test_sigterm_exits_0_and_says_bye(hub: HubProcess, terminal: Terminal) -> None:
    terminal.start(hub)
    terminal.wait_for("joined lobby")
    terminal.type("half a line")

    os.kill(terminal.client_pid(), signal.SIGTERM)

    terminal.wait_for("EXIT=0")
    terminal.wait_for("TTY=restored")
    wait_for_log(hub, "alice left the hub (quit)")


def test_nick_taken_exits_1_with_the_reason(hub: HubProcess, terminal: Terminal, listener: Listener) -> None:
    listener.wait_for("joined lobby")
    terminal.start(hub, "carol")

    lines = terminal.wait_for("EXIT=1")
    assert any("nick carol is taken" in line for line in lines)
    terminal.wait_for("TTY=restored")


def test_hub_restart_reconnects_and_keeps_the_typed_line(tmp_path: Path, terminal: Terminal) -> None:
    with running_hub(tmp_path) as first:
        terminal.start(first)
        terminal.wait_for("joined lobby")
        terminal.type("typed across")
        first.stop()
        terminal.wait_for(
            lambda lines: above_prompt(lines, "reconnecting (what you type is kept)", "typed across")
        )
    with running_hub(tmp_path, port=first.port) as second:
        terminal.wait_for(lambda lines: above_prompt(lines, "-- reconnected as alice", "typed across"))
        terminal.type(" a restart")
        terminal.press("Enter")
        terminal.wait_for("<alice> typed across a restart")
        wait_for_log(second, "alice joined the hub")
