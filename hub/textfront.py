"""The hub's side of the plain-text dialect (textbook UDP client, netcat).

Every text line gets exactly one reply datagram of at most 1024 bytes of valid UTF-8, so a
client that sends a line and then blocks for one datagram never hangs: the reply carries the
room lines queued for it since its last line, then the answer to this line.  ``bye`` is
answered with exactly ``bye``.  In live mode (``/live on``, for netcat) room lines are sent as
they happen instead of queued.

Text clients from trusted networks (``--trust``, loopback by default) are registered on their
first line; others must first type back a short code the hub sends them.

The most frequent line, a plain line said to the current room, takes a fast lane
(:func:`_fast_say`) that sends what the full path sends, without a parsed command, a Reply and
the reply's packing; anything else takes the full path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roomcast.hub import requests
from roomcast.hub.rooms import Address, Client, RoomEvent, TextMode
from roomcast.shared import cookie, events, limits, text

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore


def new_mode() -> TextMode:
    return TextMode()


def line_of(event: RoomEvent) -> bytes:
    return text.format_event(event).encode()


def deliver(hub: HubCore, client: Client, line: bytes, live: bool | None = None) -> None:
    """A room line for a text client: sent now if it is live, else kept for its next reply."""
    mode = client.text
    assert mode is not None
    if mode.live if live is None else live:
        hub.send(text.live_line(line), client.address)
        hub.counters.inc("deliveries")
        return
    if len(mode.queue) == mode.queue.maxlen:
        mode.overflowed += 1
    mode.queue.append(line.decode())


def receive(hub: HubCore, data: bytes, address: Address, now: float) -> None:
    client = hub.registry.clients.get(address)
    if client is not None and client.text is not None and _fast_say(hub, client, data, now):
        return
    received = len(data)
    try:
        line = text.strip_line(data.decode("utf-8"))
    except UnicodeDecodeError:
        message = "a text line must be valid UTF-8"
        hub.note_bad_input("bad-utf8", message, address, now)
        _reply(hub, address, client, [f"error: {message}"], received)
        return
    if client is not None and client.text is None:
        hub.note_bad_input("text-on-envelope-session", "plain text from an envelope session", address, now)
        hub.send(text.truncate_utf8(b"error: this address has an envelope session", received * 3), address)
        return
    greeting: list[str] = []
    if client is None:
        if line == text.BYE:
            hub.send_unvalidated(text.BYE.encode(), address, received)
            return
        if not hub.trusted(address) and not _validated_by_code(hub, address, line, received, now):
            return
        client = _new_guest(hub, address, now)
        if client is None:
            return
        greeting = [f"welcome {client.nick}, you are in {limits.DEFAULT_ROOM}; /help lists the commands"]
        if not hub.trusted(address):
            _reply(hub, address, client, greeting, received)
            return  # the line was the code
    client.last_seen = now
    hub.proposed = None
    answer = _command(hub, client, line, now)
    if answer is None:
        return
    proposed, lines = hub.take_proposed(), greeting + answer
    if proposed is not None:
        # Cluster mode: the one reply goes when the line is committed (with what came meanwhile).
        proposed.on_done = lambda result: _reply_later(hub, client, lines, received, result)
        return
    _reply(hub, address, client, lines, received)


def _fast_say(hub: HubCore, client: Client, data: bytes, now: float) -> bool:
    """A plain line said to the current room, carried out as the full path would, without a
    parsed command, a Reply and the reply's packing.  False: take the full path (commands,
    ``bye``, empty lines, lines over the body limit, no room, cluster mode, invalid UTF-8)."""
    if len(data) > limits.MAX_BODY or data[:1] == b"/" or not client.rooms or not hub.standalone:
        return False  # the body's bytes are at most the datagram's: a shorter one fits
    try:
        line = text.strip_line(data.decode("utf-8"))
    except UnicodeDecodeError:
        return False
    if line == text.BYE or not line.strip():
        return False
    client.last_seen = now
    mode = client.text
    assert mode is not None
    if not hub.allow(client, now):
        _reply(hub, client.address, client, [f"error: {hub.slow_down_text(client)}"], len(data))
        return True
    room = hub.registry.rooms[client.rooms[-1]]
    requests.say_in(hub, client, room, line, False, 0, now)
    if mode.queue or mode.overflowed:  # room lines came meanwhile: the reply carries them
        _reply(hub, client.address, client, [] if mode.queue else [requests.sent_to(room)], len(data))
        return True
    # What _reply packs for an empty queue: the one answer line (newline-ended when live).
    hub.send(requests.sent_to(room).encode() + b"\n" * mode.live, client.address)
    return True


def _reply_later(
    hub: HubCore, client: Client, lines: list[str], received: int, result: int | events.Error
) -> None:
    if hub.registry.clients.get(client.address) is not client:
        return
    if isinstance(result, events.Error):
        lines = [f"error: {result.text}"]
    _reply(hub, client.address, client, lines, received)


def _reply(hub: HubCore, address: Address, client: Client | None, answer: list[str], received: int) -> None:
    if client is None or client.text is None:
        # Within the 3x budget of an unvalidated address, so that even a 1-byte line gets its
        # one reply (a textbook client would hang without it).
        reply = "\n".join(text.fit_lines(answer, limits.MAX_TEXT_REPLY)).encode()
        budget = received * limits.AMPLIFICATION_FACTOR
        hub.send_unvalidated(
            reply if hub.trusted(address) else text.truncate_utf8(reply, budget), address, received
        )
        return
    mode = client.text
    if mode.live:
        reply = text.pack_reply(list(mode.queue), answer, limits.MAX_TEXT_REPLY - 1, mode.overflowed) + b"\n"
    else:
        reply = text.pack_reply(list(mode.queue), answer, dropped=mode.overflowed)
    hub.send(reply, address)
    mode.queue.clear()
    mode.overflowed = 0


def _command(hub: HubCore, client: Client, line: str, now: float) -> list[str] | None:
    """The answer lines for ``line``; None when the client left (it got ``bye`` already)."""
    mode = client.text
    assert mode is not None
    if line != text.BYE and not hub.engine.available:
        hub.counters.inc("errors.unavailable")
        return [f"error: the cluster is unavailable ({hub.engine.reason}); try again in a few seconds"]
    if line != text.BYE and not hub.allow(client, now):
        return [f"error: {hub.slow_down_text(client)}"]
    if not line.strip():
        return [] if mode.queue else ["(no new messages)"]  # an empty line collects what arrived
    try:
        command = text.parse_line(line, _current_room(hub, client))
    except text.TextCommandError as exc:
        hub.note_bad_input("bad-command", f"{client.nick}: {exc}", client.address, now)
        return [f"error: {exc}"]
    if isinstance(command, text.Leave):
        hub.leave(client, "quit", now)
        hub.send(text.BYE.encode(), client.address)
        return None
    if isinstance(command, text.Help):
        return list(text.HELP_LINES)
    if isinstance(command, text.Live):
        mode.live = command.on
        for key in client.rooms:
            hub.registry.rooms[key].fanout.changed()
        return [f"live mode {'on: room lines arrive as they happen' if command.on else 'off'}"]
    answer = requests.carry_out(hub, client, command, now)
    if isinstance(answer, events.Error):
        return [f"error: {answer.text}"]
    if isinstance(command, events.Say) and mode.queue:
        return []  # the room lines are confirmation enough
    return (
        [answer.text] if not answer.items or isinstance(command, events.Who) else [answer.text, *answer.items]
    )


def _current_room(hub: HubCore, client: Client) -> str:
    return hub.registry.rooms[client.rooms[-1]].name if client.rooms else ""


def _validated_by_code(hub: HubCore, address: Address, line: str, received: int, now: float) -> bool:
    """An untrusted text client proves it receives by typing back the code it was sent."""
    if cookie.check_code(hub.secret, address, line, now):
        return True
    code = cookie.make_code(hub.secret, address, now)
    hub.counters.inc("challenges")
    for prompt in (f"roomcast: to chat, type this code: {code}", f"code: {code}", code):
        if len(prompt) <= limits.AMPLIFICATION_FACTOR * received:
            hub.send_unvalidated(prompt.encode(), address, received)
            break
    else:
        hub.counters.inc("drops.amplification")
    return False


def _new_guest(hub: HubCore, address: Address, now: float) -> Client | None:
    base = f"{limits.GUEST_PREFIX}{address[1]}"
    nick = base
    for n in range(2, 100):
        if hub.registry.nick_free(nick) and hub.engine.reserve(hub, nick, now):
            break
        nick = f"{base}-{n}"
    client = hub.new_client(address, nick, now)
    if client is not None:
        requests.carry_out(hub, client, events.Join(id=0, room=limits.DEFAULT_ROOM), now)
    return client
