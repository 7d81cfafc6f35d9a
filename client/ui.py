"""The interactive terminal client: room lines appear above the line being typed.

prompt_toolkit owns the terminal (line editing, Ctrl-C and Ctrl-D, putting the terminal back as
it was) and needs asyncio; the link runs on trio.  So asyncio is the host loop and trio runs
inside it in guest mode.  Typed lines cross to trio through a bounded memory channel, fed via
the trio token; what trio shows goes out once a frame: the prompt erased, the lines printed,
and the prompt drawn again below them with the half-typed text intact.  Nothing received is
printed raw: :mod:`client.render` makes control characters visible and prompt_toolkit escapes
the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import trio
from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, get_app_or_none, get_app_session, run_in_terminal
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.renderer import print_formatted_text as print_fragments
from prompt_toolkit.styles import Style, default_ui_style, merge_styles

from roomcast.client import render
from roomcast.client.chat import ChatSession
from roomcast.client.options import ClientOptions
from roomcast.client.runner import Address, LinkRunner, open_hubs_socket
from roomcast.shared import limits
from roomcast.shared.link import HubLink, LinkState

if TYPE_CHECKING:
    import outcome

#: Lines typed (or pasted) ahead of the trio side taking them.
TYPED_AHEAD = 256
#: On quit, how long lines still on their way to the hub may take before the client says bye.
QUIT_DRAIN = 2.0
#: The screen is redrawn at most this often: lines that arrive meanwhile are printed together,
#: so a busy room costs one redraw of the prompt per frame, not one per line.
FRAME = 0.1
#: While a room floods (each frame brings more lines than the screen has rows, so it scrolls by
#: more than a page and no line stays readable), frames come this far apart instead: the
#: screen ends the same, with fewer redraws of the prompt (each about a millisecond of CPU).
FLOOD_FRAME = 0.25
#: The end of a line shown, as a fragment.
NEWLINE = ("", "\n")
#: Signals that end the client as /quit does.  While the prompt has the terminal, Ctrl-C is a
#: key press (raw mode), not a signal; these cover ``kill`` and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

STYLE = Style.from_dict(
    {
        "time": "ansibrightblack",
        "room": "ansicyan",
        "history": "italic",
        "notice": "ansibrightblack",
        "error": "ansired bold",
        "prompt": "bold",
    }
)
#: STYLE over prompt_toolkit's own, merged once.  ``print_formatted_text(style=...)`` merges
#: and parses them all again on every call: about 1.5 ms of CPU a frame, which a room at a few
#: thousand lines a second paid at every frame.
PAINT_STYLE = merge_styles([default_ui_style(), STYLE])


def run_interactive(options: ClientOptions) -> int:
    """Chat in the terminal until the user quits (0) or the link gives up (1)."""
    hub = options.hub_addresses
    return asyncio.run(TerminalChat(options, hub).run())


def _not_started(request: Any) -> None:
    raise RuntimeError(f"{request!r} submitted before the link runs")


class TerminalChat:
    """One interactive session: the prompt on the asyncio side, the link on the trio side.

    Both sides run on the main thread.  The asyncio side only reads ``chat`` (for the prompt)
    and reaches trio only through ``token.run_sync_soon``; the trio side owns everything else.
    """

    def __init__(self, options: ClientOptions, hub: tuple[Address, ...]) -> None:
        self.options = options
        self.hub = hub
        self.depth = None if options.color else ColorDepth.MONOCHROME
        self.chat = ChatSession(
            submit=_not_started, show=self.show, nick=options.nick, history=options.history
        )
        self.token: trio.lowlevel.TrioToken | None = None
        self.stopping = False
        #: Lines shown since the last frame, and what wakes the painter (once trio runs).
        self.unpainted: list[tuple[str, str]] = []
        self.unpainted_lines = 0
        self.paint_wanted: trio.Event | None = None
        self.started = asyncio.Event()
        self.typed_send, self.typed_receive = trio.open_memory_channel[str](TYPED_AHEAD)

    # --- asyncio side -------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.stop)
        done: asyncio.Future[outcome.Outcome[int]] = loop.create_future()
        trio.lowlevel.start_guest_run(
            self._trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
            host_uses_signal_set_wakeup_fd=True,  # asyncio's signal handlers set the wakeup fd
        )
        try:
            with patch_stdout():
                prompting = asyncio.create_task(self._prompt_loop())
                prompting.add_done_callback(lambda _: self.stop())  # however the prompt ends
                try:
                    result = await done  # trio ends on quit, on a stop signal, or when the link gives up
                finally:
                    prompting.cancel()
                    await asyncio.wait([prompting])
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
        if not prompting.cancelled():
            prompting.result()  # the prompt crashed: show why
        return result.unwrap()

    async def _prompt_loop(self) -> None:
        await self.started.wait()
        # The typed line is erased on Enter: the room's confirmed line (with its time) replaces it.
        session: PromptSession[str] = PromptSession(erase_when_done=True, style=STYLE, color_depth=self.depth)
        while not self.stopping:
            try:
                line = await session.prompt_async(self._prompt_text, handle_sigint=False)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D on an empty line, Ctrl-C
                self.stop()
                return
            self._to_trio(self._take_typed, line)

    def _prompt_text(self) -> FormattedText:
        room = f"[{self.chat.current}] " if self.chat.current else ""
        return FormattedText([("class:prompt", f"{room}{self.chat.nick}> ")])

    def stop(self) -> None:
        """Quit (Ctrl-C, Ctrl-D, a stop signal): lines already typed still go out, then bye."""
        self.stopping = True
        self._to_trio(self.typed_send.close)

    def _to_trio(self, call: Any, *args: Any) -> None:
        if self.token is None:
            return  # trio has not started; it looks at ``stopping`` when it does
        with contextlib.suppress(trio.RunFinishedError):  # already over: the host is exiting
            self.token.run_sync_soon(call, *args)

    # --- trio side ----------------------------------------------------------------------------

    async def _trio_main(self) -> int:
        self.token = trio.lowlevel.current_trio_token()
        if self.stopping:
            self.typed_send.close()
        with open_hubs_socket(self.hub) as sock:
            link = HubLink(
                self.options.nick, trio.current_time(), limits.RECONNECT_GIVE_UP, self.options.hubs
            )
            runner = LinkRunner(sock, self.hub, link, self.chat.on_event)
            self.chat.submit = runner.submit
            async with trio.open_nursery() as nursery:
                self.paint_wanted = trio.Event()
                nursery.start_soon(self._paint)
                nursery.start_soon(runner.run)
                self.chat.start(list(self.options.rooms))
                self.started.set()
                with trio.CancelScope() as typing:
                    nursery.start_soon(self._watch_link, runner, typing)
                    await self._take_lines()
                if not self.chat.fatal:
                    with trio.move_on_after(QUIT_DRAIN):
                        while link.busy and link.state is LinkState.OPEN:
                            await runner.changed.wait()
                runner.close()
                await runner.finished.wait()
                nursery.cancel_scope.cancel()
        self.paint_wanted = None
        self._paint_now()
        return 1 if self.chat.fatal else 0

    async def _take_lines(self) -> None:
        async for line in self.typed_receive:
            self.chat.line(line)
            if self.chat.quit:
                return

    async def _watch_link(self, runner: LinkRunner, typing: trio.CancelScope) -> None:
        """Stop taking lines once the link gives up (hub unreachable, nick taken) or ends."""
        while not self.chat.fatal and not runner.finished.is_set():
            await runner.changed.wait()
        typing.cancel()

    def _take_typed(self, line: str) -> None:
        try:
            self.typed_send.send_nowait(line)
        except trio.WouldBlock:
            self.show(render.error(f"more than {TYPED_AHEAD} lines waiting; this one was dropped"))
        except trio.ClosedResourceError:
            pass  # typed after quitting

    def show(self, fragments: render.Fragments) -> None:
        """Print above the prompt at the next frame (prompt_toolkit erases the prompt and draws
        it again below)."""
        self.unpainted_lines += 1
        if self.options.color:
            self.unpainted += fragments
            self.unpainted.append(NEWLINE)
        else:
            self.unpainted.append(("", render.plain(fragments) + "\n"))
        if self.paint_wanted is None:
            self._paint_now()
        else:
            self.paint_wanted.set()

    async def _paint(self) -> None:
        """Draw what was shown, at most once a FRAME (a FLOOD_FRAME while the room floods)."""
        while self.paint_wanted is not None:
            await self.paint_wanted.wait()
            self.paint_wanted = trio.Event()
            lines = self._paint_now()
            await trio.sleep(frame_after(lines, get_app_session().output.get_size().rows))

    def _paint_now(self) -> int:
        """Print what was shown above the prompt, and draw the prompt again below it; the
        number of lines printed."""
        if not self.unpainted:
            return 0
        fragments, self.unpainted = merged(self.unpainted), []
        lines, self.unpainted_lines = self.unpainted_lines, 0
        output, depth = get_app_session().output, self.depth

        def paint() -> None:
            print_fragments(output, fragments, PAINT_STYLE, color_depth=depth)

        app = get_app_or_none()
        if app is None or not app.is_running:
            paint()
        elif _prints_in_terminal(app):  # after what is printing now, in order
            run_in_terminal(paint)
        else:
            # What ``run_in_terminal`` does, less what only a program that reads the terminal
            # needs (waiting for cursor position reports, leaving raw mode, detaching the input,
            # asking the position again): about a fifth of a frame's CPU.  Trio runs on the
            # event loop's thread, between two of its callbacks, so nothing draws meanwhile.
            app.renderer.erase(leave_alternate_screen=False)
            paint()
            app.invalidate()  # the prompt, drawn again below (with what was typed, as it was)
        return lines


def frame_after(lines: int, rows: int) -> float:
    """How long after a frame of ``lines`` lines the next may come, on a screen of ``rows``."""
    return FLOOD_FRAME if lines > rows else FRAME


def _prints_in_terminal(app: Application[Any]) -> bool:
    """Whether a ``run_in_terminal`` is under way (prompt_toolkit chains them in order)."""
    running: asyncio.Future[None] | None = getattr(app, "_running_in_terminal_f", None)
    return bool(getattr(app, "_running_in_terminal", False)) or (running is not None and not running.done())


def merged(fragments: list[tuple[str, str]]) -> FormattedText:
    """Adjacent fragments of the same style as one: prompt_toolkit's cost is per fragment."""
    return FormattedText(
        (style, "".join(text for _style, text in run)) for style, run in groupby(fragments, key=itemgetter(0))
    )
