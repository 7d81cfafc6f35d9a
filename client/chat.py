"""What a person does in a chat, apart from any terminal: typed lines become requests, and
what the link reports becomes lines to show.  The piped front end and the prompt UI share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from roomcast.client import render
from roomcast.shared import events, link, text
from roomcast.shared.names import fold

Show = Callable[[render.Fragments], None]


@attrs.define
class ChatSession:
    """The user's rooms (one of them current) and the translation both ways."""

    submit: Callable[[Any], None]
    show: Show
    nick: str
    history: int = 0
    rooms: list[str] = attrs.Factory(list)
    current: str = ""
    refusals: int = 0
    quit: bool = False
    #: Set when the link gives up (hub unreachable, nick taken): the front end exits non-zero.
    fatal: str = ""

    def start(self, rooms: list[str]) -> None:
        """Join ``rooms``; the last is current at once (the hub carries requests out in order,
        so lines typed before the join is confirmed still go to that room)."""
        for room in rooms:
            self.submit(events.Join(id=0, room=room, history=self.history))
            self._joined(room)

    def line(self, typed: str) -> None:
        """One line the user typed (or piped in)."""
        if not typed.strip():
            return
        try:
            command = text.parse_line(typed, self.current)
        except text.TextCommandError as exc:
            self.show(render.error(str(exc)))
            return
        if isinstance(command, text.Leave):
            self.quit = True
        elif isinstance(command, text.Help):
            for help_line in text.HELP_LINES:
                if not help_line.startswith("/live"):
                    self.show(render.notice(help_line.replace("bye (alone on a line)", "/quit or Ctrl-D")))
        elif isinstance(command, text.Live):
            self.show(
                render.notice("/live is for plain-text clients; this client always shows messages live")
            )
        else:
            self.submit(command)

    def on_event(self, event: link.LinkEvent) -> None:
        if isinstance(event, link.Show):
            self.show(render.event_line(event.event))
        elif isinstance(event, link.Answered):
            if not event.caught_up:  # else the line comes with the catch-up, once
                self._answered(event.request, event.reply)
        elif isinstance(event, link.Refused):
            self.refusals += 1
            if isinstance(event.request, events.Join):
                self._parted(event.request.room)
            self.show(render.error(event.error.text))
        elif isinstance(event, link.Problem):
            self.show(render.error(event.error.text))
            if event.error.code in link.FATAL_AT_HELLO:
                self.fatal = event.error.text
        elif isinstance(event, link.Connected):
            self.nick = event.nick
            where = f" to hub {event.hub}" if event.hub else ""
            said = "reconnected" if event.reconnected else "connected"
            self.show(render.notice(f"{said} as {event.nick}{where}"))
        elif isinstance(event, link.Reconnecting):
            where = f" to hub {event.hub}" if event.hub else ""
            self.show(render.notice(f"{event.reason}; reconnecting{where} (what you type is kept)"))
        elif isinstance(event, link.Unreachable):
            self.fatal = event.reason
            self.show(render.error(event.reason))

    def _answered(self, request: Any, reply: events.Reply) -> None:
        if isinstance(request, events.Say):
            own = events.Deliver(
                room=request.room,
                seq=reply.seq,
                nick=self.nick,
                body=request.body,
                ts=time.time(),
                action=request.action,
            )
            self.show(render.event_line(own))
            return
        if isinstance(request, events.Join):
            self._joined(request.room)
        elif isinstance(request, events.Part):
            self._parted(request.room)
        elif isinstance(request, events.Nick):
            self.nick = request.nick
        self.show(render.notice(reply.text))
        for item in reply.items if not isinstance(request, events.Who) else ():
            self.show(render.notice("  " + item))

    def _joined(self, room: str) -> None:
        self.rooms = [r for r in self.rooms if fold(r) != fold(room)] + [room]
        self.current = room

    def _parted(self, room: str) -> None:
        self.rooms = [r for r in self.rooms if fold(r) != fold(room)]
        if fold(self.current) == fold(room):
            self.current = self.rooms[-1] if self.rooms else ""
