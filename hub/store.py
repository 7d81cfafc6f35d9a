"""Room history on disk (``--data-dir``): SQLite in WAL mode, so a restarted hub still has it.

The core never waits for this module: the trio shell (``hub.server``) takes the core's
:meth:`~hub.core.HubCore.records_to_store` every ``STORE_INTERVAL`` and hands them to
:meth:`HistoryStore.write` in a worker thread, one transaction per batch.  With
``synchronous=NORMAL`` a committed batch survives the hub being killed (not a power cut), so
a kill -9 loses at most the records of the last interval.

The database keeps, per room, the last ``HISTORY_PER_ROOM`` events (trimmed every
``STORE_TRIM_SLACK`` new rows) and the topic, plus one *epoch*: random bytes made with the
database that the hub announces as its history id, so clients keep their room seqs across a
restart.  ``locking_mode=EXCLUSIVE`` makes a data directory one hub's: a second hub on it is
refused instead of mixing its seqs into the first one's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from roomcast.hub.records import Record, RoomGone, RoomTopic, SavedHistory, SavedRoom
from roomcast.hub.rooms import RoomEvent
from roomcast.shared import events, limits
from roomcast.shared.names import fold

log = logging.getLogger("roomcast.hub")

FILE_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
EPOCH_BYTES = 8

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    room TEXT NOT NULL,       -- the room's folded name: its key
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,       -- the room's name as shown
    kind TEXT NOT NULL,       -- 'deliver' or 'presence'
    nick TEXT NOT NULL,
    body TEXT NOT NULL,       -- a deliver's body, a presence's detail
    ts REAL NOT NULL,         -- wall clock, seconds since the epoch
    action INTEGER NOT NULL,  -- a deliver: a /me line
    what TEXT NOT NULL,       -- a presence: joined, left, renamed, topic
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topics (
    room TEXT PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL, nick TEXT NOT NULL, ts REAL NOT NULL
) WITHOUT ROWID;
"""

INSERT_EVENT = "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Rows of ``room`` older than its newest HISTORY_PER_ROOM (nothing when it has fewer).
TRIM_ROOM = (
    "DELETE FROM events WHERE room = ?1 AND seq < "
    "(SELECT seq FROM events WHERE room = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)"
)


class StoreError(Exception):
    """The data directory cannot be used or written; the text says what to check."""


class HistoryStore:
    """One hub's history database.  Use from one thread at a time (the shell makes sure)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        #: Rows added per room since it was last trimmed.
        self._untrimmed: Counter[str] = Counter()

    @classmethod
    def open(cls, directory: Path) -> HistoryStore:
        """Open (or create) the history in ``directory``, created if missing."""
        path = Path(directory) / FILE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            hint = "--data-dir must be a directory this user can write"
            raise StoreError(f"cannot keep history in {directory}: {exc}; {hint}") from exc
        try:
            store = cls(db, path)
            store._prepare()
        except sqlite3.Error as exc:
            db.close()
            hint = "is another hub using it?" if "locked" in str(exc) else "is it a Roomcast data directory?"
            raise StoreError(f"cannot use {path}: {exc}; {hint}") from exc
        return store

    def _prepare(self) -> None:
        db = self._db
        db.execute("PRAGMA locking_mode=EXCLUSIVE")  # before WAL: then no shared memory either
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"journal mode is {mode}, not wal")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        with db:  # one transaction: commits at the end, rolls back on an exception
            version = self._meta("schema")
            if version is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                db.execute("INSERT INTO meta VALUES ('epoch', ?)", (os.urandom(EPOCH_BYTES),))
            elif version != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}; this hub reads {SCHEMA_VERSION}")
            rows = db.execute("SELECT room, count(*) FROM events GROUP BY room").fetchall()
            for room, count in rows:
                if count > limits.HISTORY_PER_ROOM:
                    db.execute(TRIM_ROOM, (room, limits.HISTORY_PER_ROOM - 1))

    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # --- the shell's interface -------------------------------------------------------------------

    @property
    def epoch(self) -> bytes:
        return bytes(self._meta("epoch"))

    def load(self) -> SavedHistory:
        """Every kept room, most recently active first, with its last events and topic."""
        try:
            rooms = [self._load_room(key) for key in self._room_keys()]
            epoch = self.epoch
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        kept = [room for room in rooms if room is not None]
        kept.sort(key=_last_active, reverse=True)
        return SavedHistory(epoch=epoch, rooms=tuple(kept))

    def write(self, records: Iterable[Record]) -> None:
        """Keep ``records`` (in the order the core made them) in one transaction."""
        db = self._db
        try:
            with db:
                for record in records:
                    if isinstance(record, RoomTopic):
                        db.execute(
                            "INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?, ?)",
                            (fold(record.room), record.room, record.text, record.by, record.ts),
                        )
                    elif isinstance(record, RoomGone):
                        self._forget(fold(record.room))
                    else:
                        self._add_event(record)
                self._trim()
        except (sqlite3.Error, ValueError) as exc:  # ValueError: e.g. text that is not UTF-8
            with contextlib.suppress(sqlite3.Error):  # e.g. the commit failed (disk full): start clean
                db.rollback()
            raise StoreError(f"cannot write history to {self.path}: {exc}") from exc

    def rows(self, room: str) -> int:
        """How many events of ``room`` are on disk (trimming lets it pass HISTORY_PER_ROOM a little)."""
        return int(
            self._db.execute("SELECT count(*) FROM events WHERE room = ?", (fold(room),)).fetchone()[0]
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- rows ------------------------------------------------------------------------------------

    def _add_event(self, event: RoomEvent) -> None:
        key = fold(event.room)
        if event.seq == 1:
            self._forget(key)  # seq 1 begins a room's life: rows of an earlier one are stale
        if isinstance(event, events.Deliver):
            row = (
                key,
                event.seq,
                event.room,
                "deliver",
                event.nick,
                event.body,
                event.ts,
                int(event.action),
                "",
            )
        else:
            row = (key, event.seq, event.room, "presence", event.nick, event.detail, event.ts, 0, event.what)
        self._db.execute(INSERT_EVENT, row)
        self._untrimmed[key] += 1

    def _forget(self, key: str) -> None:
        self._db.execute("DELETE FROM events WHERE room = ?", (key,))
        self._db.execute("DELETE FROM topics WHERE room = ?", (key,))
        self._untrimmed.pop(key, None)

    def _trim(self) -> None:
        due = [key for key, count in self._untrimmed.items() if count >= limits.STORE_TRIM_SLACK]
        for key in due:
            self._db.execute(TRIM_ROOM, (key, limits.HISTORY_PER_ROOM - 1))
            del self._untrimmed[key]

    def _room_keys(self) -> list[str]:
        rows = self._db.execute("SELECT room FROM events UNION SELECT room FROM topics").fetchall()
        return [row[0] for row in rows]

    def _load_room(self, key: str) -> SavedRoom | None:
        db = self._db
        rows = db.execute(
            "SELECT seq, name, kind, nick, body, ts, action, what FROM events WHERE room = ? "
            "ORDER BY seq DESC LIMIT ?",
            (key, limits.HISTORY_PER_ROOM),
        ).fetchall()
        history = [event for event in map(_event, reversed(rows)) if event is not None]
        topic_row = db.execute("SELECT name, text, nick, ts FROM topics WHERE room = ?", (key,)).fetchone()
        topic = RoomTopic(*topic_row) if topic_row is not None and topic_row[1] else None
        name = history[-1].room if history else topic.room if topic else None
        if name is None:
            return None
        # Seqs past the last stored one may have reached clients before a crash: skip them.
        seq = (rows[0][0] if rows else 0) + limits.RESTORE_SEQ_SKIP
        return SavedRoom(name=name, seq=seq, history=tuple(history), topic=topic)


def _event(row: tuple[Any, ...]) -> RoomEvent | None:
    """The event a row holds, validated like input from the network (None, logged, if bad)."""
    seq, name, kind, nick, body, ts, action, what = row
    try:
        if kind == "deliver":
            return events.Deliver(room=name, seq=seq, nick=nick, body=body, ts=ts, action=bool(action))
        return events.Presence(room=name, seq=seq, nick=nick, what=what, detail=body, ts=ts)
    except (ValueError, TypeError) as exc:
        log.warning("history row %s/%s is not valid, skipped: %s", name, seq, exc)
        return None


def _last_active(room: SavedRoom) -> float:
    return max(room.history[-1].ts if room.history else 0.0, room.topic.ts if room.topic else 0.0)
