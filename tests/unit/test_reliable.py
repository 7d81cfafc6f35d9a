"""Reliable delivery without I/O: RTT estimation, retransmission with backoff, reordering.

Times are plain floats handed in; nothing sleeps.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.shared import limits
from roomcast.shared.reliable import Reorder, RttEstimator, SendWindow

PROPERTY = settings(max_examples=200, deadline=None)


# --- RttEstimator -------------------------------------------------------------------------------


def test_rto_before_any_sample_is_the_initial_rto() -> None:
    assert RttEstimator().rto() == limits.INITIAL_RTO


def test_first_sample_sets_srtt_and_half_of_it_as_variance() -> None:
    rtt = RttEstimator()
    rtt.sample(0.1)
    assert rtt.srtt == pytest.approx(0.1)
    assert rtt.rttvar == pytest.approx(0.05)
    assert rtt.samples == 1
    assert rtt.rto() == pytest.approx(0.1 + 4 * 0.05 + limits.ACK_DELAY)


def test_later_samples_are_smoothed_per_rfc_6298() -> None:
    rtt = RttEstimator()
    rtt.sample(0.1)
    rtt.sample(0.2)
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)
    assert rtt.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    assert rtt.samples == 2


def test_steady_samples_converge_on_the_rtt() -> None:
    rtt = RttEstimator()
    for _ in range(200):
        rtt.sample(0.08)
    assert rtt.srtt == pytest.approx(0.08)
    assert rtt.rttvar == pytest.approx(0.0, abs=1e-9)


def test_rto_is_at_least_min_rto() -> None:
    rtt = RttEstimator()
    for _ in range(50):
        rtt.sample(0.0)
    assert rtt.rto() == limits.MIN_RTO


def test_rto_is_at_most_max_rto() -> None:
    rtt = RttEstimator()
    rtt.sample(60.0)
    assert rtt.rto() == limits.MAX_RTO


def test_negative_sample_counts_as_zero() -> None:
    rtt = RttEstimator()
    rtt.sample(-5.0)
    assert rtt.srtt == 0.0
    assert rtt.rttvar == 0.0


@PROPERTY
@given(samples=st.lists(st.floats(min_value=-1.0, max_value=1e6), min_size=1, max_size=30))
def test_rto_stays_within_its_bounds_whatever_the_samples(samples: list[float]) -> None:
    rtt = RttEstimator()
    for sample in samples:
        rtt.sample(sample)
        assert limits.MIN_RTO <= rtt.rto() <= limits.MAX_RTO


# --- SendWindow ---------------------------------------------------------------------------------


def test_tracked_item_is_in_flight_with_its_bytes() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"abc", now=10.0)
    window.track(2, b"de", now=10.0)
    assert len(window) == 2
    assert 1 in window
    assert 3 not in window
    assert window.bytes_in_flight == 5
    assert window.pending() == [1, 2]


def test_tracking_a_key_twice_keeps_the_first() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"first", now=0.0)
    window.track(1, b"second, longer", now=5.0)
    assert window.bytes_in_flight == len(b"first")
    assert window.pop_all() == [(1, b"first")]


def test_first_deadline_is_one_rto_after_sending() -> None:
    window: SendWindow[str] = SendWindow()
    window.track("a", b"x", now=100.0)
    assert window.next_deadline() == pytest.approx(100.0 + limits.INITIAL_RTO)


def test_empty_window_has_no_deadline() -> None:
    assert SendWindow().next_deadline() is None


def test_next_deadline_is_the_earliest() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=5.0)
    window.track(2, b"y", now=1.0)
    assert window.next_deadline() == pytest.approx(1.0 + limits.INITIAL_RTO)


def test_nothing_is_due_before_the_deadline() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    assert window.due(limits.INITIAL_RTO - 0.001) == []
    assert window.retransmits == 0


def test_item_is_due_at_its_deadline_and_counted_as_retransmitted() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    assert window.due(limits.INITIAL_RTO) == [b"x"]
    assert window.retransmits == 1
    assert 1 in window  # still waiting for its ack


def test_each_resend_doubles_the_timeout() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    rto = limits.INITIAL_RTO
    now = rto
    intervals = []
    for _ in range(3):
        assert window.due(now) == [b"x"]
        deadline = window.next_deadline()
        assert deadline is not None
        intervals.append(deadline - now)
        assert window.due(deadline - 1e-6) == []
        now = deadline
    assert intervals == pytest.approx([2 * rto, 4 * rto, 8 * rto])
    assert window.retransmits == 3


def test_backoff_interval_is_bounded() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    now = 0.0
    for _ in range(30):
        now = window.next_deadline() or now
        window.due(now)
        deadline = window.next_deadline()
        assert deadline is not None
        assert deadline - now <= 4 * limits.MAX_RTO + 1e-9


def test_an_item_resent_a_thousand_times_does_not_crash_the_window() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    now = 0.0
    for _ in range(1100):
        now += 4 * limits.MAX_RTO
        assert window.due(now) == [b"x"]


def test_only_items_past_their_deadline_are_resent() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"old", now=0.0)
    window.track(2, b"new", now=0.2)
    assert window.due(limits.INITIAL_RTO) == [b"old"]
    assert window.due(0.2 + limits.INITIAL_RTO) == [b"new"]


def test_acknowledge_forgets_the_item_and_its_bytes() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"abc", now=0.0)
    window.track(2, b"de", now=0.0)
    assert window.acknowledge(1, now=0.1) is True
    assert 1 not in window
    assert window.bytes_in_flight == 2
    assert window.due(100.0) == [b"de"]


def test_acknowledging_an_unknown_or_repeated_key_returns_false() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"abc", now=0.0)
    assert window.acknowledge(9, now=0.1) is False
    assert window.acknowledge(1, now=0.1) is True
    assert window.acknowledge(1, now=0.2) is False
    assert window.bytes_in_flight == 0
    assert window.rtt.samples == 1


def test_ack_of_an_item_sent_once_is_an_rtt_sample() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=10.0)
    window.acknowledge(1, now=10.25)
    assert window.rtt.samples == 1
    assert window.rtt.srtt == pytest.approx(0.25)


def test_ack_of_a_retransmitted_item_is_no_rtt_sample_karn() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    window.due(limits.INITIAL_RTO)
    assert window.acknowledge(1, now=limits.INITIAL_RTO + 0.01) is True
    assert window.rtt.samples == 0
    assert window.rtt.rto() == limits.INITIAL_RTO


def test_measured_rtt_sets_the_timeout_of_later_items() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(1, b"x", now=0.0)
    window.acknowledge(1, now=0.01)
    window.track(2, b"y", now=1.0)
    assert window.next_deadline() == pytest.approx(1.0 + window.rtt.rto())
    assert window.rtt.rto() < limits.INITIAL_RTO


def test_pop_all_returns_everything_oldest_first_and_empties_the_window() -> None:
    window: SendWindow[int] = SendWindow()
    window.track(3, b"c", now=0.0)
    window.track(1, b"a", now=1.0)
    window.track(2, b"b", now=2.0)
    assert window.pop_all() == [(3, b"c"), (1, b"a"), (2, b"b")]
    assert len(window) == 0
    assert window.bytes_in_flight == 0
    assert window.next_deadline() is None
    assert window.due(1000.0) == []
    assert window.rtt.samples == 0


@PROPERTY
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["track", "ack"]), st.integers(0, 20), st.binary(max_size=20)), max_size=60
    )
)
def test_bytes_in_flight_is_the_sum_of_tracked_items(ops: list[tuple[str, int, bytes]]) -> None:
    window: SendWindow[int] = SendWindow()
    model: dict[int, bytes] = {}
    for now, (op, key, data) in enumerate(ops):
        if op == "track":
            window.track(key, data, float(now))
            model.setdefault(key, data)
        else:
            assert window.acknowledge(key, float(now)) == (key in model)
            model.pop(key, None)
        assert window.bytes_in_flight == sum(len(d) for d in model.values())
        assert len(window) == len(model)


# --- Reorder ------------------------------------------------------------------------------------


def test_in_order_items_are_released_at_once() -> None:
    reorder: Reorder[str] = Reorder()
    assert reorder.push(1, "a") == ["a"]
    assert reorder.push(2, "b") == ["b"]
    assert reorder.expected == 3
    assert not reorder.gap()


def test_early_arrivals_are_held_until_the_gap_fills() -> None:
    reorder: Reorder[str] = Reorder()
    assert reorder.push(3, "c") == []
    assert reorder.push(2, "b") == []
    assert reorder.gap()
    assert reorder.push(1, "a") == ["a", "b", "c"]
    assert not reorder.gap()


def test_already_released_item_is_a_duplicate() -> None:
    reorder: Reorder[str] = Reorder()
    reorder.push(1, "a")
    assert reorder.push(1, "a") == []
    assert reorder.duplicates == 1


def test_item_already_waiting_is_a_duplicate() -> None:
    reorder: Reorder[str] = Reorder()
    reorder.push(3, "c")
    assert reorder.push(3, "c again") == []
    assert reorder.duplicates == 1
    assert reorder.push(1, "a") == ["a"]
    assert reorder.push(2, "b") == ["b", "c"]


def test_item_beyond_the_window_is_dropped_not_held() -> None:
    reorder: Reorder[str] = Reorder(window=4)
    assert reorder.push(5, "too far") == []
    assert reorder.duplicates == 0
    assert not reorder.gap()
    assert reorder.push(4, "d") == []
    released: list[str] = []
    for seq, item in enumerate("abc", start=1):
        released += reorder.push(seq, item)
    assert released == ["a", "b", "c", "d"]
    assert reorder.ack() == (4, ())


def test_default_window_is_the_member_window() -> None:
    reorder: Reorder[int] = Reorder()
    assert reorder.push(limits.MEMBER_WINDOW, 0) == []
    assert reorder.gap()
    assert reorder.push(limits.MEMBER_WINDOW + 1, 0) == []
    assert reorder.ack() == (0, (limits.MEMBER_WINDOW,))


def test_ack_is_cumulative_plus_the_waiting_seqs() -> None:
    reorder: Reorder[str] = Reorder()
    reorder.push(1, "a")
    reorder.push(2, "b")
    reorder.push(5, "e")
    reorder.push(4, "d")
    assert reorder.ack() == (2, (4, 5))


def test_ack_of_a_fresh_stream_acknowledges_nothing() -> None:
    assert Reorder().ack() == (0, ())


def test_selective_acks_are_the_lowest_max_sack_seqs() -> None:
    reorder: Reorder[int] = Reorder()
    for seq in range(3 + limits.MAX_SACK + 10, 2, -1):
        reorder.push(seq, seq)
    upto, sack = reorder.ack()
    assert upto == 0
    assert sack == tuple(range(3, 3 + limits.MAX_SACK))


def test_skip_to_starts_the_stream_at_that_seq() -> None:
    reorder: Reorder[str] = Reorder()
    reorder.skip_to(100)
    assert reorder.push(99, "old") == []
    assert reorder.duplicates == 1
    assert reorder.push(100, "x") == ["x"]
    assert reorder.ack() == (100, ())


def test_skip_to_drops_waiting_items_before_the_new_start() -> None:
    reorder: Reorder[str] = Reorder()
    reorder.push(5, "e")
    reorder.push(20, "t")
    reorder.skip_to(10)
    assert reorder.ack() == (9, (20,))
    assert reorder.push(10, "j") == ["j"]


def test_skip_to_an_already_waiting_seq_lets_it_be_released() -> None:
    reorder: Reorder[str] = Reorder()
    reorder.push(10, "j")
    reorder.push(11, "k")
    assert reorder.skip_to(10) == ["j", "k"]
    assert reorder.push(10, "j") == []


@PROPERTY
@given(data=st.data(), n=st.integers(min_value=0, max_value=60))
def test_any_arrival_order_with_duplicates_releases_each_item_once_in_order(
    data: st.DataObject, n: int
) -> None:
    seqs = list(range(1, n + 1))
    extra = data.draw(st.lists(st.sampled_from(seqs), max_size=n) if seqs else st.just([]))
    arrivals = data.draw(st.permutations(seqs + extra))
    reorder: Reorder[str] = Reorder()
    released: list[str] = []
    for seq in arrivals:
        released += reorder.push(seq, f"item {seq}")
    assert released == [f"item {seq}" for seq in seqs]
    assert reorder.duplicates == len(extra)
    assert reorder.ack() == (n, ())
    assert not reorder.gap()


@PROPERTY
@given(data=st.data(), n=st.integers(min_value=1, max_value=40))
def test_releases_are_always_a_prefix_and_ack_reports_what_arrived(data: st.DataObject, n: int) -> None:
    arrivals = data.draw(st.lists(st.integers(1, n), max_size=3 * n))
    reorder: Reorder[int] = Reorder()
    released: list[int] = []
    for seq in arrivals:
        released += reorder.push(seq, seq)
        upto, sack = reorder.ack()
        assert released == list(range(1, upto + 1))
        assert all(seq > upto + 1 for seq in sack)
        assert set(sack) <= set(arrivals)


@given(st.lists(st.integers(1, 30), max_size=60))
def test_reorder_releases_each_seq_once_in_order_as_a_model_would(seqs: list[int]) -> None:
    """In-order arrivals take a short way: the same releases and duplicates as a plain model."""
    reorder: Reorder[int] = Reorder(window=16)
    released: list[int] = []
    seen: set[int] = set()
    expected, duplicates = 1, 0
    for seq in seqs:
        released += reorder.push(seq, seq)
        if seq < expected or seq in seen:
            duplicates += 1
        elif seq < expected + 16:
            seen.add(seq)
            while expected in seen:
                expected += 1
    assert released == list(range(1, expected))
    assert reorder.expected == expected and reorder.duplicates == duplicates
