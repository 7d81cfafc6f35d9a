"""The hub's side of the envelope dialect: handshake, session tokens, requests in id order.

A hello without a valid cookie gets a challenge (within the 3x budget, no state kept); with
one, a session and its token.  Requests are carried out in id order, each once (duplicates
are answered from a cache of recent answers), held by flood control when the session goes
too fast, and answered with one Reply or Error each.  Acks free the member's outbox.  The
most frequent datagrams, a room ack and a say next in id order, take fast lanes
(``shared.fastwire``) that do what the full path does, without event objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from roomcast.hub import delivery, requests
from roomcast.hub.engine import MemoryEngine
from roomcast.hub.rooms import Address, Client, Link, Room
from roomcast.shared import cookie, envelope, events, fastwire, limits
from roomcast.shared.names import fold

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore


@attrs.frozen
class Unparsable:
    """A request whose fields were refused at decode: it still takes its turn (its id), and
    its answer is the error."""

    id: int
    error: events.Error


def receive(hub: HubCore, data: bytes, address: Address, now: float) -> None:
    client = hub.registry.clients.get(address)
    if client is not None and client.link is not None:
        head = data[3:9]  # the fast lanes, for the most frequent datagrams
        if head == fastwire.ACK_HEAD:
            if _fast_ack(hub, client, data, now):
                return
        elif head == fastwire.SAY_HEAD and _fast_say(hub, client, data, now):
            return
    try:
        env = envelope.decode(data)
    except envelope.RemoteProtocolError as exc:
        hub.note_bad_input(exc.code, exc.text, address, now)
        error = events.Error(code=exc.code, text=exc.text, id=exc.request_id)
        if (
            exc.request_id
            and client is not None
            and client.link is not None
            and exc.token == client.link.token
        ):
            client.last_seen = now
            _request(hub, client, Unparsable(exc.request_id, error), now)  # answered in its turn
        else:
            _answer(hub, error, address, client, len(data))
        return
    event = env.event
    if isinstance(event, events.Hello):
        _hello(hub, event, address, len(data), now)
        return
    if client is None or client.link is None:
        hub.counters.inc("drops.unknown-session")
        text = "no session: send hello"  # short: it must fit 3x a ping from an unvalidated address
        hub.send_unvalidated(
            envelope.encode(events.Error(code="unknown-session", text=text)), address, len(data)
        )
        return
    if env.token != client.link.token:
        hub.counters.inc("drops.bad-token")
        return
    client.last_seen = now
    _session_event(hub, client, event, now)


def _fast_ack(hub: HubCore, client: Client, data: bytes, now: float) -> bool:
    """A room ack on the fast path (no event object); False: take the full decode."""
    assert client.link is not None
    ack = fastwire.decode_ack(data)
    if ack is None:
        return False
    token, stream, upto, sack = ack
    key = fold(stream)
    if token != client.link.token or key not in client.link.rooms:
        return False  # a bad token, the private stream, a room it is not in: the slow path
    client.last_seen = now
    delivery.acknowledged(hub, client, key, upto, sack, now)
    return True


def _fast_say(hub: HubCore, client: Client, data: bytes, now: float) -> bool:
    """A say that is next in id order, from a member of its room, standalone: carried out as
    :func:`_request` would, without event objects for the request and its answer.  False:
    take the full path (anything else: duplicates, gaps, held requests, errors, cluster)."""
    link = client.link
    assert link is not None
    if link.waiting or now < link.held_until or not isinstance(hub.engine, MemoryEngine):
        return False
    say = fastwire.read_say(data)
    if say is None or say[0] != link.token or say[1] != link.next_id:
        return False
    _token, request_id, name, body, action, mid, packed = say
    key = fold(name)
    if key not in link.rooms:
        return False
    client.last_seen = now
    # Flood control off (a rate of 0) and the engine available: nothing to hold, as _hold says.
    held = (
        _hold(hub, client, request_id, now) if hub.config.flood_rate > 0 or not hub.engine.available else None
    )
    if held is not None:  # flood control: it waits, as on the full path
        link.waiting[request_id] = (
            events.Say(id=request_id, room=name, body=body, action=action, mid=mid),
            now,
        )
        _held(hub, client, held, now)
        return True
    link.next_id += 1
    room = hub.registry.rooms[key]
    seq = _commit_line(hub, client, room, body, action, packed, now)
    answer = fastwire.say_reply(request_id, requests.sent_to(room), seq)
    _keep_answer(link, request_id, answer)
    hub.send(answer, client.address)
    return True


def _commit_line(
    hub: HubCore, client: Client, room: Room, body: str, action: bool, packed: bytes, now: float
) -> int:
    """What :func:`requests.say_in` does through ``hub.publish``, standalone
    (``MemoryEngine.publish``): the room's next seq, committed at once, the deliver put
    together from the body as it came in the say (``packed``).  Its seq."""
    room.last_active = now
    room.seq = seq = room.seq + 1  # room.next_seq(), hub.wall(now): without the calls
    nick, shown, ts = client.nick, room.name, now + hub.wall_offset
    line = events.checked_deliver(shown, seq, nick, body, ts, action)
    hub.commit(room, line, client, now, fastwire.line_deliver(shown, seq, nick, packed, ts, action))
    hub.counters.messages += 1
    return seq


def _session_event(hub: HubCore, client: Client, event: Any, now: float) -> None:
    if isinstance(event, events.Ping):
        hub.send(envelope.encode(events.Pong(id=event.id)), client.address)
        if client.link is not None and client.link.dropped:
            hub.tell_too_slow(client)  # it did not rejoin: the first notice may have been lost
    elif isinstance(event, events.Ack):
        _ack(hub, client, event, now)
    elif isinstance(event, events.Bye):
        hub.leave(client, "quit", now)
    elif isinstance(event, events.REQUESTS):
        if isinstance(event, events.Join) and client.link is not None:
            client.link.dropped = False
        _request(hub, client, event, now)
    else:
        error = events.Error(code="unexpected-kind", text=f"a client may not send {event.KIND}")
        hub.note_bad_input("unexpected-kind", error.text, client.address, now)
        hub.send(envelope.encode(error), client.address)


def _answer(
    hub: HubCore, error: events.Error, address: Address, client: Client | None, received: int
) -> None:
    """Tell the sender of a bad datagram what was wrong, in its own dialect."""
    if client is not None and client.text is not None:
        hub.send(f"error: {error.text}".encode(), address)
    elif client is not None:
        hub.send(envelope.encode(error), address)
    else:
        hub.send_unvalidated(envelope.encode(error), address, received)


def _hello(hub: HubCore, hello: events.Hello, address: Address, received: int, now: float) -> None:
    if not cookie.check_cookie(hub.secret, address, hello.cookie, now):
        challenge = events.Challenge(cookie=cookie.make_cookie(hub.secret, address, now))
        hub.counters.inc("challenges")
        hub.send_unvalidated(envelope.encode(challenge), address, received)
        return
    if not hub.accepting:
        hub.refuse(address, "shutting-down", "the hub is restarting; try again shortly")
        return
    existing = hub.registry.clients.get(address)
    if existing is not None and existing.link is not None and fold(existing.nick) == fold(hello.nick):
        hub.welcome(existing)  # our welcome was lost: say it again
        return
    if hub.engine.hello(hub, address, hello, now):
        return  # cluster mode: the nick is claimed across the cluster first
    if existing is not None:
        hub.leave(existing, "reconnected", now)
    client = hub.new_client(
        address, hello.nick, now, link=Link(token=hub.random_bytes(limits.TOKEN_BYTES), address=address)
    )
    if client is not None:
        hub.welcome(client)


def _request(hub: HubCore, client: Client, request: Any, now: float) -> None:
    """Carry out requests in id order, each once; answer duplicates from the cache."""
    link = client.link
    assert link is not None
    if request.id < link.next_id:
        hub.counters.inc("duplicates")
        cached = link.answers.get(request.id)
        if cached is not None:
            hub.send(cached, client.address)
        return
    if request.id >= link.next_id + 2 * limits.CLIENT_WINDOW:
        hub.refuse(client.address, "window", f"request {request.id} is too far ahead of {link.next_id}")
        return
    link.waiting[request.id] = (request, now)
    if request.id > link.next_id and now >= link.held_until:
        # A gap: tell the client at once which requests arrived, so it resends the
        # missing one without waiting for its timer (fast retransmit).
        gap = events.Ack(
            stream="", upto=link.next_id - 1, sack=tuple(sorted(link.waiting)[: limits.MAX_SACK])
        )
        hub.send(envelope.encode(gap), client.address)
        return
    carry_out_waiting(hub, client, now)


def carry_out_waiting(hub: HubCore, client: Client, now: float) -> None:
    """Carry out the waiting requests that are next in id order, while flood control lets
    them through; when it does not, tell the client once and come back when it will."""
    link = client.link
    assert link is not None
    if now < link.held_until:
        return
    while link.next_id in link.waiting:
        pending, arrived = link.waiting[link.next_id]
        held = _hold(hub, client, pending.id, now)
        if held is not None:
            _held(hub, client, held, now)
            return
        del link.waiting[link.next_id]
        link.next_id += 1
        hub.proposed = None
        if isinstance(pending, Unparsable):
            outcome: events.Reply | events.Error = pending.error
        else:
            outcome = requests.carry_out(hub, client, pending, now)
        proposed = hub.take_proposed()
        if proposed is not None and isinstance(outcome, events.Reply) and not outcome.seq:
            # Cluster mode: the answer carries the seq the cluster gives the event.
            proposed.on_done = lambda result, o=outcome, a=arrived, c=now: _answer_later(
                hub, client, o, a, c, result
            )
            continue
        _send_answer(hub, client, outcome, arrived, now)


def _held(hub: HubCore, client: Client, held: events.Error, now: float) -> None:
    """Tell the client its requests wait, and carry them out then, unasked."""
    link = client.link
    assert link is not None
    link.held_until = now + held.after
    hub.send(envelope.encode(held), client.address)
    hub.schedule(client, link.held_until)


def _hold(hub: HubCore, client: Client, request_id: int, now: float) -> events.Error | None:
    """Why the next request must wait (the cluster is unavailable, or flood control), or None.
    The client holds its requests for ``after`` and the hub carries them out then."""
    engine = hub.engine
    if not engine.available:
        hub.counters.inc("errors.unavailable")
        after = hub.config.unavailable_after
        text = (
            f"the cluster is unavailable ({engine.reason}); your request is kept and retried in {after:g} s"
        )
        return events.Error(code="unavailable", text=text, id=request_id, after=after)
    if not hub.allow(client, now):
        after = max(client.bucket.wait_time(), 0.05)
        return events.Error(code="slow-down", text=hub.slow_down_text(client), id=request_id, after=after)
    return None


def _send_answer(
    hub: HubCore, client: Client, outcome: events.Reply | events.Error, arrived: float, now: float
) -> None:
    link = client.link
    assert link is not None
    if isinstance(outcome, events.Reply) and now - arrived > 0.001:
        outcome = attrs.evolve(outcome, delay=round(now - arrived, 4))
    answer = envelope.encode(outcome)
    _keep_answer(link, outcome.id, answer)
    hub.send(answer, client.address)


def _keep_answer(link: Link, request_id: int, answer: bytes) -> None:
    """Keep the answer for a request that arrives again; forget the one a window before."""
    link.answers[request_id] = answer
    link.answers.pop(request_id - 2 * limits.CLIENT_WINDOW, None)


def _answer_later(
    hub: HubCore,
    client: Client,
    reply: events.Reply,
    arrived: float,
    carried: float,
    result: int | events.Error,
) -> None:
    """The cluster settled ``reply``'s request (carried out at ``carried``): its event's seq,
    or the Error to answer."""
    if hub.registry.clients.get(client.address) is not client:
        return  # the client left meanwhile
    outcome = attrs.evolve(result, id=reply.id) if isinstance(result, events.Error) else reply
    if isinstance(result, int) and result:
        outcome = attrs.evolve(reply, seq=result)
    # The delay reported is what the hub held the request (flood control, a gap before it),
    # as on a standalone hub, so the client's round-trip time leaves it out; waiting for the
    # cluster is part of the round trip.  Left in, a flood hold of a second made the client's
    # retransmission timeout a second or more, and every datagram lost then cost that much.
    _send_answer(hub, client, outcome, arrived, carried)


def _ack(hub: HubCore, client: Client, ack: events.Ack, now: float) -> None:
    assert client.link is not None
    stream = fold(ack.stream)
    if stream:
        delivery.acknowledged(hub, client, stream, ack.upto, ack.sack, now)
        return
    window = client.link.direct
    for data in window.acknowledge(stream, ack.upto, ack.sack, now):
        hub.send(data, client.address)
        hub.counters.inc("retransmits.fast")
    for data in window.release(now):
        hub.send(data, client.address)
        hub.counters.inc("deliveries")
    if window.timer is not None:
        hub.schedule(client, window.timer)
