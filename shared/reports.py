"""What the client's link (``shared.link.HubLink``) reports to the user interface: lines to show,
answers and refusals, and news of the connection.  Plain values, in the order they happened."""

from __future__ import annotations

from typing import Any

import attrs

from roomcast.shared import events
from roomcast.shared.inbox import Shown


@attrs.frozen
class Connected:
    nick: str
    reconnected: bool
    #: The hub now in use, when the user gave a list of them ("" with a single hub).
    hub: str = ""


@attrs.frozen
class Show:
    """A room line, presence notice or private message, in order, once."""

    event: Shown


@attrs.frozen
class Answered:
    request: Any
    reply: events.Reply
    #: The hub had carried the request out before this session's rejoin (a resend that a
    #: cluster recognised by its ``mid``): the line comes with the catch-up, so it is not
    #: shown again as newly said.
    caught_up: bool = False


@attrs.frozen
class Refused:
    request: Any
    error: events.Error


@attrs.frozen
class Problem:
    """An error the hub sent that is not tied to one request (e.g. nick taken at hello)."""

    error: events.Error


@attrs.frozen
class Reconnecting:
    reason: str
    #: The hub tried next, when the user gave a list of them ("" with a single hub).
    hub: str = ""


@attrs.frozen
class Unreachable:
    """The hub never answered (or stopped answering and ``give_up`` is set)."""

    reason: str


LinkEvent = Connected | Show | Answered | Refused | Problem | Reconnecting | Unreachable
