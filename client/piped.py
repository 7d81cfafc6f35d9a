"""The client without a terminal: each input line is sent, every one is confirmed, then exit.

``echo "build done" | roomcast --room ops --nick ci`` joins, says the line, waits for the hub's
confirmation and exits 0.  Room lines that arrive meanwhile go to stdout, the client's own
notices and errors to stderr.  Exit 1 when the hub is unreachable or refused something.
"""

from __future__ import annotations

import signal
import sys

import trio

from roomcast.client.chat import ChatSession
from roomcast.client.options import ClientOptions
from roomcast.client.output import PlainOutput
from roomcast.client.runner import LinkRunner, open_hubs_socket
from roomcast.shared import limits
from roomcast.shared.link import HubLink

#: Lines read ahead of the hub's confirmations: a long pipe is read as the hub keeps up.
READ_AHEAD = 256
INTERRUPTED = "interrupted"


async def run_piped(options: ClientOptions) -> int:
    output = PlainOutput()
    chat: ChatSession | None = None
    async with trio.open_nursery() as writers:
        await writers.start(output.run)
        try:
            chat = await _chat(options, output)
        finally:
            output.close()  # the writers return once everything shown is written
            if chat is None or chat.fatal == INTERRUPTED:  # but a stuck reader does not hold Ctrl-C
                writers.cancel_scope.deadline = trio.current_time() + limits.PIPED_EXIT_DRAIN
    assert chat is not None
    if chat.fatal:
        return 1
    return 1 if chat.refusals else 0


async def _chat(options: ClientOptions, output: PlainOutput) -> ChatSession:
    """Chat until stdin ends and everything is confirmed, the hub is lost, or a signal."""
    hub = options.hub_addresses
    with open_hubs_socket(hub) as sock:
        link = HubLink(options.nick, trio.current_time(), limits.RECONNECT_GIVE_UP, options.hubs)
        runner = LinkRunner(sock, hub, link, lambda event: None, can_receive=lambda: not output.full)
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
    return chat


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
            chat.fatal = INTERRUPTED
            runner.close()
            return
