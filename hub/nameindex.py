"""Which looks are taken: no two nicks, nor two rooms, in use together may look alike.

Each name has a few *looks* (UTS #39 skeletons, see ``shared.lookalikes.looks``); a
:class:`LookIndex` maps each look of the names in use to the key (folded name) of the one
holding it, so the registry finds in one lookup per look whether a new name would pose as
one in use.
"""

from __future__ import annotations

import attrs

from roomcast.shared.lookalikes import looks


@attrs.define
class LookIndex:
    """The looks of the names in use, each to the key of the name holding it."""

    holders: dict[str, str] = attrs.Factory(dict)

    @staticmethod
    def load() -> None:
        """Read the look-alike data (once per process; about 0.1 s)."""
        looks("")

    def holder(self, name: str) -> str | None:
        """The key of the name in use that ``name`` looks like, if any."""
        for look in looks(name):
            key = self.holders.get(look)
            if key is not None:
                return key
        return None

    def hold(self, name: str, key: str) -> None:
        """``name`` (kept under ``key``) is in use; a look already held stays with its holder."""
        for look in looks(name):
            self.holders.setdefault(look, key)

    def release(self, name: str, key: str) -> None:
        """``name`` (kept under ``key``) is no longer in use."""
        for look in looks(name):
            if self.holders.get(look) == key:
                del self.holders[look]
