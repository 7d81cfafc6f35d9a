"""Sessions in cluster mode: a nick is claimed in the cluster's nicks bucket before a session
opens or a client is renamed.  Sans-I/O: claims go out as :class:`ClaimNick`, results come
back as :class:`NickResult`.  A ``resume`` secret handed out in ``welcome`` (only its hash is
stored) lets the session move to another hub and keep its nick.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import TYPE_CHECKING

import attrs

from roomcast.hub import requests
from roomcast.hub.cluster import messages as m
from roomcast.hub.cluster.peers import Peers
from roomcast.hub.engine import Deferred
from roomcast.hub.rooms import Address, Client, Link, Refused
from roomcast.shared import events, limits
from roomcast.shared.names import fold

if TYPE_CHECKING:
    from roomcast.hub.core import HubCore


def resume_hash(secret: bytes) -> bytes:
    return hashlib.sha256(b"roomcast-resume:" + secret).digest()[:16]


@attrs.define(eq=False)
class Claim:
    """A hello (or, with ``client``, a rename) waiting for its nick claim."""

    address: Address
    nick: str
    secret: bytes
    client: Client | None = None
    deferred: Deferred | None = None
    #: Why the hub refuses the nick whatever the cluster says (the claim only probes).
    refusal: Refused | None = None


class Sessions:
    """Claims in flight, by reference; outputs go to the engine's list."""

    def __init__(self, hub_name: str, peers: Peers, out: list[m.Output], ids: itertools.count[int]) -> None:
        self.hub_name = hub_name
        self.peers = peers
        self._out = out
        self._ids = ids
        self.claims: dict[str, Claim] = {}

    def hello(self, hub: HubCore, address: Address, hello: events.Hello, now: float) -> bool:
        if any(claim.address == address and claim.client is None for claim in self.claims.values()):
            return True  # a resent hello: its claim is on its way
        refusal = None
        try:  # taken here, or a look-alike of a nick here, or mixed scripts
            hub.registry.check_nick(hello.nick)
        except Refused as refused:
            if refused.code != "name-mixed-scripts":
                hub.refuse(address, refused.code, refused.text)
                return True
            refusal = refused  # refused anyway; but a look-alike elsewhere is named first, as here
        secret = hello.resume if len(hello.resume) == 16 else hub.random_bytes(16)
        ref = f"claim.{next(self._ids)}"
        self.claims[ref] = Claim(address, hello.nick, secret, refusal=refusal)
        alive, sure = self.peers.alive(now), self.peers.sure(now)
        claim = m.ClaimNick(ref, hello.nick, resume_hash(secret), alive, sure, probe=refusal is not None)
        self._out.append(claim)
        return True

    def claim_rename(self, hub: HubCore, client: Client, nick: str, now: float) -> bool:
        secret = client.link.resume if client.link is not None else b""
        ref = f"claim.{next(self._ids)}"
        deferred = Deferred()
        self.claims[ref] = Claim(client.address, nick, secret, client, deferred)
        alive = self.peers.alive(now)
        resume = resume_hash(secret) if secret else resume_hash(hub.random_bytes(16))
        self._out.append(m.ClaimNick(ref, nick, resume, alive, self.peers.sure(now)))
        hub.proposed = deferred
        return True

    def _renamed(self, hub: HubCore, claim: Claim, result: m.NickResult, now: float) -> None:
        client, deferred = claim.client, claim.deferred
        assert client is not None and deferred is not None
        if hub.registry.clients.get(client.address) is not client:
            if result.ok:
                self._out.append(m.ReleaseNick(claim.nick, self.hub_name))
            return
        other = hub.registry.nicks.get(fold(claim.nick))
        if not result.ok or (other is not None and other is not client):
            deferred.settle(events.Error(code=result.code, text=result.text or f"nick {claim.nick} is taken"))
            return
        old = client.nick
        try:  # a look-alike may have come here meanwhile
            requests.rename(hub, client, claim.nick, now)
        except Refused as refused:
            if fold(old) != fold(claim.nick):
                self._out.append(m.ReleaseNick(claim.nick, self.hub_name))
            deferred.settle(events.Error(code=refused.code, text=refused.text))
            return
        if fold(old) != fold(claim.nick):
            self._out.append(m.ReleaseNick(old, self.hub_name))
        deferred.settle(0)

    def claimed(self, hub: HubCore, result: m.NickResult, now: float) -> None:
        claim = self.claims.pop(result.ref, None)
        if claim is None:
            return
        if claim.client is not None:
            self._renamed(hub, claim, result, now)
            return
        if not result.ok:
            hub.refuse(claim.address, result.code, result.text)  # "unavailable": the hello goes again
            return
        if claim.refusal is not None:
            hub.refuse(claim.address, claim.refusal.code, claim.refusal.text)
            return
        existing = hub.registry.clients.get(claim.address)
        if existing is not None:
            hub.leave(existing, "reconnected", now)
        link = Link(token=hub.random_bytes(limits.TOKEN_BYTES), resume=claim.secret)
        client = hub.new_client(claim.address, claim.nick, now, link=link)
        if client is None:
            self._out.append(m.ReleaseNick(claim.nick, self.hub_name))
            return
        hub.welcome(client)
