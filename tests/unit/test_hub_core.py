"""The hub's sans-I/O core driven directly: datagrams and times in, datagrams out.

No sockets, no sleeps: a :class:`~tests.unit.hubwire.Hub` holds the core, a mailbox per
address and a clock moved by hand.  Addresses are loopback ones; to see how the hub treats
an untrusted network, ``UNTRUSTED`` trusts only ::1, so 127.0.0.1 must prove itself.
"""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomcast.hub.core import HubConfig
from roomcast.shared import cookie, envelope, events, limits
from roomcast.shared.text import HELP_LINES
from tests.unit.hubwire import UNTRUSTED, Hub, Peer, TextPeer, envelope_peer, of, one

FOREIGN_TOKEN = bytes(range(16))


def raw_envelope(**wire: object) -> bytes:
    """An envelope built by hand, so it can break rules the event classes enforce."""
    return envelope.HEADER + msgpack.packb(wire, use_bin_type=True)


def delivered(items: list[object]) -> list[str]:
    return [e.body for e in of(events.Deliver, items)]


# --- handshake --------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [0, limits.HELLO_PAD_TO])
def test_hello_without_cookie_gets_only_a_challenge_within_3x(pad: int) -> None:
    hub = Hub(UNTRUSTED)
    hello = envelope.encode(events.Hello(nick="a", pad=bytes(pad)))
    hub.feed(hello, ("127.0.0.1", 40001))
    replies = hub.take(("127.0.0.1", 40001))
    assert [type(envelope.decode(r).event) for r in replies] == [events.Challenge]
    assert sum(map(len, replies)) <= limits.AMPLIFICATION_FACTOR * len(hello)
    assert hub.core.registry.clients == {}
    assert hub.core.counters["challenges"] == 1


def test_hello_with_cookie_gets_welcome_with_a_16_byte_token() -> None:
    hub = Hub(HubConfig(session_timeout=42.0))
    peer = Peer(hub, 40001)
    welcome = peer.connect("alice")
    assert len(welcome.token) == 16 == limits.TOKEN_BYTES
    assert welcome.nick == "alice"
    assert welcome.hub == hub.core.hub_id
    assert welcome.idle == 42.0
    client = hub.core.registry.clients[peer.address]
    assert client.link is not None and client.link.token == welcome.token


def test_each_session_gets_its_own_token() -> None:
    hub = Hub()
    tokens = {Peer(hub, 40001 + n).connect(f"n{n}").token for n in range(5)}
    assert len(tokens) == 5


def test_cookie_made_for_another_address_is_refused() -> None:
    hub = Hub(UNTRUSTED)
    alice = Peer(hub, 40001)
    alice.send(events.Hello(nick="alice", pad=bytes(40)))
    stolen = one(events.Challenge, alice.received()).cookie
    for address in [("127.0.0.1", 40002), ("127.0.0.2", 40001)]:
        thief = Peer(hub, address[1], host=address[0])
        thief.send(events.Hello(nick="mallory", cookie=stolen, pad=bytes(40)))
        answers = thief.received()
        assert of(events.Welcome, answers) == []
        assert len(of(events.Challenge, answers)) == 1  # a fresh challenge for its own address
    assert hub.core.registry.clients == {}


def test_cookie_from_an_old_time_bucket_is_refused_and_from_the_last_one_accepted() -> None:
    hub = Hub()
    peer = Peer(hub, 40001)
    peer.send(events.Hello(nick="alice"))
    issued = one(events.Challenge, peer.received()).cookie
    hub.advance(2 * limits.COOKIE_BUCKET)
    peer.send(events.Hello(nick="alice", cookie=issued))
    assert [type(e) for e in peer.received()] == [events.Challenge]
    assert hub.core.registry.clients == {}

    hub = Hub()
    peer = Peer(hub, 40001)
    peer.send(events.Hello(nick="alice"))
    issued = one(events.Challenge, peer.received()).cookie
    hub.advance(limits.COOKIE_BUCKET + 1.0)
    peer.send(events.Hello(nick="alice", cookie=issued))
    assert [type(e) for e in peer.received()] == [events.Welcome]


def test_forged_cookie_is_refused() -> None:
    hub = Hub()
    peer = Peer(hub, 40001)
    forged = cookie.make_cookie(b"not the hub secret" * 2, peer.address, hub.now)
    peer.send(events.Hello(nick="alice", cookie=forged))
    assert [type(e) for e in peer.received()] == [events.Challenge]
    assert hub.core.registry.clients == {}


def test_resent_hello_gets_the_same_welcome_and_token() -> None:
    hub = Hub()
    peer = Peer(hub, 40001)
    peer.send(events.Hello(nick="alice"))
    hello = events.Hello(nick="alice", cookie=one(events.Challenge, peer.received()).cookie)
    peer.send(hello)
    first = one(events.Welcome, peer.received())
    bob = envelope_peer(hub, 40002, "bob", "hall")
    peer.token = first.token
    assert isinstance(peer.ask(events.Join, room="hall"), events.Reply)
    assert [p.nick for p in of(events.Presence, bob.received())] == ["alice"]  # and acked
    hub.advance(1.0)
    peer.send(hello, token=b"")  # our welcome was lost: say hello again
    again = peer.received()
    assert again == [first]
    assert len(hub.core.registry.clients) == 2
    assert hub.members("hall") == {"alice", "bob"}  # not re-registered: still in its room
    assert of(events.Presence, bob.received()) == []


# --- tokens ------------------------------------------------------------------------------------------


def test_wrong_token_is_dropped_counted_and_has_no_effect() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    alice.received()
    spoofed = [
        events.Say(id=1, room="hall", body="spoofed"),
        events.Nick(id=1, nick="mallory"),
        events.Part(id=1, room="hall"),
        events.Join(id=1, room="elsewhere"),
        events.Msg(id=1, to="bob", body="spoofed"),
        events.Bye(reason="spoofed"),
        events.Ack(stream="hall", upto=99),
    ]
    for event in spoofed:
        alice.send(event, token=FOREIGN_TOKEN)
    alice.send(events.Bye(), token=b"")  # no token at all
    assert alice.received() == []
    assert bob.received() == []
    assert hub.core.counters["drops.bad-token"] == len(spoofed) + 1
    assert hub.members("hall") == {"alice", "bob"}
    assert "elsewhere" not in hub.core.registry.rooms
    assert hub.core.registry.clients[alice.address].nick == "alice"
    assert hub.core.registry.clients[alice.address].link.next_id == 2  # type: ignore[union-attr]
    reply = alice.ask(events.Say, room="hall", body="real")
    assert isinstance(reply, events.Reply)
    assert delivered(bob.received()) == ["real"]


def test_token_of_another_session_is_refused() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    alice.send(events.Part(id=2, room="hall"), token=bob.token)
    assert hub.members("hall") == {"alice", "bob"}
    assert hub.core.counters["drops.bad-token"] == 1


def test_envelope_from_unknown_address_gets_unknown_session_within_3x() -> None:
    hub = Hub(UNTRUSTED)
    stranger = Peer(hub, 40001)
    request = envelope.encode(events.Say(id=1, room="hall", body="hello there"), token=FOREIGN_TOKEN)
    hub.feed(request, stranger.address)
    replies = hub.take(stranger.address)
    assert [envelope.decode(r).event.code for r in replies] == ["unknown-session"]
    assert sum(map(len, replies)) <= 3 * len(request)
    assert hub.core.counters["drops.unknown-session"] == 1
    assert hub.core.registry.clients == {}


def test_datagram_too_small_to_answer_within_3x_is_dropped_and_counted() -> None:
    hub = Hub(UNTRUSTED)
    hub.feed(b"\xc1\x01\xc1", ("127.0.0.1", 40001))  # malformed; the error would be ~70 bytes
    assert hub.take(("127.0.0.1", 40001)) == []
    assert hub.core.counters["drops.amplification"] == 1
    assert hub.core.counters["errors.malformed"] == 1


def test_ping_from_unknown_untrusted_address_gets_unknown_session() -> None:
    hub = Hub(UNTRUSTED)
    ping = envelope.encode(events.Ping(), token=FOREIGN_TOKEN)  # what an idle HubLink sends
    hub.feed(ping, ("127.0.0.1", 40001))
    replies = hub.take(("127.0.0.1", 40001))
    assert [envelope.decode(r).event.code for r in replies] == ["unknown-session"]
    assert sum(map(len, replies)) <= 3 * len(ping)


def test_envelope_from_unknown_trusted_address_gets_unknown_session() -> None:
    hub = Hub()
    stranger = Peer(hub, 40001)
    stranger.send(events.Ping(), token=FOREIGN_TOKEN)
    assert [e.code for e in stranger.received()] == ["unknown-session"]


# --- anti-amplification ---------------------------------------------------------------------------


def _hostile_datagrams(rng: random.Random) -> list[bytes]:
    """One of every kind an unvalidated address may send."""
    out: list[bytes] = []
    out += [rng.randbytes(n) for n in (1, 2, 3, 5, 8, 13, 40, 200, 1400, 1500)]  # junk
    out += [b"\xc1" + rng.randbytes(n) for n in (0, 1, 2, 10, 100)]  # junk envelopes
    out += [b"x" * n for n in range(1, 40)]  # text lines of 1..N bytes, no newline
    out += [b"y" * n + b"\n" for n in range(0, 40)]
    out += [b"z" * n + b"\r\n" for n in range(0, 10)]
    out += ["é".encode() * n for n in range(1, 12)] + ["日本".encode() * n for n in range(1, 6)]
    out += [b"\xff\xfe", b"\x80" * 7, b"/join lobby\n", b"/help\n", b"bye", b"bye\n", b"/nick x\n"]
    out += [envelope.encode(events.Hello(nick="n", pad=bytes(p))) for p in (0, 10, 40, 200)]
    out += [envelope.encode(events.Hello(nick="n", cookie=rng.randbytes(24)))]
    out += [
        raw_envelope(k="hello"),  # missing field
        raw_envelope(k="hello", nick=5),  # wrong type
        raw_envelope(k="hello", nick="bad nick!"),  # bad name
        raw_envelope(k="nosuchkind"),
        raw_envelope(k="join", id=1, room="hall", s=b"short"),
        bytes([limits.ENVELOPE_MAGIC, 99]) + msgpack.packb({"k": "ping"}),  # bad version
        envelope.HEADER + b"\xdb\xff\xff\xff\xff",  # a string declaring 4 GiB
        envelope.HEADER + b"\xdd\x7f\xff\xff\xff",  # an array declaring 2**31 items
        envelope.HEADER + b"\x81\x01\x02",  # non-string key
    ]
    out += [envelope.encode(e, token=FOREIGN_TOKEN) for e in (events.Ping(), events.Stats(id=1))]
    out += [
        envelope.encode(events.Say(id=1, room="hall", body="b" * n), token=FOREIGN_TOKEN) for n in (1, 200)
    ]
    return out


def test_untrusted_address_never_gets_more_than_3x_what_it_sent() -> None:
    hub = Hub(UNTRUSTED)
    datagrams = _hostile_datagrams(random.Random(3))
    for port, data in enumerate(datagrams, start=20000):
        hub.feed(data, ("127.0.0.1", port))  # each from a fresh address
        hub.feed(data, ("127.0.0.1", 40001))  # and all from the same one
    for address, sent in hub.bytes_out.items():
        assert sent <= limits.AMPLIFICATION_FACTOR * hub.bytes_in[address], address
    assert hub.core.registry.clients == {}
    counters = hub.core.counters
    assert 0 < counters["unvalidated_bytes_out"] <= 3 * counters["unvalidated_bytes_in"]
    assert counters["unvalidated_bytes_out"] == counters["bytes_out"]
    assert counters["drops.amplification"] > 0  # some answers did not fit, and were not sent


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=8))
def test_untrusted_address_gets_at_most_3x_of_any_bytes(datagrams: list[bytes]) -> None:
    hub = Hub(UNTRUSTED)
    for data in datagrams:
        hub.feed(data, ("127.0.0.1", 40001))
    assert hub.bytes_out[("127.0.0.1", 40001)] <= 3 * hub.bytes_in[("127.0.0.1", 40001)]
    assert hub.core.registry.clients == {}


@given(st.lists(st.text(max_size=80), min_size=1, max_size=6))
def test_untrusted_text_lines_of_any_characters_get_at_most_3x(lines: list[str]) -> None:
    hub = Hub(UNTRUSTED)
    peer = TextPeer(hub, 40001)
    for line in lines:
        for reply in peer.send(line.encode("utf-8", "surrogatepass")):
            assert len(reply) <= limits.MAX_TEXT_REPLY
    assert hub.bytes_out[peer.address] <= 3 * hub.bytes_in[peer.address]


def test_unvalidated_bytes_in_counts_the_bytes_actually_received() -> None:
    hub = Hub(UNTRUSTED)
    hub.feed(b"hello", ("127.0.0.1", 40001))
    assert hub.take(("127.0.0.1", 40001)), "a code prompt fits the budget"
    assert hub.core.counters["unvalidated_bytes_in"] == 5


def test_untrusted_text_line_early_on_the_hub_clock_gets_a_code() -> None:
    # Codes are good for this time bucket and the one before: before the first 30 s the one
    # before is bucket -1 (this crashed receive_datagram with OverflowError).
    hub = Hub(UNTRUSTED)
    assert hub.now < limits.COOKIE_BUCKET
    assert "code" in TextPeer(hub, 40001).line("hello")


def test_untrusted_text_client_types_back_the_code_to_become_a_guest() -> None:
    hub = Hub(UNTRUSTED)
    peer = TextPeer(hub, 40001)
    prompt = peer.line("hello everyone")
    code = prompt.rsplit(" ", 1)[-1]
    assert len(code) == cookie.CODE_LENGTH and "code" in prompt
    assert hub.core.registry.clients == {}
    assert "code" in peer.line("WRONG1")  # a wrong code: asked again, still nobody
    assert hub.core.registry.clients == {}
    welcome = peer.line(code.lower())
    assert welcome.startswith("welcome guest-40001")
    assert hub.members("lobby") == {"guest-40001"}
    assert peer.line("now I can talk") == "sent to lobby"


def test_untrusted_text_code_expires_after_two_buckets() -> None:
    hub = Hub(UNTRUSTED)
    peer = TextPeer(hub, 40001)
    code = peer.line("hello everyone").rsplit(" ", 1)[-1]
    hub.advance(2 * limits.COOKIE_BUCKET)
    assert "code" in peer.line(code)
    assert hub.core.registry.clients == {}


@pytest.mark.parametrize(
    "line",
    [
        "héllo wörld",
        "日本語のテキスト",
        "ǅungla",
        "ﬃ ligature",
        "\u0130stanbul",
        "🙂🙂🙂🙂",
        "\x00\x1b[31m",
        "ß" * 30,
    ],
)
def test_non_ascii_lines_from_untrusted_address_do_not_crash(line: str) -> None:
    hub = Hub(UNTRUSTED)
    peer = TextPeer(hub, 40001)
    replies = peer.send(line)
    for reply in replies:
        reply.decode("utf-8")
    assert hub.bytes_out[peer.address] <= 3 * hub.bytes_in[peer.address]
    assert hub.core.registry.clients == {}


# --- text clients --------------------------------------------------------------------------------


def test_text_client_is_a_guest_named_for_its_port_in_lobby() -> None:
    hub = Hub()
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    text = TextPeer(hub, 40001)
    reply = text.line("hi all")
    assert reply.startswith("welcome guest-40001, you are in lobby")
    assert hub.members("lobby") == {"bob", "guest-40001"}
    seen = bob.received()
    assert [(p.nick, p.what) for p in of(events.Presence, seen)] == [("guest-40001", "joined")]
    assert [(d.nick, d.body) for d in of(events.Deliver, seen)] == [("guest-40001", "hi all")]


def test_text_guest_nick_avoids_a_taken_one() -> None:
    hub = Hub()
    envelope_peer(hub, 40002, "guest-40001")
    TextPeer(hub, 40001, host="127.0.0.1").line("hi")
    assert hub.core.registry.clients[("127.0.0.1", 40001)].nick == "guest-40001-2"


_LINES = [
    "hello",
    "/help",
    "/who",
    "/rooms",
    "/join other",
    "/part",
    "/stats",
    "/history 200",
    "é" * 600,
    "/topic " + "日" * 300,
    "/topic",
    "/nick",
    "/nick bad!name",
    "/msg nobody hi",
    "/me " + "🙂" * 240,
    "\xff",
    "/live on",
    "/live off",
    "/history",
]


def test_text_client_gets_exactly_one_reply_of_valid_utf8_within_1024_per_line() -> None:
    hub = Hub(HubConfig(flood_rate=0))
    loud = envelope_peer(hub, 40002, "loud", "lobby")
    text = TextPeer(hub, 40001)
    for n, line in enumerate(_LINES * 3):
        loud.request(events.Say, room="lobby", body=f"{n} " + "語" * 300)  # fill its queue
        for live_line in hub.take(text.address):  # sent as it happened, while live
            assert len(live_line) <= limits.MAX_TEXT_REPLY
            live_line.decode("utf-8")
        reply = text.line(line)
        assert 0 < len(reply.encode()) <= limits.MAX_TEXT_REPLY
    assert len(text.send(b"\xff\xfe\n")) == 1  # not UTF-8: one error line


@given(st.lists(st.text(max_size=300), min_size=1, max_size=8))
def test_any_text_line_gets_one_bounded_utf8_reply(lines: list[str]) -> None:
    hub = Hub()
    other = envelope_peer(hub, 40002, "other", "lobby")
    text = TextPeer(hub, 40001)
    for line in lines:
        other.request(events.Say, room="lobby", body="ü" * 400)
        replies = text.send(line.encode("utf-8", "surrogatepass"))
        assert len(replies) == 1, (line, replies)
        assert len(replies[0]) <= limits.MAX_TEXT_REPLY
        replies[0].decode("utf-8")


def test_text_reply_carries_the_room_lines_queued_since_the_last_line() -> None:
    hub = Hub()
    text = TextPeer(hub, 40001)
    text.line("first")
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    for body in ("one", "two", "three"):
        bob.request(events.Say, room="lobby", body=body)
    assert hub.take(text.address) == []  # not live: nothing until it speaks
    reply = text.line("/who")
    assert reply.split("\n") == [
        "[lobby] * bob joined",
        "[lobby] bob: one",
        "[lobby] bob: two",
        "[lobby] bob: three",
        "2 in lobby: bob guest-40001",
    ]
    assert text.line("/who") == "2 in lobby: bob guest-40001"  # the queue was emptied


def test_text_say_with_queued_lines_returns_just_the_lines() -> None:
    hub = Hub()
    text = TextPeer(hub, 40001)
    text.line("first")
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    bob.request(events.Say, room="lobby", body="one")
    assert text.line("mine") == "[lobby] * bob joined\n[lobby] bob: one"
    assert delivered(bob.received()) == ["mine"]


def test_text_reply_says_how_many_earlier_lines_were_skipped() -> None:
    hub = Hub(HubConfig(flood_rate=0))
    text = TextPeer(hub, 40001)
    text.line("first")
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    sent = 80
    for n in range(sent):
        bob.request(events.Say, room="lobby", body=f"message {n:03} " + "x" * 40)
    lines = text.line("/rooms").split("\n")
    assert lines[-2:] == ["1 room", "lobby (2)"]
    notice, shown = lines[0], lines[1:-2]
    skipped = int(notice.removeprefix("(").split(" ")[0])
    assert notice == f"({skipped} earlier messages skipped)"
    assert shown[-1].startswith("[lobby] bob: message 079")  # newest kept
    assert skipped + len(shown) == sent + 1  # + bob's joined notice


def test_bye_is_answered_with_exactly_bye_and_removes_the_client() -> None:
    hub = Hub()
    bob = envelope_peer(hub, 40002, "bob", "lobby", "other")
    text = TextPeer(hub, 40001)
    text.line("hi")
    text.line("/join other")
    bob.received()
    assert text.send("bye") == [b"bye"]
    assert text.address not in hub.core.registry.clients
    assert hub.members("lobby") == hub.members("other") == {"bob"}
    left = of(events.Presence, bob.received())
    assert sorted((p.room, p.what, p.detail) for p in left) == [
        ("lobby", "left", "quit"),
        ("other", "left", "quit"),
    ]
    assert text.send("bye") == [b"bye"]  # bye from nobody: still exactly bye, nobody registered
    assert text.address not in hub.core.registry.clients


def test_live_mode_sends_room_lines_as_they_happen() -> None:
    hub = Hub()
    text = TextPeer(hub, 40001)
    text.line("hi")
    assert text.line("/live on").startswith("live mode on")
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    bob.request(events.Say, room="lobby", body="now")
    assert hub.take(text.address) == [b"[lobby] * bob joined\n", b"[lobby] bob: now\n"]
    assert text.line("/live off") == "live mode off"
    bob.request(events.Say, room="lobby", body="later")
    assert hub.take(text.address) == []
    assert text.line("/who") == "[lobby] bob: later\n2 in lobby: bob guest-40001"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/join other", "joined other (1 member)"),
        ("/part", "left lobby"),
        ("/part lobby", "left lobby"),
        ("/part nowhere", "error: you are not in nowhere"),
        ("/nick carol", "[lobby] * guest-40001 is now known as carol\nyou are now carol"),
        ("/nick bob", "error: nick bob is taken"),
        ("/nick bad!", "error: nick 'bad!' contains '!', which names may not hold"),
        ("/who", "2 in lobby: bob guest-40001"),
        ("/who nowhere", "error: there is no room nowhere"),
        ("/rooms", "1 room\nlobby (2)"),
        ("/msg bob psst", "sent privately to bob"),
        ("/msg nobody psst", "error: nobody is called nobody here"),
        ("/me waves", "sent to lobby"),
        ("/topic release friday", "topic of lobby set"),
        ("/topic", "lobby has no topic; /topic TEXT sets one"),
        ("/history", "[lobby] * guest-40001 joined\n[lobby] * bob joined\n2 earlier messages of lobby"),
        ("/history 1", "[lobby] * bob joined\n1 earlier message"),
        ("/stats", "hub stats\nuptime 0 s\nclients 1 envelope, 1 text; rooms 1"),
        ("/help", "\n".join(HELP_LINES)),
        ("/live on", "live mode on: room lines arrive as they happen"),
        ("/live off", "live mode off"),
        ("/quit", "bye"),
        ("/join", "error: usage: /join ROOM"),
        ("/frobnicate", "error: unknown command /frobnicate; type /help for the list"),
    ],
)
def test_every_text_command_is_answered(line: str, expected: str) -> None:
    hub = Hub()
    guest = TextPeer(hub, 40001)
    guest.line("/who")  # registers the guest, in lobby
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    assert guest.line("/who").startswith("[lobby] * bob joined\n")  # empties its queue
    assert guest.line(line).startswith(expected)
    got = bob.received()
    if line == "/msg bob psst":
        assert [(d.room, d.nick, d.body) for d in of(events.Deliver, got)] == [("", "guest-40001", "psst")]
    elif line == "/me waves":
        assert [(d.nick, d.body, d.action) for d in of(events.Deliver, got)] == [
            ("guest-40001", "waves", True)
        ]
    else:
        assert of(events.Deliver, got) == []


def test_text_topic_is_shown_after_it_is_set() -> None:
    hub = Hub()
    text = TextPeer(hub, 40001)
    text.line("/topic release friday")
    assert text.line("/topic").startswith("topic of lobby: release friday (set by guest-40001")
    assert "lobby (1) release friday" in text.line("/rooms")


# --- requests ------------------------------------------------------------------------------------


def test_out_of_order_requests_are_carried_out_in_id_order() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")  # join was id 1
    bob = envelope_peer(hub, 40002, "bob", "hall")
    alice.received()
    says = {n: events.Say(id=n, room="hall", body=f"m{n}") for n in (2, 3, 4)}
    alice.send(says[4])
    alice.send(says[3])
    assert of(events.Reply, alice.received()) == []
    assert bob.received() == []
    alice.send(says[2])
    replies = of(events.Reply, alice.received())
    assert [r.id for r in replies] == [2, 3, 4]
    shown = of(events.Deliver, bob.received())
    assert [d.body for d in shown] == ["m2", "m3", "m4"]
    assert [d.seq for d in shown] == [r.seq for r in replies] == [3, 4, 5]  # bob's join was 2


def test_a_gap_in_request_ids_is_reported_with_a_selective_ack() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")  # next id is 2
    alice.send(events.Say(id=4, room="hall", body="x"))
    assert alice.received() == [events.Ack(stream="", upto=1, sack=(4,))]
    alice.send(events.Say(id=3, room="hall", body="y"))
    assert alice.received() == [events.Ack(stream="", upto=1, sack=(3, 4))]


def test_request_too_far_ahead_is_refused() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    alice.send(events.Rooms(id=1 + 2 * limits.CLIENT_WINDOW + 1))
    assert [e.code for e in alice.received()] == ["window"]


def test_duplicate_request_is_answered_from_cache_without_running_again() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    alice.received()
    say = alice.request(events.Say, room="hall", body="once")
    first = hub.take(alice.address)
    assert [type(envelope.decode(d).event) for d in first] == [events.Reply]
    for _ in range(3):
        alice.send(say)
        assert hub.take(alice.address) == first  # the same answer bytes
    assert delivered(bob.received()) == ["once"]
    assert hub.core.counters["messages"] == 1
    assert hub.core.counters["duplicates"] == 3
    assert len(hub.core.registry.rooms["hall"].history) == 3  # 2 joins + 1 message


def test_replies_carry_the_room_seq_of_what_the_request_produced() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = Peer(hub, 40002)
    bob.connect("bob")
    join = bob.ask(events.Join, room="hall")
    [joined] = of(events.Presence, alice.received())
    assert isinstance(join, events.Reply) and join.seq == joined.seq == 2
    say = alice.ask(events.Say, room="hall", body="hi")
    [hi] = of(events.Deliver, bob.received())
    assert isinstance(say, events.Reply) and say.seq == hi.seq == 3
    part = bob.ask(events.Part, room="hall")
    [left] = of(events.Presence, alice.received())
    assert isinstance(part, events.Reply) and part.seq == left.seq == 4


def test_nick_change_is_published_to_every_room_including_the_renamer() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "x", "y")
    bob = envelope_peer(hub, 40002, "bob", "x")
    carol = envelope_peer(hub, 40003, "carol", "y")
    alice.received()
    reply = alice.request(events.Nick, nick="Alicia")
    mine = alice.received()
    assert one(events.Reply, mine).id == reply.id
    renamed = of(events.Presence, mine)
    assert sorted((p.room, p.nick, p.what, p.detail) for p in renamed) == [
        ("x", "alice", "renamed", "Alicia"),
        ("y", "alice", "renamed", "Alicia"),
    ]
    assert [(p.room, p.what, p.detail) for p in of(events.Presence, bob.received())] == [
        ("x", "renamed", "Alicia")
    ]
    assert [(p.room, p.what, p.detail) for p in of(events.Presence, carol.received())] == [
        ("y", "renamed", "Alicia")
    ]
    assert hub.core.registry.find("alicia").address == alice.address
    assert isinstance(bob.ask(events.Nick, nick="ALICIA"), events.Error)  # case-insensitively taken


def test_msg_to_unknown_nick_is_refused_with_no_such_nick() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    error = alice.ask(events.Msg, to="nobody", body="hi")
    assert isinstance(error, events.Error)
    assert (error.code, error.id) == ("no-such-nick", 1)


def test_msg_is_delivered_privately_on_its_own_stream() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    bob = envelope_peer(hub, 40002, "bob")
    alice.ask(events.Msg, to="BOB", body="one")
    alice.ask(events.Msg, to="bob", body="two")
    got = of(events.Deliver, bob.received())
    assert [(d.room, d.seq, d.nick, d.body) for d in got] == [
        ("", 1, "alice", "one"),
        ("", 2, "alice", "two"),
    ]


def test_join_with_a_bad_room_name_is_refused_at_decode_with_bad_name() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    bad = ["bad room", "-dash", "", "x" * 33, "caf\u00e9!", "\u804a\u200b\u5929"]
    for n, room in enumerate(bad, start=1):
        hub.feed(raw_envelope(k="join", s=alice.token, id=n, room=room), alice.address)
        [error] = alice.received()
        assert error.code == "bad-name" and "room name" in error.text
    assert hub.core.registry.rooms == {}
    assert hub.core.counters["errors.bad-name"] == len(bad)


def test_request_refused_at_decode_is_answered_with_its_id_and_does_not_block_the_next() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")  # next id is 1
    bad_join = raw_envelope(k="join", s=alice.token, id=1, room="bad room")
    hub.feed(bad_join, alice.address)
    [error] = alice.received()
    assert (error.code, error.id) == ("bad-name", 1)
    hub.feed(bad_join, alice.address)  # resent: the same answer
    assert alice.received() == [error]
    alice.send(events.Join(id=2, room="good"))
    assert [type(e) for e in alice.received()] == [events.Reply]


def test_bad_request_after_a_gap_is_answered_in_its_turn() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    hub.feed(raw_envelope(k="say", s=alice.token, id=2, room="hall", body=5), alice.address)
    assert of(events.Error, alice.received()) == []  # waits behind id 1
    alice.send(events.Join(id=1, room="hall"))
    answers = [e for e in alice.received() if isinstance(e, events.Reply | events.Error)]
    assert [(type(a).__name__, a.id) for a in answers] == [("Reply", 1), ("Error", 2)]
    assert answers[1].code == "bad-type"


def test_unexpected_kind_from_a_client_is_refused() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    alice.send(events.Pong(id=1))
    assert [e.code for e in alice.received()] == ["unexpected-kind"]


def test_ping_is_answered_with_pong() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    alice.send(events.Ping(id=7))
    assert alice.received() == [events.Pong(id=7)]


def test_text_on_an_envelope_session_is_refused_within_3x() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    replies = TextPeer(hub, 40001).send("hi")
    assert len(replies) == 1 and len(replies[0]) <= 9
    assert hub.core.registry.clients[alice.address].link is not None


# --- reliability ---------------------------------------------------------------------------------


def _window(hub: Hub, peer: Peer):  # type: ignore[no-untyped-def]
    link = hub.core.registry.clients[peer.address].link
    assert link is not None
    return link.window


def test_unacked_delivery_is_retransmitted_after_rto_and_an_acked_one_is_not() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall", auto_ack=False)
    carol = envelope_peer(hub, 40003, "carol", "hall")
    bob.ack("hall", one(events.Presence, bob.received()).seq)  # carol joined
    alice.received()
    alice.request(events.Say, room="hall", body="hello")
    [first] = of(events.Deliver, bob.received())
    assert delivered(carol.received()) == ["hello"]  # and carol acks it
    rto = _window(hub, bob).rtt.rto()
    deadline = hub.core.next_deadline()
    assert deadline is not None and deadline <= hub.now + rto
    hub.advance(rto * 0.9)
    assert bob.received() == []
    hub.advance(rto * 0.1 + 0.001)
    assert bob.received() == [first]
    assert carol.received() == []
    assert hub.core.counters["retransmits"] == 1
    hub.advance(rto * 1.9)  # backed off: the next one comes two timeouts later
    assert bob.received() == []
    hub.advance(rto * 0.1 + 0.001)
    assert bob.received() == [first]
    bob.ack("hall", first.seq)
    hub.advance(20.0)
    assert bob.received() == [] and carol.received() == []
    assert hub.core.counters["retransmits"] == 2


def test_cumulative_and_selective_acks_free_the_window() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall", auto_ack=False)
    alice.received()
    for n in range(5):
        alice.request(events.Say, room="hall", body=f"m{n}")
    seqs = [d.seq for d in of(events.Deliver, bob.received())]
    assert seqs == [3, 4, 5, 6, 7]
    window = _window(hub, bob)
    assert len(window) == 5
    bob.ack("hall", upto=4, sack=(6,))
    assert sorted(window.pending()) == [("hall", 5), ("hall", 7)]
    assert hub.core.gauges()["unacked"] == 2
    hub.advance(window.next_deadline() - hub.now + 0.001)  # type: ignore[operator]
    assert sorted(d.seq for d in of(events.Deliver, bob.received())) == [5, 7]
    bob.ack("hall", upto=7)
    assert len(window) == 0
    assert hub.core.gauges()["unacked"] == 0


def test_selective_ack_past_a_gap_fast_retransmits_the_missing_delivery() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall", auto_ack=False)
    alice.received()
    alice.request(events.Say, room="hall", body="m0")  # seq 3
    alice.request(events.Say, room="hall", body="m1")  # seq 4, lost
    hub.advance(0.02)
    alice.request(events.Say, room="hall", body="m2")  # seq 5
    bob.received()
    hub.advance(0.02)  # well within the RTO
    bob.ack("hall", upto=3, sack=(5,))
    assert [(d.seq, d.body) for d in of(events.Deliver, bob.received())] == [(4, "m1")]
    assert hub.core.counters["retransmits.fast"] == 1
    assert hub.core.counters["retransmits"] == 0


def test_acks_for_another_stream_free_nothing() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall", "other")
    bob = envelope_peer(hub, 40002, "bob", "hall", "other", auto_ack=False)
    alice.received()
    alice.request(events.Say, room="hall", body="m")
    bob.received()
    bob.ack("other", upto=99)
    bob.ack("", upto=99)
    assert ("hall", 3) in _window(hub, bob)


def test_private_messages_are_retransmitted_until_acked_on_stream_empty() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice")
    bob = envelope_peer(hub, 40002, "bob", auto_ack=False)
    alice.ask(events.Msg, to="bob", body="psst")
    [private] = of(events.Deliver, bob.received())
    hub.advance(limits.INITIAL_RTO + 0.01)
    assert of(events.Deliver, bob.received()) == [private]
    bob.ack("", upto=private.seq)
    hub.advance(10.0)
    assert bob.received() == []


def test_in_flight_cap_queues_deliveries_and_acks_release_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MEMBER_IN_FLIGHT", 4)
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall", auto_ack=False)
    alice.received()
    for n in range(10):
        alice.request(events.Say, room="hall", body=f"m{n}")  # seqs 3..12
    assert delivered(bob.received()) == ["m0", "m1", "m2", "m3"]
    window = _window(hub, bob)
    assert len(window.pending()) == 4 and len(window) == 10
    hub.advance(window.next_deadline() - hub.now + 0.001)  # type: ignore[operator]
    # a timeout resends what is in flight, never the queue
    assert delivered(bob.received()) == ["m0", "m1", "m2", "m3"]
    bob.ack("hall", upto=4)  # m0 and m1
    assert delivered(bob.received()) == ["m4", "m5"]
    bob.ack("hall", upto=8)
    assert delivered(bob.received()) == ["m6", "m7", "m8", "m9"]
    bob.ack("hall", upto=12)
    assert len(window) == 0


def test_slow_consumer_is_told_and_removed_and_others_are_unaffected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MEMBER_IN_FLIGHT", 4)
    monkeypatch.setattr(limits, "MEMBER_WINDOW", 8)
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall", "side")
    slow = envelope_peer(hub, 40002, "slow", "hall", "side", auto_ack=False)
    fast = envelope_peer(hub, 40003, "fast", "hall")
    alice.received()
    seen: list[str] = []
    for n in range(12):
        assert isinstance(alice.ask(events.Say, room="hall", body=f"m{n}"), events.Reply)
        seen += delivered(fast.received())
    assert seen == [f"m{n}" for n in range(12)]
    # past the window, but its acks have not stalled for long yet: it stays
    assert hub.members("hall") == {"alice", "slow", "fast"}
    hub.advance(limits.ACK_STALL_TIMEOUT)  # its retransmission timer sees the stall
    assert [e.code for e in of(events.Error, slow.received())] == ["too-slow"]
    # out of its rooms, its held deliveries dropped, but its session kept (no request redone)
    assert hub.core.registry.clients[slow.address].rooms == []
    assert len(_window(hub, slow)) == 0
    assert hub.members("hall") == {"alice", "fast"} and hub.members("side") == {"alice"}
    left = [p for p in of(events.Presence, alice.received()) if p.what == "left"]
    assert sorted((p.room, p.nick, p.detail) for p in left) == [
        ("hall", "slow", "too slow"),
        ("side", "slow", "too slow"),
    ]
    assert [p.what for p in of(events.Presence, fast.received())] == ["left"]
    assert len(_window(hub, fast)) == 0  # fast acked everything and holds nothing


def test_a_member_whose_acks_progress_stays_past_the_window_but_not_past_the_hard_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MEMBER_IN_FLIGHT", 4)
    monkeypatch.setattr(limits, "MEMBER_WINDOW", 8)
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    slow = envelope_peer(hub, 40002, "slow", "hall", auto_ack=False)
    seen: set[int] = set()
    upto = 0
    hard = limits.MEMBER_WINDOW * limits.MEMBER_WINDOW_HARD_FACTOR
    for n in range(hard):  # one line acked for every two said: it falls behind, slowly
        alice.request(events.Say, room="hall", body=f"m{n}")
        seen |= {d.seq for d in of(events.Deliver, slow.received())}
        upto = upto or min(seen) - 1
        if n % 2 and upto + 1 in seen:
            upto += 1
            slow.ack("hall", upto=upto)
        hub.advance(limits.ACK_STALL_TIMEOUT / 4)  # far longer than a window's worth of time
    assert len(_window(hub, slow)) > limits.MEMBER_WINDOW
    assert hub.members("hall") == {"alice", "slow"}, "still receiving and acking: kept"
    for n in range(hard):
        alice.request(events.Say, room="hall", body=f"more {n}")
    assert hub.members("hall") == {"alice"}, "past the hard cap, dropped at once"
    assert "too-slow" in [e.code for e in of(events.Error, slow.received())]


def test_slow_consumer_is_also_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MEMBER_WINDOW_BYTES", 3000)
    hub = Hub(HubConfig(flood_rate=0))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    slow = envelope_peer(hub, 40002, "slow", "hall", auto_ack=False)
    for _ in range(4):
        alice.request(events.Say, room="hall", body="x" * 900)
    assert [e.code for e in of(events.Error, slow.received())] == ["too-slow"]
    assert hub.members("hall") == {"alice"}


# --- liveness ------------------------------------------------------------------------------------


def test_silent_envelope_client_is_evicted_with_a_timeout_presence() -> None:
    hub = Hub(HubConfig(session_timeout=10.0))
    alice = envelope_peer(hub, 40001, "alice", "hall", "side")
    bob = envelope_peer(hub, 40002, "bob", "hall", "side")
    seen: list[object] = []
    for _ in range(3):
        hub.advance(3.0)
        bob.send(events.Ping())
        seen += bob.received()
    assert alice.address in hub.core.registry.clients  # 9 s of silence: not yet
    hub.advance(3.0)
    seen += bob.received()
    assert alice.address not in hub.core.registry.clients
    assert bob.address in hub.core.registry.clients
    left = [p for p in of(events.Presence, seen) if p.what == "left"]
    assert sorted((p.room, p.nick, p.detail) for p in left) == [
        ("hall", "alice", "timeout"),
        ("side", "alice", "timeout"),
    ]
    assert hub.core.counters["evictions"] == 1
    assert hub.members("hall") == hub.members("side") == {"bob"}


def test_eviction_is_shown_to_text_clients_as_left_timeout() -> None:
    hub = Hub(HubConfig(session_timeout=10.0, text_session_timeout=100.0))
    envelope_peer(hub, 40001, "alice", "lobby")
    guest = TextPeer(hub, 40003)
    guest.line("/who")
    hub.advance(10.5)
    assert "[lobby] * alice left (timeout)" in guest.line("/who").split("\n")


def test_any_valid_datagram_renews_a_session_and_a_spoofed_one_does_not() -> None:
    hub = Hub(HubConfig(session_timeout=10.0))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    spoofed = envelope_peer(hub, 40002, "spoofed", "hall")
    renewals = [events.Ping(), events.Ack(stream="hall", upto=0), events.Rooms(id=2), events.Stats(id=3)]
    for event in renewals:
        hub.advance(8.0)
        alice.send(event)
        spoofed.send(events.Ping(), token=FOREIGN_TOKEN)  # someone else pretending
    assert hub.now == 32.0
    assert alice.address in hub.core.registry.clients
    assert spoofed.address not in hub.core.registry.clients
    hub.advance(10.0)
    assert alice.address not in hub.core.registry.clients


def test_silent_text_client_expires_and_any_line_renews_it() -> None:
    hub = Hub(HubConfig(text_session_timeout=20.0, session_timeout=1000.0))
    bob = envelope_peer(hub, 40002, "bob", "lobby")
    talker = TextPeer(hub, 40001)
    quiet = TextPeer(hub, 40003)
    talker.line("hi")
    quiet.line("hi")
    seen: list[object] = []
    for _ in range(3):
        hub.advance(15.0)
        talker.line("/who")
        seen += bob.received()
    assert talker.address in hub.core.registry.clients
    assert quiet.address not in hub.core.registry.clients
    left = [p for p in of(events.Presence, seen) if p.what == "left"]
    assert [(p.nick, p.detail) for p in left] == [("guest-40003", "timeout")]
    assert quiet.line("back").startswith("welcome guest-40003")  # a new guest, in lobby again


# --- flood control -------------------------------------------------------------------------------


def test_flooding_session_gets_slow_down_and_its_request_is_carried_out_once_later() -> None:
    hub = Hub(HubConfig(flood_rate=2.0, flood_burst=3))
    alice = envelope_peer(hub, 40001, "alice", "hall")  # the join took one token
    bob = envelope_peer(hub, 40002, "bob", "hall")
    alice.received()
    assert isinstance(alice.ask(events.Say, room="hall", body="m1"), events.Reply)
    assert isinstance(alice.ask(events.Say, room="hall", body="m2"), events.Reply)
    held = alice.request(events.Say, room="hall", body="m3")
    error = one(events.Error, alice.received())
    assert (error.code, error.id) == ("slow-down", held.id)
    assert error.after > 0 and "slow down" in error.text
    assert delivered(bob.received()) == ["m1", "m2"]
    hub.advance(error.after / 2)
    alice.send(held)  # resent too early: the hub still holds it, and says nothing more
    assert alice.received() == []
    hub.advance(error.after / 2 + 0.001)  # the hub carries it out by itself after the pause
    assert [type(e) for e in alice.received()] == [events.Reply]
    alice.send(held)  # and once more, as if the reply were lost
    assert [type(e) for e in alice.received()] == [events.Reply]
    assert delivered(bob.received()) == ["m3"]
    assert hub.core.counters["messages"] == 3


def test_flood_holds_requests_behind_the_refused_one_in_order() -> None:
    hub = Hub(HubConfig(flood_rate=1.0, flood_burst=1))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    first = alice.request(events.Say, room="hall", body="m1")
    second = alice.request(events.Say, room="hall", body="m2")
    assert [e.code for e in of(events.Error, alice.received())] == ["slow-down"]
    seen = delivered(bob.received())
    for _ in range(2):
        hub.advance(1.0)  # held requests go on by themselves, in order, as tokens come back
        seen += delivered(bob.received())
    assert seen == ["m1", "m2"]
    assert [r.id for r in of(events.Reply, alice.received())] == [first.id, second.id]


def test_flood_of_one_session_does_not_slow_the_others() -> None:
    hub = Hub(HubConfig(flood_rate=1.0, flood_burst=2))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    for _ in range(5):
        alice.request(events.Say, room="hall", body="flood")
    assert hub.core.counters["errors.slow-down"] >= 1
    assert isinstance(bob.ask(events.Say, room="hall", body="calm"), events.Reply)
    assert delivered(alice.received()) == ["calm"]


def test_flood_rate_zero_means_unlimited() -> None:
    hub = Hub(HubConfig(flood_rate=0, flood_burst=1))
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    shown: list[str] = []
    for n in range(500):
        assert isinstance(alice.ask(events.Say, room="hall", body=f"m{n}"), events.Reply)
        shown += delivered(bob.received())
    assert shown == [f"m{n}" for n in range(500)]
    assert hub.core.counters["errors.slow-down"] == 0


def test_text_client_flood_gets_a_slow_down_line() -> None:
    hub = Hub(HubConfig(flood_rate=1.0, flood_burst=2))
    guest = TextPeer(hub, 40001)
    answers = [guest.line(f"line {n}") for n in range(3)]  # the first line's join took a token
    assert answers[-1].startswith("error: slow down")
    hub.advance(1.0)
    assert guest.line("again") == "sent to lobby"


# --- caps ----------------------------------------------------------------------------------------


def test_rooms_per_client_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_ROOMS_PER_CLIENT", 2)
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "a", "b")
    error = alice.ask(events.Join, room="c")
    assert isinstance(error, events.Error) and error.code == "too-many-rooms"
    assert "2 rooms" in error.text
    assert isinstance(alice.ask(events.Join, room="a"), events.Reply)  # rejoining is no new room


def test_members_per_room_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_MEMBERS_PER_ROOM", 2)
    hub = Hub()
    envelope_peer(hub, 40001, "alice", "hall")
    envelope_peer(hub, 40002, "bob", "hall")
    carol = envelope_peer(hub, 40003, "carol")
    error = carol.ask(events.Join, room="hall")
    assert isinstance(error, events.Error) and error.code == "room-full"
    text = TextPeer(hub, 40004)
    text.line("hi")
    assert text.line("/join hall").startswith("error: hall is full")


def test_clients_per_address_host_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_CLIENTS_PER_ADDRESS_HOST", 2)
    hub = Hub()
    envelope_peer(hub, 40001, "a1")
    envelope_peer(hub, 40002, "a2")
    third = Peer(hub, 40003)
    third.send(events.Hello(nick="a3"))
    third.send(events.Hello(nick="a3", cookie=one(events.Challenge, third.received()).cookie))
    [error] = third.received()
    assert error.code == "too-many-clients" and "127.0.0.1" in error.text
    assert TextPeer(hub, 40004).line("hi").startswith("error: 2 clients already come from 127.0.0.1")
    Peer(hub, 40001, host="127.0.0.2").connect("other-host")
    assert len(hub.core.registry.clients) == 3


def test_total_clients_are_capped() -> None:
    hub = Hub(HubConfig(max_clients=2))
    envelope_peer(hub, 40001, "a1")
    envelope_peer(hub, 40002, "a2")
    third = Peer(hub, 40003)
    third.send(events.Hello(nick="a3"))
    third.send(events.Hello(nick="a3", cookie=one(events.Challenge, third.received()).cookie))
    assert [e.code for e in third.received()] == ["hub-full"]
    assert TextPeer(hub, 40004).line("hi").startswith("error: the hub is full (2 clients)")


def test_taken_nick_is_refused_at_hello() -> None:
    hub = Hub()
    envelope_peer(hub, 40001, "alice")
    other = Peer(hub, 40002)
    other.send(events.Hello(nick="ALICE"))
    other.send(events.Hello(nick="ALICE", cookie=one(events.Challenge, other.received()).cookie))
    assert [e.code for e in other.received()] == ["nick-taken"]


def test_room_cap_refuses_new_rooms_until_empty_ones_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_ROOMS", 3)
    hub = Hub(HubConfig(session_timeout=1e6))
    alice = envelope_peer(hub, 40001, "alice", "a", "b", "kept")
    alice.ask(events.Topic, room="kept", text="stays", set=True)
    alice.ask(events.Part, room="a")
    alice.ask(events.Part, room="b")
    alice.ask(events.Part, room="kept")
    error = alice.ask(events.Join, room="c")
    assert isinstance(error, events.Error) and error.code == "too-many-rooms"
    assert "3 rooms" in error.text
    hub.advance(limits.ROOM_EXPIRY + limits.ROOM_SWEEP_INTERVAL)
    assert set(hub.core.registry.rooms) == {"kept"}  # a room with a topic stays
    assert isinstance(alice.ask(events.Join, room="c"), events.Reply)


# --- shutdown ------------------------------------------------------------------------------------


def test_shutdown_says_bye_and_refuses_joins_afterwards() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall")
    live = TextPeer(hub, 40003)
    live.line("/live on")
    quiet = TextPeer(hub, 40004)
    quiet.line("hi")
    hub.take(live.address)
    hub.core.shutdown(hub.now, limits.DRAIN_SECONDS)
    hub._collect()
    [bye] = of(events.Bye, alice.received())
    assert bye.reason and of(events.Bye, bob.received()) == [bye]
    assert hub.take(live.address) == [f"hub: {bye.reason}".encode()]
    assert hub.take(quiet.address) == []  # not live: it gets nothing unasked
    error = alice.ask(events.Join, room="other")
    assert isinstance(error, events.Error) and error.code == "shutting-down"
    late = Peer(hub, 40005)
    late.send(events.Hello(nick="late"))
    late.send(events.Hello(nick="late", cookie=one(events.Challenge, late.received()).cookie))
    assert [e.code for e in late.received()] == ["shutting-down"]
    assert late.address not in hub.core.registry.clients


def _draining_with_one_unacknowledged_line() -> tuple[Hub, Peer, int]:
    hub = Hub()
    alice = envelope_peer(hub, 40001, "alice", "hall")
    bob = envelope_peer(hub, 40002, "bob", "hall", auto_ack=False)
    alice.ask(events.Say, room="hall", body="last words")
    [line] = of(events.Deliver, bob.received())
    hub.core.shutdown(hub.now, 10.0)
    hub._collect()
    return hub, bob, line.seq


def test_drain_keeps_retransmitting_until_everything_is_acknowledged_and_ends_then() -> None:
    hub, bob, seq = _draining_with_one_unacknowledged_line()
    assert not hub.core.drained(hub.now)
    hub.advance(3.0)
    again = of(events.Deliver, bob.received())
    assert again and {e.body for e in again} == {"last words"}, "still resent while draining"
    assert not hub.core.drained(hub.now)
    bob.ack("hall", upto=seq)
    assert hub.core.drained(hub.now), "everything acknowledged: no need to wait any longer"
    assert hub.core.drain_until is not None and hub.now < hub.core.drain_until


def test_drain_ends_at_its_deadline_when_a_member_never_acknowledges() -> None:
    hub, _bob, _seq = _draining_with_one_unacknowledged_line()
    assert hub.core.drain_until is not None
    hub.advance(hub.core.drain_until - hub.now - 0.01)
    assert not hub.core.drained(hub.now)
    hub.advance(0.01)
    assert hub.core.drained(hub.now)


def test_one_client_cannot_create_rooms_without_end_but_may_join_existing_ones() -> None:
    hub = Hub(HubConfig(session_timeout=300))
    alice = envelope_peer(hub, 40001, "alice")
    bob = envelope_peer(hub, 40002, "bob", "existing")
    for n in range(limits.ROOM_CREATE_BURST):
        assert isinstance(alice.ask(events.Join, room=f"new{n}"), events.Reply)
    refused = alice.ask(events.Join, room="one-too-many")
    assert isinstance(refused, events.Error) and refused.code == "too-many-rooms"
    assert "join an existing one" in refused.text
    assert isinstance(alice.ask(events.Join, room="existing"), events.Reply)
    assert "one-too-many" not in hub.core.registry.rooms
    hub.advance(1 / limits.ROOM_CREATE_RATE + 0.1)
    assert isinstance(alice.ask(events.Join, room="one-too-many"), events.Reply)
    assert bob.address in hub.core.registry.rooms["existing"].members


# --- logging of bad input --------------------------------------------------------------------------


BAD_VERSION = b"\xc1\x07" + msgpack.packb({"k": "ping"})


def test_bad_input_is_logged_at_most_once_per_code_every_10_s(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    caplog.set_level("WARNING", logger="roomcast.hub")

    def junk(data: bytes, at: float) -> None:
        hub.now = at
        hub.feed(data, ("127.0.0.1", 40009))

    def logged(code: str) -> int:
        return sum(
            1
            for r in caplog.records
            if r.getMessage().endswith(f"({code}); similar ones are counted, not logged")
        )

    for at in (0.0, 1.0, 5.0, 9.99):
        junk(BAD_VERSION, at)
    assert logged("bad-version") == 1
    junk(b"\xc1\x01\xff", 9.99)  # another code is logged at once
    assert logged("malformed") == 1
    junk(BAD_VERSION, 10.0)
    assert logged("bad-version") == 2, "10 s later it is logged again"
    assert hub.core.counters["errors.bad-version"] == 5, "every one is counted"
