"""The client without a terminal: each input line is sent, every one is confirmed, then exit.

``echo "build done" | roomcast --room ops --nick ci`` joins, says the line, waits for the hub's
confirmation and exits 0.  Room lines that arrive meanwhile go to stdout, the client's own
notices and errors to stderr.  Exit 1 when the hub is unreachable or refused something.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import TextIO

import trio

from roomcast.client import render
from roomcast.client.chat import ChatSession
from roomcast.client.options import ClientOptions
from roomcast.client.runner import LinkRunner, open_hubs_socket
from roomcast.shared import limits
from roomcast.shared.link import HubLink

#: Lines read ahead of the hub's confirmations: a long pipe is read as the hub keeps up.
READ_AHEAD = 256


class PlainOutput:
    """Room lines to stdout, notices and errors to stderr, as plain text.  Lines are flushed
    once per batch of events (when the trio step that showed them is over), not one by one:
    a busy room costs one write per batch."""

    def __init__(self) -> None:
        self._flush_pending = False
        self._lines: dict[TextIO, list[str]] = {sys.stdout: [], sys.stderr: []}

    def show(self, fragments: render.Fragments) -> None:
        is_notice = any(style in ("class:notice", "class:error") for style, _ in fragments)
        self._lines[sys.stderr if is_notice else sys.stdout].append(render.plain(fragments) + "\n")
        if self._flush_pending:
            return
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:  # not inside trio: no batch to wait for
            self.flush()
            return
        self._flush_pending = True
        token.run_sync_soon(self.flush)

    def flush(self) -> None:
        """Write what was shown, one write per stream."""
        self._flush_pending = False
        for stream, lines in self._lines.items():
            if lines:
                text = "".join(lines)
                lines.clear()
                with contextlib.suppress(OSError, ValueError):  # the reader went away: nothing to do
                    stream.write(text)
                    stream.flush()


async def run_piped(options: ClientOptions) -> int:
    hub = options.hub_addresses
    with open_hubs_socket(hub) as sock:
        link = HubLink(options.nick, trio.current_time(), limits.RECONNECT_GIVE_UP, options.hubs)
        runner = LinkRunner(sock, hub, link, lambda event: None)
        output = PlainOutput()
        chat = ChatSession(submit=runner.submit, show=output.show, nick=options.nick, history=options.history)
        runner.on_event = chat.on_event
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner.run)
            nursery.start_soon(_stop_on_signal, runner, chat)
            chat.start(list(options.rooms))
            reader = trio.CancelScope()
            nursery.start_soon(_watch_fatal, runner, chat, reader)
            with reader:
                await _feed(chat, link, runner)
            while link.busy and not chat.fatal and not runner.finished.is_set():
                await runner.changed.wait()
            runner.close()
            await runner.finished.wait()
            nursery.cancel_scope.cancel()
        output.flush()
    if chat.fatal:
        return 1
    return 1 if chat.refusals else 0


async def _feed(chat: ChatSession, link: HubLink, runner: LinkRunner) -> None:
    while not chat.quit:
        while link.busy >= READ_AHEAD:
            await runner.changed.wait()
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        chat.line(line.rstrip("\r\n"))


async def _watch_fatal(runner: LinkRunner, chat: ChatSession, reader: trio.CancelScope) -> None:
    while not chat.fatal and not runner.finished.is_set():
        await runner.changed.wait()
    reader.cancel()


async def _stop_on_signal(runner: LinkRunner, chat: ChatSession) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            chat.fatal = "interrupted"
            runner.close()
            return
