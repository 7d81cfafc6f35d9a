"""Room history on disk: the SQLite store alone, and the core handing it records and restoring.

Each test gets its own data directory under ``tmp_path``; nothing here opens a socket.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from roomcast.hub.records import RoomGone, RoomTopic, SavedHistory, SavedRoom
from roomcast.hub.store import FILE_NAME, HistoryStore, StoreError
from roomcast.shared import events, limits
from tests.unit.hubwire import Hub, Peer, envelope_peer, of


def line(seq: int, body: str = "", room: str = "Ops", action: bool = False) -> events.Deliver:
    return events.Deliver(
        room=room, seq=seq, nick="alice", body=body or f"line {seq}", ts=1000.0 + seq, action=action
    )


def reopened(directory: Path) -> SavedHistory:
    with HistoryStore.open(directory) as store:
        return store.load()


def rows(directory: Path, room: str) -> int:
    with HistoryStore.open(directory) as store:
        return store.rows(room)


# --- the store --------------------------------------------------------------------------------------


def test_written_events_and_topic_come_back_after_reopening(tmp_path: Path) -> None:
    joined = events.Presence(room="Ops", seq=1, nick="alice", what="joined", ts=1001.0)
    topic = RoomTopic(room="Ops", text="deploys and incidents", by="alice", ts=1004.5)
    with HistoryStore.open(tmp_path) as store:
        store.write([joined, line(2), line(3, "waves", action=True)])
        store.write(
            [topic, events.Presence(room="Ops", seq=4, nick="alice", what="topic", detail=topic.text)]
        )

    saved = reopened(tmp_path)
    (room,) = saved.rooms
    assert room.name == "Ops"
    assert [e.seq for e in room.history] == [1, 2, 3, 4]
    assert room.history[0] == joined
    assert room.history[2] == line(3, "waves", action=True)
    assert room.topic == topic


def test_seqs_go_on_past_the_last_stored_one_by_the_crash_margin(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.write([line(seq) for seq in range(1, 8)])
    assert reopened(tmp_path).rooms[0].seq == 7 + limits.RESTORE_SEQ_SKIP


def test_epoch_is_made_once_and_stays_across_reopening(tmp_path: Path) -> None:
    first = reopened(tmp_path / "a").epoch
    assert len(first) == 8
    assert reopened(tmp_path / "a").epoch == first
    assert reopened(tmp_path / "b").epoch != first


def test_rooms_are_trimmed_to_the_history_limit_on_disk_and_on_load(tmp_path: Path) -> None:
    total = limits.HISTORY_PER_ROOM + 3 * limits.STORE_TRIM_SLACK + 7
    with HistoryStore.open(tmp_path) as store:
        for seq in range(1, total + 1):
            store.write([line(seq), line(seq, room="quiet")] if seq <= 3 else [line(seq)])
            assert store.rows("ops") < limits.HISTORY_PER_ROOM + limits.STORE_TRIM_SLACK
    saved = reopened(tmp_path)
    ops = next(room for room in saved.rooms if room.name == "Ops")
    assert [e.seq for e in ops.history] == list(range(total - limits.HISTORY_PER_ROOM + 1, total + 1))
    assert rows(tmp_path, "ops") == limits.HISTORY_PER_ROOM  # opening trims what is left over
    assert rows(tmp_path, "quiet") == 3
    assert [room.name for room in saved.rooms] == ["Ops", "quiet"]  # most recently active first


def test_a_forgotten_room_leaves_the_disk(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.write([line(1), line(1, room="lobby"), RoomTopic("lobby", "hi", "bob", 1.0), RoomGone("lobby")])
    assert [room.name for room in reopened(tmp_path).rooms] == ["Ops"]


def test_a_room_that_starts_again_at_seq_1_drops_its_old_rows(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.write([line(seq) for seq in range(1, 6)])
        store.write([line(1, "a new life")])
    (room,) = reopened(tmp_path).rooms
    assert [e.body for e in room.history] == ["a new life"]


def test_a_row_that_is_not_a_valid_event_is_skipped(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.write([line(1), line(2)])
    with contextlib.closing(sqlite3.connect(tmp_path / FILE_NAME)) as db, db:
        db.execute("UPDATE events SET nick = 'no spaces allowed' WHERE seq = 1")
    (room,) = reopened(tmp_path).rooms
    assert [e.seq for e in room.history] == [2]


def test_a_file_where_the_directory_should_be_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(StoreError, match="must be a directory this user can write"):
        HistoryStore.open(tmp_path / "data")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"junk" * 1000)
    with pytest.raises(StoreError, match="not a database"):
        HistoryStore.open(tmp_path)


def test_a_failed_write_is_one_store_error_and_the_next_write_starts_clean(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        with pytest.raises(StoreError, match="cannot write history"):
            store.write([line(1), line(2, body="\ud800 is no UTF-8")])
        store.write([line(2)])
    assert [e.seq for e in reopened(tmp_path).rooms[0].history] == [2]


def test_a_second_hub_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path), pytest.raises(StoreError, match="another hub"):
        HistoryStore.open(tmp_path)


# --- the core's side --------------------------------------------------------------------------------


def test_a_hub_without_a_store_hands_out_no_records() -> None:
    hub = Hub()
    alice = envelope_peer(hub, 5001, "alice", "ops")
    alice.ask(events.Say, room="ops", body="hello")
    assert hub.core.records_to_store() == []


def test_room_events_and_topic_changes_are_handed_out_in_order_once(tmp_path: Path) -> None:
    hub = Hub()
    hub.core.restore(SavedHistory(epoch=b"E" * 8))
    alice = envelope_peer(hub, 5001, "alice", "ops")
    alice.ask(events.Say, room="ops", body="hello")
    alice.ask(events.Topic, room="ops", text="deploys", set=True)
    alice.ask(events.Msg, to="alice", body="private: not room history")

    records = hub.core.records_to_store()
    assert [type(r).__name__ for r in records] == ["Presence", "Deliver", "RoomTopic", "Presence"]
    assert records[2] == RoomTopic(room="ops", text="deploys", by="alice", ts=hub.core.wall(hub.now))
    assert hub.core.records_to_store() == []


def test_a_full_backlog_drops_and_counts_instead_of_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "STORE_BACKLOG", 3)
    hub = Hub()
    hub.core.restore(SavedHistory(epoch=b"E" * 8))
    alice = envelope_peer(hub, 5001, "alice", "ops")  # its join is the first record
    for n in range(4):
        alice.ask(events.Say, room="ops", body=f"line {n}")
    assert len(hub.core.records_to_store()) == 3
    assert hub.core.counters["drops.store-backlog"] == 2


def test_a_restored_hub_keeps_the_epoch_seqs_history_and_topic(tmp_path: Path) -> None:
    before = Hub()
    with HistoryStore.open(tmp_path) as store:
        before.core.restore(store.load())
        epoch = before.core.hub_id
        alice = envelope_peer(before, 5001, "alice", "ops")
        said = [alice.ask(events.Say, room="ops", body=f"line {n}").seq for n in range(3)]
        last = alice.ask(events.Topic, room="ops", text="deploys", set=True).seq
        store.write(before.core.records_to_store())

    after = Hub(seed=99)
    with HistoryStore.open(tmp_path) as store:
        after.core.restore(store.load())
    bob = Peer(after, 5002)
    assert bob.connect("bob").hub == epoch  # so its link asks only for what it missed
    joined = bob.ask(events.Join, room="ops")
    # New seqs never reuse ones that clients may have seen but the store lost in a crash.
    assert joined.seq == last + limits.RESTORE_SEQ_SKIP + 1
    assert "topic: deploys" in joined.text
    caught = bob.ask(events.History, room="ops", since=said[0], until=joined.seq - 1)
    assert isinstance(caught, events.Reply)
    replayed = of(events.Deliver, bob.received())
    assert [(e.body, e.history) for e in replayed] == [("line 1", True), ("line 2", True)]


def test_a_restored_room_expires_as_if_the_hub_had_never_stopped() -> None:
    hub = Hub()
    old = events.Deliver(
        room="old", seq=4, nick="alice", body="long ago", ts=hub.core.wall(0) - 2 * limits.ROOM_EXPIRY
    )
    recent = events.Deliver(room="recent", seq=9, nick="alice", body="just now", ts=hub.core.wall(0))
    hub.core.restore(
        SavedHistory(epoch=b"E" * 8, rooms=(SavedRoom("old", 4, (old,)), SavedRoom("recent", 9, (recent,))))
    )
    hub.advance(limits.ROOM_SWEEP_INTERVAL)
    assert set(hub.core.registry.rooms) == {"recent"}
    assert hub.core.records_to_store() == [RoomGone("old")]  # and the store forgets it too
