"""The hub's per-member outbox: cumulative and selective acks, one timer, the in-flight cap."""

from __future__ import annotations

from roomcast.shared import limits
from roomcast.shared.outbox import Outbox


def filled(count: int, limit: int = 100) -> Outbox:
    box = Outbox(limit=limit)
    for seq in range(1, count + 1):
        assert box.offer("hall", seq, f"d{seq}".encode(), now=0.0)
    return box


def test_cumulative_ack_forgets_everything_up_to_it_and_selective_acks_their_seqs() -> None:
    box = filled(10)
    # 5, 6 and 8 are missing below the newest selective ack: resent at once
    assert box.acknowledge("hall", 4, (7, 9), now=0.1) == [b"d5", b"d6", b"d8"]
    assert box.pending() == [("hall", 5), ("hall", 6), ("hall", 8), ("hall", 10)]
    assert box.bytes_in_flight == sum(len(f"d{s}") for s in (5, 6, 8, 10))


def test_acks_of_another_stream_free_nothing() -> None:
    box = filled(3)
    box.acknowledge("other", 99, (), now=0.1)
    assert len(box) == 3


def test_gap_below_a_selective_ack_is_resent_at_once_but_not_twice_in_one_rtt() -> None:
    box = filled(5)
    box.acknowledge("hall", 1, (), now=0.05)  # an RTT sample of 50 ms
    assert box.acknowledge("hall", 1, (4,), now=0.2) == [b"d2", b"d3"]
    assert box.acknowledge("hall", 1, (4, 5), now=0.21) == []


def test_one_timer_resends_the_oldest_in_flight_and_backs_off() -> None:
    box = filled(40)
    first = box.next_deadline()
    assert first == limits.INITIAL_RTO
    resent = box.due(first)
    assert resent == [f"d{s}".encode() for s in range(1, limits.RETRANSMIT_BURST + 1)]
    second = box.next_deadline()
    assert second is not None and second - first >= 2 * limits.INITIAL_RTO * 0.99
    assert box.due(second - 0.001) == []


def test_an_ack_takes_an_rtt_sample_and_rearms_the_timer_only_while_something_is_in_flight() -> None:
    box = filled(2)
    box.acknowledge("hall", 1, (), now=0.04)
    assert box.rtt.samples == 1 and abs(box.rtt.srtt - 0.04) < 1e-9
    assert box.next_deadline() is not None
    box.acknowledge("hall", 2, (), now=0.08)
    assert box.next_deadline() is None and len(box) == 0


def test_the_in_flight_cap_queues_and_acks_release_in_order() -> None:
    box = Outbox(limit=2)
    sent = [box.offer("hall", seq, bytes([seq]), now=0.0) for seq in range(1, 6)]
    assert sent == [True, True, False, False, False]
    assert len(box) == 5
    box.acknowledge("hall", 1, (), now=0.01)
    assert box.release(0.01) == [bytes([3])]
    box.acknowledge("hall", 3, (), now=0.02)
    assert box.release(0.02) == [bytes([4]), bytes([5])]


def test_pop_all_returns_and_forgets_everything_held() -> None:
    box = Outbox(limit=1)
    box.offer("hall", 1, b"a", 0.0)
    box.offer("", 1, b"b", 0.0)
    assert box.pop_all() == [b"a", b"b"]
    assert len(box) == 0 and box.bytes_in_flight == 0 and box.next_deadline() is None
