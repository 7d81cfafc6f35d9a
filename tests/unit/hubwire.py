"""In-memory harnesses for the sans-I/O cores: no sockets, no sleeps, a clock moved by hand.

- :class:`Hub` wraps a :class:`~hub.core.HubCore` with one mailbox per address for what it
  sends, and counts bytes in and out per address (for the 3x anti-amplification budget).
- :class:`Peer` is a scripted envelope client (hello, cookie, token, numbered requests);
  :class:`TextPeer` a textbook-style plain-text client.
- :class:`Wire` joins real :class:`~shared.link.HubLink` objects to a HubCore (or to nothing:
  the hub is down), or to several (a list of hubs, ``--hub A,B``), with seeded loss,
  duplication and reordering, as a small discrete-event simulation: each step jumps to the
  next arrival or timer.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from roomcast.hub.core import HubConfig, HubCore
from roomcast.shared import envelope, events
from roomcast.shared.link import HubLink, LinkEvent
from roomcast.shared.names import fold

Address = tuple[str, int]
HOST = "127.0.0.1"
E = TypeVar("E")

#: A config under which 127.0.0.1 is an untrusted network (only ::1 is trusted).
UNTRUSTED = HubConfig(trusted=(ipaddress.ip_network("::1/128"),))


def new_core(config: HubConfig | None = None, now: float = 0.0, seed: int = 7) -> HubCore:
    """A HubCore whose secret, hub id and tokens come from a seeded generator."""
    return HubCore(config or HubConfig(), now=now, random_bytes=random.Random(seed).randbytes)


def of(kind: type[E], items: list[Any]) -> list[E]:
    """The items of one kind, in order."""
    return [item for item in items if isinstance(item, kind)]


def one(kind: type[E], items: list[Any]) -> E:
    found = of(kind, items)
    assert len(found) == 1, f"expected one {kind.__name__} in {items!r}"
    return found[0]


class Hub:
    """A HubCore, a mailbox per address, and the time (moved only by :meth:`advance`)."""

    def __init__(self, config: HubConfig | None = None, seed: int = 7, start: float = 0.0) -> None:
        self.now = start
        self.core = new_core(config, start, seed)
        self.mail: defaultdict[Address, list[bytes]] = defaultdict(list)
        self.bytes_in: Counter[Address] = Counter()
        self.bytes_out: Counter[Address] = Counter()

    def feed(self, data: bytes, address: Address) -> None:
        self.bytes_in[address] += len(data)
        self.core.receive_datagram(data, address, self.now)
        self._collect()

    def take(self, address: Address) -> list[bytes]:
        """What the hub sent to ``address`` since the last take, oldest first."""
        return self.mail.pop(address, [])

    def advance(self, seconds: float) -> None:
        """Move the clock, firing the core's timers at each deadline on the way (as the shell does)."""
        end = self.now + seconds
        while (deadline := self.core.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.core.on_timer(self.now)
            self._collect()
        self.now = end
        self.core.on_timer(end)
        self._collect()

    def _collect(self) -> None:
        for data, address in self.core.datagrams_to_send():
            self.bytes_out[address] += len(data)
            self.mail[address].append(data)

    def members(self, room: str) -> set[str]:
        found = self.core.registry.rooms.get(fold(room))
        return set() if found is None else {client.nick for client in found.members.values()}


class Peer:
    """A scripted envelope client: builds envelopes by hand, so it can also misbehave.

    With ``auto_ack`` it acknowledges every room event and private message it reads and hides
    retransmitted ones, as a well-behaved client does; without, the hub's retransmissions and
    windows show.
    """

    def __init__(self, hub: Hub, port: int, host: str = HOST, auto_ack: bool = True) -> None:
        self.hub = hub
        self.address: Address = (host, port)
        self.auto_ack = auto_ack
        self.token = b""
        self.next_id = 1
        self.inbox: list[Any] = []
        self._seen: set[tuple[str, int]] = set()

    def send(self, event: events.Event, token: bytes | None = None) -> None:
        self.hub.feed(envelope.encode(event, token=self.token if token is None else token), self.address)

    def received(self) -> list[Any]:
        """Events the hub sent this peer that were not read yet, oldest first."""
        while mail := self.hub.take(self.address):
            got = [envelope.decode(data).event for data in mail]
            if self.auto_ack and self.token:
                got = [event for event in got if self._first_time(event)]
                self._ack(got)
            self.inbox += got
        out, self.inbox = self.inbox, []
        return out

    def _first_time(self, event: Any) -> bool:
        """Like a real client, show a retransmitted room event only once."""
        if not isinstance(event, events.Deliver | events.Presence) or event.history:
            return True
        key = (fold(event.room), event.seq)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _ack(self, got: list[Any]) -> None:
        newest: dict[str, int] = {}
        for event in got:
            if isinstance(event, events.Deliver | events.Presence) and not event.history:
                newest[event.room] = max(newest.get(event.room, 0), event.seq)
        for stream, seq in newest.items():
            self.ack(stream, seq)

    def connect(self, nick: str) -> events.Welcome:
        self.send(events.Hello(nick=nick))
        challenge = one(events.Challenge, self.received())
        self.send(events.Hello(nick=nick, cookie=challenge.cookie))
        welcome = one(events.Welcome, self.received())
        self.token = welcome.token
        return welcome

    def request(self, kind: type[Any], **fields: Any) -> Any:
        """Send the next numbered request; return it (the answers are in :meth:`received`)."""
        request = kind(id=self.next_id, **fields)
        self.next_id += 1
        self.send(request)
        return request

    def ask(self, kind: type[Any], **fields: Any) -> events.Reply | events.Error:
        """Send a request and return its one answer; other events stay for :meth:`received`."""
        request = self.request(kind, **fields)
        got = self.received()
        answers = [e for e in got if isinstance(e, events.Reply | events.Error) and e.id == request.id]
        assert len(answers) == 1, got
        self.inbox = [e for e in got if e is not answers[0]]
        return answers[0]

    def ack(self, room: str, upto: int, sack: tuple[int, ...] = ()) -> None:
        self.send(events.Ack(stream=room, upto=upto, sack=sack))


def envelope_peer(hub: Hub, port: int, nick: str, *rooms: str, auto_ack: bool = True) -> Peer:
    """A connected peer in ``rooms`` (each join answered with a Reply), its inbox emptied."""
    peer = Peer(hub, port, auto_ack=auto_ack)
    peer.connect(nick)
    for room in rooms:
        assert isinstance(peer.ask(events.Join, room=room), events.Reply)
    peer.received()
    return peer


class TextPeer:
    """A plain-text client like the textbook one: send a line, read what comes back."""

    def __init__(self, hub: Hub, port: int, host: str = HOST) -> None:
        self.hub = hub
        self.address: Address = (host, port)

    def send(self, line: str | bytes) -> list[bytes]:
        """Send one datagram (a ``str`` gets a newline, as netcat adds); return the replies."""
        data = line if isinstance(line, bytes) else (line + "\n").encode()
        self.hub.feed(data, self.address)
        return self.hub.take(self.address)

    def line(self, line: str) -> str:
        """Send a line; assert exactly one reply datagram came back, and return it as text."""
        replies = self.send(line)
        assert len(replies) == 1, f"{line!r} got {len(replies)} replies: {replies!r}"
        return replies[0].decode("utf-8")


# --- the wire between HubLinks and a HubCore ----------------------------------------------------


@attrs.define
class Impairment:
    """What the wire does to each datagram, both directions, decided by a seeded generator."""

    loss: float = 0.0
    dup: float = 0.0
    #: Probability that a datagram is held back up to ``jitter`` seconds (later ones overtake it).
    reorder: float = 0.0
    latency: float = 0.002
    jitter: float = 0.02
    rng: random.Random = attrs.Factory(lambda: random.Random(1))


class Wire:
    """HubLinks and HubCores joined by in-memory datagrams on a simulated clock.

    ``cores`` holds one HubCore per hub of the links' list (``core`` is the first); each may be
    None (the hub is down: datagrams to it vanish) and may be replaced at any time (a hub
    restart).  A link sends to the hub its ``hub`` index names and hears only that hub, as the
    shell does.  Link events are kept per address in ``events``; what reached each hub's side
    of the wire, decoded, in ``arrivals`` as (hub index, event).
    """

    def __init__(
        self, core: HubCore | None, impairment: Impairment | None = None, *others: HubCore | None
    ) -> None:
        self.now = 0.0
        self.cores: list[HubCore | None] = [core, *others]
        self.arrivals: list[tuple[int, Any]] = []
        self.impairment = impairment or Impairment()
        self.links: dict[Address, HubLink] = {}
        self.routes: dict[Address, tuple[int, ...]] = {}
        self.events: dict[Address, list[LinkEvent]] = {}
        #: Datagrams that reached the hub's side of the wire (or would have, if it is down), by kind.
        self.to_hub: Counter[str] = Counter()
        #: What the impairment did: dropped, duplicated, delayed (so overtaken).
        self.impaired: Counter[str] = Counter()
        self._flight: list[tuple[float, int, bool, Address, bytes, int]] = []
        #: When set, datagrams for which it returns True vanish (a test's targeted loss).
        self.block: Callable[[Address, bytes, bool], bool] | None = None
        self._order = itertools.count()

    @property
    def core(self) -> HubCore | None:
        return self.cores[0]

    @core.setter
    def core(self, core: HubCore | None) -> None:
        self.cores[0] = core

    def _running(self) -> list[HubCore]:
        return [core for core in self.cores if core is not None]

    def add_link(self, nick: str, port: int, route: tuple[int, ...] = (), **options: Any) -> HubLink:
        """A link at ``port``; ``route`` maps its hub list to indexes of ``cores`` (default:
        the same order)."""
        address = (HOST, port)
        link = HubLink(nick, self.now, **options)
        self.links[address] = link
        self.routes[address] = route or tuple(range(len(self.cores)))
        self.events[address] = []
        self._flush()
        return link

    def events_of(self, link: HubLink) -> list[LinkEvent]:
        return next(self.events[a] for a, other in self.links.items() if other is link)

    def submit(self, link: HubLink, request: Any) -> None:
        link.submit(request, self.now)
        self._flush()

    def step(self) -> bool:
        """Jump to the next arrival or timer and handle everything due then; False when idle."""
        due = self._next_time()
        if due == float("inf"):
            return False
        self.now = max(self.now, due)
        while self._flight and self._flight[0][0] <= self.now:
            _, _, to_hub, address, data, hub = heapq.heappop(self._flight)
            self._arrive(to_hub, address, data, hub)
        for address, link in self.links.items():
            deadline = link.next_deadline()
            if deadline is not None and deadline <= self.now:
                self.events[address] += link.on_timer(self.now)
        for core in self._running():
            if (d := core.next_deadline()) is not None and d <= self.now:
                core.on_timer(self.now)
        self._flush()
        return True

    def run_until(self, done: Callable[[], bool], limit: float) -> None:
        """Step until ``done()``; fail if it takes more than ``limit`` seconds of wire time."""
        self._flush()  # what was queued outside a step (submit, shutdown) goes out now
        end = self.now + limit
        stuck = 0
        while not done():
            before = self.now
            assert self.step(), "the wire went idle before the condition held"
            stuck = stuck + 1 if self.now == before else 0
            assert stuck < 10_000, f"a timer fires again and again at {self.now} s without effect"
            assert self.now <= end, f"not done after {limit} s of wire time"

    def run_for(self, seconds: float) -> None:
        self._flush()
        end = self.now + seconds
        self.run_until(lambda: self._next_time() > end, seconds + 1.0)
        self.now = end

    def _next_time(self) -> float:
        due = [self._flight[0][0]] if self._flight else []
        due += [d for link in self.links.values() if (d := link.next_deadline()) is not None]
        due += [d for core in self._running() if (d := core.next_deadline()) is not None]
        return min(due, default=float("inf"))

    def _arrive(self, to_hub: bool, address: Address, data: bytes, hub: int) -> None:
        if to_hub:
            event = envelope.decode(data).event
            self.to_hub[event.KIND] += 1
            self.arrivals.append((hub, event))
            core = self.cores[hub]
            if core is not None:
                core.receive_datagram(data, address, self.now)
            return
        link = self.links.get(address)
        if link is not None and self.routes[address][link.hub] == hub:  # it hears its hub only
            self.events[address] += link.receive_datagram(data, self.now)

    def _flush(self) -> None:
        for address, link in self.links.items():
            for data in link.datagrams_to_send():
                self._post(data, address, to_hub=True, hub=self.routes[address][link.hub])
        for hub, core in enumerate(self.cores):
            for data, address in core.datagrams_to_send() if core is not None else ():
                self._post(data, address, to_hub=False, hub=hub)

    def _post(self, data: bytes, address: Address, to_hub: bool, hub: int) -> None:
        if self.block is not None and self.block(address, data, to_hub):
            self.impaired["blocked"] += 1
            return
        imp = self.impairment
        if imp.loss and imp.rng.random() < imp.loss:
            self.impaired["dropped"] += 1
            return
        copies = 2 if imp.dup and imp.rng.random() < imp.dup else 1
        self.impaired["duplicated"] += copies - 1
        for _ in range(copies):
            delay = imp.latency
            if imp.reorder and imp.rng.random() < imp.reorder:
                delay += imp.rng.uniform(0.0, imp.jitter)
                self.impaired["delayed"] += 1
            heapq.heappush(self._flight, (self.now + delay, next(self._order), to_hub, address, data, hub))
