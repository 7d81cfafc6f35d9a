"""The other hubs of the cluster, as this hub sees them: who is alive, who is on them, in which
rooms.  Plain data, no I/O: fed by heartbeats (:class:`Snapshot`, every ``HUB_HEARTBEAT``) and
by the presence events every hub consumes, read by /who, /rooms, /msg and the stats.

A hub silent for ``HUB_DEAD_AFTER`` is dead; its members stay listed until the session timeout
has passed without them coming back through another hub, and are then announced as left
(``hub lost``) by the live hub with the lowest name (others do the same under the same message
ids if they think they are lowest: JetStream stores each once).
"""

from __future__ import annotations

import attrs

from roomcast.hub.cluster.messages import Snapshot
from roomcast.shared import events, limits
from roomcast.shared.names import fold


@attrs.define
class PeerView:
    """One other hub: members per room key (nicks by folded nick), all its nicks."""

    name: str
    last_seen: float
    rooms: dict[str, dict[str, str]] = attrs.Factory(dict)
    names: dict[str, str] = attrs.Factory(dict)  # room key -> display name
    nicks: dict[str, str] = attrs.Factory(dict)
    clients: int = 0
    timeout: float = limits.SESSION_TIMEOUT
    dead_since: float | None = None


@attrs.define
class Peers:
    me: str
    started: float
    #: Session timeout for hubs known only from their events so far (this hub's own).
    timeout: float = limits.SESSION_TIMEOUT
    views: dict[str, PeerView] = attrs.Factory(dict)

    def seen(self, snapshot: Snapshot, now: float) -> None:
        if snapshot.hub == self.me:
            return
        view = self.views.get(snapshot.hub) or PeerView(snapshot.hub, now)
        view.last_seen, view.dead_since, view.clients = now, None, snapshot.clients
        view.timeout = snapshot.timeout
        self.views[snapshot.hub] = view
        if snapshot.partial:
            return
        view.rooms = {fold(room): {fold(n): n for n in nicks} for room, nicks in snapshot.rooms}
        view.names = {fold(room): room for room, _ in snapshot.rooms}
        view.nicks = {fold(n): n for n in snapshot.nicks}
        self.views[snapshot.hub] = view

    def presence(self, hub: str, event: events.Presence, now: float) -> None:
        """A presence event committed by ``hub``: keep its view current between heartbeats (a
        hub not heard from yet counts as heard from now: if it is dead, its members are
        announced as left in their turn)."""
        if not hub or hub == self.me:
            return
        view = self.views.get(hub)
        if view is None:
            view = self.views[hub] = PeerView(hub, now, timeout=self.timeout)
        key, nick = fold(event.room), event.nick
        members = view.rooms.setdefault(key, {})
        view.names.setdefault(key, event.room)
        if event.what == "joined":
            members[fold(nick)] = nick
            view.nicks[fold(nick)] = nick
        elif event.what in ("left", "renamed"):
            # One nick is in a room once: whoever announced it (e.g. "hub lost" by another hub).
            for other in self.views.values():
                inside = other.rooms.get(key, {})
                if inside.pop(fold(nick), None) is not None and event.what == "renamed":
                    inside[fold(event.detail)] = event.detail

    def alive(self, now: float) -> frozenset[str]:
        return frozenset(
            [self.me, *(n for n, v in self.views.items() if now - v.last_seen < limits.HUB_DEAD_AFTER)]
        )

    def sure(self, now: float) -> bool:
        """Watched long enough to know every live hub (a hub unknown by now is not alive)."""
        return now - self.started >= limits.HUB_DEAD_AFTER

    def members(self, room: str) -> dict[str, str]:
        """Members of ``room`` on other hubs (dead ones not yet announced included)."""
        found: dict[str, str] = {}
        for view in self.views.values():
            found.update(view.rooms.get(fold(room), {}))
        return found

    def rooms(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Room key -> (display name, members on other hubs)."""
        found: dict[str, tuple[str, dict[str, str]]] = {}
        for view in self.views.values():
            for key, members in view.rooms.items():
                _, merged = found.setdefault(key, (view.names.get(key, key), {}))
                merged.update(members)
        return found

    def hub_of(self, nick: str, now: float) -> str | None:
        """The live hub that has a client called ``nick``."""
        for name, view in self.views.items():
            if fold(nick) in view.nicks and now - view.last_seen < limits.HUB_DEAD_AFTER:
                return name
        return None

    def clients(self) -> int:
        return sum(view.clients for view in self.views.values() if view.dead_since is None)

    def lost(self, now: float, here: set[str]) -> list[tuple[str, str, list[str]]]:
        """Dead hubs whose members' time to come back (the dead hub's session timeout) is
        over: (hub, nick, rooms) for each member not back anywhere (``here``: folded nicks of
        this hub); those hubs are forgotten."""
        out: list[tuple[str, str, list[str]]] = []
        for name, view in list(self.views.items()):
            if view.dead_since is None and now - view.last_seen >= limits.HUB_DEAD_AFTER:
                view.dead_since = now
            if view.dead_since is None or now - view.last_seen < view.timeout:
                continue
            elsewhere = set(here)
            for other in self.views.values():
                if other is not view and other.dead_since is None:
                    elsewhere |= set(other.nicks)
            for key, nick in view.nicks.items():
                if key not in elsewhere:
                    rooms = [view.names.get(r, r) for r, members in view.rooms.items() if key in members]
                    out.append((name, nick, rooms))
            del self.views[name]
        return out

    def leader(self, now: float) -> bool:
        """Is this hub the live hub with the lowest name (the one that announces lost members)?"""
        return min(self.alive(now)) == self.me
