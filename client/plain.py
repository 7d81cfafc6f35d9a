"""``roomcast --plain``: plain UTF-8 lines, no envelope, like netcat.

Each input line goes out as one datagram; whatever arrives is printed (made visible) as it
arrives.  It works against the Roomcast hub and against the textbook UDP server.  At end of
input it waits briefly for the last reply; a datagram that is exactly ``bye`` ends it.
"""

from __future__ import annotations

import socket
import sys

import attrs
import trio

from roomcast.client.options import ClientOptions
from roomcast.shared import limits, text

#: After the last line is answered, how long to keep printing what still arrives.
LINGER = 0.3


@attrs.define
class PlainState:
    sent: int = 0
    replies: int = 0
    bye: bool = False
    refused: bool = False
    answered: trio.Event = attrs.Factory(trio.Event)


async def run_plain(options: ClientOptions) -> int:
    hub = options.hub_address  # the first hub: plain text keeps no session to carry elsewhere
    family = socket.AF_INET6 if len(hub) == 4 else socket.AF_INET
    state = PlainState()
    with trio.socket.socket(family=family, type=socket.SOCK_DGRAM) as sock:
        await sock.connect(hub)  # so that ICMP "port unreachable" is reported to us
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive, sock, state, nursery.cancel_scope)
            await _send_lines(sock, state)
            if state.sent and not state.bye:
                with trio.move_on_after(limits.CONNECT_TIMEOUT):
                    await state.answered.wait()
                await trio.sleep(LINGER)
            nursery.cancel_scope.cancel()
    if state.refused or (state.sent and not state.replies):
        print(f"roomcast: no answer from {options.hubs[0]}", file=sys.stderr)
        return 1
    return 0


async def _send_lines(sock: trio.socket.SocketType, state: PlainState) -> None:
    while not state.bye:
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        state.answered = trio.Event()
        await sock.send(_datagram_of(line.rstrip("\r\n")))
        state.sent += 1


def _datagram_of(line: str) -> bytes:
    """``line`` as one datagram a textbook server reads whole (recvfrom(1024)), as valid UTF-8."""
    data = line.encode()
    if len(data) <= limits.MAX_TEXT_LINE:
        return data
    print(
        f"roomcast: a line of {len(data)} bytes was cut to {limits.MAX_TEXT_LINE}, the most a text server reads",
        file=sys.stderr,
    )
    return text.truncate_utf8(data, limits.MAX_TEXT_LINE)


async def _receive(sock: trio.socket.SocketType, state: PlainState, scope: trio.CancelScope) -> None:
    while True:
        try:
            data = await sock.recv(65535)
        except ConnectionRefusedError:
            state.refused = True
            scope.cancel()
            return
        state.replies += 1
        state.answered.set()
        for line in data.decode("utf-8", "replace").split("\n"):
            print(text.visible(line), flush=True)
        if data == b"bye":
            state.bye = True
            scope.cancel()
            return
