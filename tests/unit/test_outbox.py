"""The hub's per-member outbox: cumulative and selective acks, one timer, the in-flight cap."""

from __future__ import annotations

from collections.abc import Callable

from roomcast.shared import limits
from roomcast.shared.outbox import Outbox
from roomcast.shared.reliable import SendWindow, backoff_timeout


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


def test_a_timeout_resends_at_most_the_burst_across_all_streams_oldest_first() -> None:
    box = Outbox(limit=100)
    for seq in range(1, 11):
        for stream in ("a", "b", "c"):
            box.offer(stream, seq, f"{stream}{seq}".encode(), now=seq / 100)
    assert box.timer is not None
    resent = box.due(box.timer)
    assert len(resent) == limits.RETRANSMIT_BURST, "never more than the burst, whatever the streams"
    assert set(resent) >= {b"a1", b"b1", b"c1"}, "the oldest of each stream first"


def _timeouts(
    fire: Callable[[float], list[bytes]], deadline: Callable[[], float | None], count: int
) -> list[float]:
    """The gaps between successive timeouts of data that is never acknowledged."""
    gaps, now = [], 0.0
    for _ in range(count):
        at = deadline()
        assert at is not None
        gaps.append(round(at - now, 6))
        now = at
        assert fire(now)
    return gaps


def test_requests_and_deliveries_back_off_by_the_one_policy() -> None:
    box, window = Outbox(), SendWindow[int]()
    box.rtt.sample(0.001)  # a fast loopback peer: the smallest timeout, the most doublings
    window.rtt.sample(0.001)
    rto = box.rtt.rto()
    assert rto == window.rtt.rto() == limits.MIN_RTO
    box.offer("hall", 1, b"delivery", now=0.0)
    window.track(1, b"request", now=0.0)
    count = limits.MAX_BACKOFF_DOUBLINGS + 4
    deliveries = _timeouts(box.due, lambda: box.timer, count)
    requests = _timeouts(window.due, window.next_deadline, count)
    assert deliveries == requests == [round(backoff_timeout(rto, n), 6) for n in range(count)]
    assert max(deliveries) == round(rto * 2**limits.MAX_BACKOFF_DOUBLINGS, 6), "the doublings stop"
