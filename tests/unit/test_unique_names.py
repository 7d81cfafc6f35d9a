"""Names in use are unique by folded form and by look: the hub's registry refuses a nick or a
room whose UTS #39 skeleton equals one in use (``name-confusable``, naming it) and names that
mix scripts confusably (``name-mixed-scripts``), over the envelope and the text dialect."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from roomcast.hub.rooms import Client, Refused, Registry
from roomcast.shared import events
from roomcast.shared.flood import TokenBucket
from roomcast.shared.lookalikes import looks, skeleton
from roomcast.shared.names import fold
from tests.unit.hubwire import Hub, Peer, TextPeer, envelope_peer, one

_ports = itertools.count(41000)


def client(nick: str) -> Client:
    return Client(address=("127.0.0.1", next(_ports)), nick=nick, last_seen=0.0, bucket=TokenBucket(0, 1))


def refusal(call: object, *args: object) -> Refused:
    with pytest.raises(Refused) as info:
        call(*args)  # type: ignore[operator]
    return info.value


# --- the registry --------------------------------------------------------------------------------


def test_a_nick_that_looks_like_one_in_use_is_refused_naming_it() -> None:
    registry = Registry()
    registry.add(client("alice"))
    refused = refusal(registry.add, client("аlice"))  # Cyrillic а
    assert refused.code == "name-confusable"
    assert "alice" in refused.text and "looks like" in refused.text
    assert refusal(registry.add, client("ALICE")).code == "nick-taken"
    assert refusal(registry.add, client("aIice")).code == "name-confusable"  # capital I for l


def test_a_look_alike_in_one_script_is_refused_only_while_the_other_is_in_use() -> None:
    registry = Registry()
    scope = client("scope")
    registry.add(scope)
    cyrillic = client("ѕсоре")  # every letter Cyrillic: one script, so only the skeleton tells
    assert refusal(registry.add, cyrillic).code == "name-confusable"
    registry.remove(scope)
    registry.add(cyrillic)
    assert refusal(registry.add, client("scope")).text.count("ѕсоре") == 1


def test_a_name_mixing_latin_with_cyrillic_is_refused_even_alone() -> None:
    refused = refusal(Registry().add, client("pаypal"))
    assert refused.code == "name-mixed-scripts"
    assert "Latin and Cyrillic" in refused.text


def test_renaming_to_a_look_alike_is_refused_but_to_ones_own_variant_is_not() -> None:
    registry = Registry()
    alice, bob = client("alice"), client("bob")
    registry.add(alice)
    registry.add(bob)
    assert refusal(registry.rename, bob, "aIice").code == "name-confusable"
    assert registry.rename(alice, "Alice") == "alice"
    assert registry.rename(alice, "AIice") == "Alice"  # still alice's own look
    assert registry.rename(bob, "小明") == "bob"
    assert registry.nick_free("bob") and not registry.nick_free("alice")


def test_a_room_that_looks_like_one_that_exists_is_refused_naming_it() -> None:
    registry = Registry()
    alice = client("alice")
    registry.add(alice)
    registry.join(alice, "lobby")
    refused = refusal(registry.join, alice, "1obby")
    assert refused.code == "name-confusable"
    assert "looks like lobby" in refused.text and "/join lobby" in refused.text
    room, new = registry.join(alice, "LOBBY")
    assert room.name == "lobby" and not new
    registry.add(client("1obby"))  # nicks and rooms are apart


def test_an_expired_room_frees_its_look() -> None:
    registry = Registry()
    alice = client("alice")
    registry.join(alice, "lobby")
    registry.part(alice, "lobby")
    assert registry.expire(now=10.0, after=1.0) == ["lobby"]
    registry.join(alice, "1obby")


# --- over the wire ---------------------------------------------------------------------------------


def test_an_envelope_hello_with_a_look_alike_nick_is_refused_with_name_confusable() -> None:
    hub = Hub()
    envelope_peer(hub, 40001, "alice", "lobby")
    impostor = Peer(hub, 40002)
    impostor.send(events.Hello(nick="аlice"))
    impostor.send(events.Hello(nick="аlice", cookie=one(events.Challenge, impostor.received()).cookie))
    [error] = impostor.received()
    assert isinstance(error, events.Error) and error.code == "name-confusable"
    assert "alice" in error.text
    assert hub.core.counters["errors.name-confusable"] == 1


def test_an_envelope_client_in_any_script_chats_in_a_cjk_room() -> None:
    hub = Hub()
    ming = envelope_peer(hub, 40001, "小明", "聊天")
    guest = TextPeer(hub, 40002)
    guest.line("/join 聊天")
    reply = ming.ask(events.Say, room="聊天", body="你好")
    assert isinstance(reply, events.Reply)
    assert guest.line("") == "[聊天] 小明: 你好"
    assert guest.line("/who") == "2 in 聊天: guest-40002 小明"


def test_text_clients_get_look_alikes_refused_with_the_reason() -> None:
    hub = Hub()
    envelope_peer(hub, 40001, "alice", "lobby")
    guest = TextPeer(hub, 40002)
    guest.line("hi")
    assert guest.line("/nick aIice").startswith("error: nick aIice looks like alice")
    assert guest.line("/join 1obby").startswith("error: room name 1obby looks like lobby")
    assert guest.line("/nick pаypal").startswith("error: nick pаypal mixes Latin and Cyrillic letters")
    assert guest.line("/nick 小明").endswith("you are now 小明")


def test_a_guest_name_never_looks_like_a_nick_in_use() -> None:
    hub = Hub()
    envelope_peer(hub, 40001, "guest-4OOO2")  # capital O for 0 looks like guest-40002
    guest = TextPeer(hub, 40002)
    assert guest.line("hi").startswith("welcome guest-40002-2,")


# --- no two look-alikes in use, whatever happens ----------------------------------------------------

#: Names chosen to collide: case and width variants, look-alikes across scripts, and plain ones.
POOL = ["alice", "ALICE", "aIice", "аlice", "ａｌｉｃｅ", "lobby", "1obby", "Iobby", "scope", "ѕсоре",
        "小明", "小朋", "rn", "m", "rnicro", "micro", "Straße", "STRASSE", "#rust", "#ruѕt"]  # fmt: skip


class Registry_(RuleBasedStateMachine):
    """Random joins, renames, parts, departures and expiries against one registry."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = Registry()
        self.now = 0.0

    def _attempt(self, call: object, *args: object) -> None:
        try:
            call(*args)  # type: ignore[operator]
        except Refused as refused:
            assert refused.code in {"nick-taken", "name-confusable", "name-mixed-scripts"}

    @rule(nick=st.sampled_from([n for n in POOL if not n.startswith("#")]))
    def arrive(self, nick: str) -> None:
        self._attempt(self.registry.add, client(nick))

    @rule(data=st.data(), nick=st.sampled_from([n for n in POOL if not n.startswith("#")]))
    def rename(self, data: st.DataObject, nick: str) -> None:
        if self.registry.clients:
            who = data.draw(st.sampled_from(sorted(self.registry.clients.values(), key=lambda c: c.address)))
            self._attempt(self.registry.rename, who, nick)

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        if self.registry.clients:
            who = data.draw(st.sampled_from(sorted(self.registry.clients.values(), key=lambda c: c.address)))
            self.registry.remove(who)

    @rule(data=st.data(), room=st.sampled_from(POOL))
    def join(self, data: st.DataObject, room: str) -> None:
        if self.registry.clients:
            who = data.draw(st.sampled_from(sorted(self.registry.clients.values(), key=lambda c: c.address)))
            self._attempt(self.registry.join, who, room)

    @rule()
    def expire(self) -> None:
        self.now += 10.0
        self.registry.expire(self.now, after=5.0)

    @invariant()
    def no_two_names_in_use_look_alike(self) -> None:
        nicks = [c.nick for c in self.registry.clients.values()]
        rooms = [r.name for r in self.registry.rooms.values()]
        for names in (nicks, rooms):
            assert len({skeleton(fold(n)) for n in names}) == len(names), names
            assert len(set().union(*map(looks, names))) == sum(len(looks(n)) for n in names), names
        assert set(self.registry.nicks) == {fold(n) for n in nicks}
        assert set(self.registry.nick_looks.holders.values()) == set(self.registry.nicks)
        assert set(self.registry.room_looks.holders.values()) == set(self.registry.rooms)


TestNoTwoLookAlikesInUse = Registry_.TestCase
TestNoTwoLookAlikesInUse.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
