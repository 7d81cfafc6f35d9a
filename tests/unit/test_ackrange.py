"""The hub's per-member range state (``shared.ackrange.AckRange``) against a simple model: the
set of acknowledged seqs.  Random acks, selective acks, duplicates and reordering (old acks
arriving late) must leave both agreeing on what is missing, and so on what is resent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.shared.ackrange import AckRange
from roomcast.shared.reliable import backoff_timeout

# An op: ("send", n) sends n more seqs; ("ack", upto, sacks) is an ack the receiver could have
# sent (upto and sacks relative to what was sent); ("replay", i) delivers the i-th earlier ack
# again (a duplicate, or one overtaken by later ones).
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 12)),
        st.tuples(st.just("ack"), st.integers(0, 40), st.lists(st.integers(0, 40), max_size=16)),
        st.tuples(st.just("replay"), st.integers(0, 50)),
    ),
    max_size=60,
)


class Model:
    """What the hub must believe: the set of seqs acknowledged, nothing more."""

    def __init__(self, start: int) -> None:
        self.acked = set(range(1, start + 1))

    def ack(self, upto: int, sack: tuple[int, ...], top: int) -> None:
        self.acked |= set(range(1, min(upto, top) + 1)) | {s for s in sack if s <= top}

    def missing(self, top: int) -> list[int]:
        return [s for s in range(1, top + 1) if s not in self.acked]


@settings(max_examples=300)
@given(st.integers(0, 5), OPS)
def test_missing_seqs_match_the_set_of_acknowledged_seqs(start: int, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    ack, model, top = AckRange(start), Model(start), start
    sent_acks: list[tuple[int, tuple[int, ...]]] = []
    for op in ops:
        if op[0] == "send":
            top += op[1]
        elif op[0] == "ack":
            upto = start + op[1] if op[1] <= top - start else top
            sack = tuple(sorted({start + s for s in op[2] if start < start + s <= top}))[:16]
            sent_acks.append((upto, sack))
            ack.acknowledge(upto, sack, top)
            model.ack(upto, sack, top)
        elif sent_acks:
            upto, sack = sent_acks[op[1] % len(sent_acks)]
            ack.acknowledge(upto, sack, top)
            model.ack(upto, sack, top)
        assert ack.missing(top) == model.missing(top)
        assert ack.unacked(top) == len(model.missing(top))
        assert ack.acked + 1 not in model.acked or ack.acked == top  # the cumulative point is exact
        assert all(ack.acked < s <= top for s in ack.sacks)


@given(st.integers(0, 5), OPS, st.integers(1, 20))
def test_timeouts_resend_the_lowest_missing_seqs_and_back_off(
    start: int, ops: list[tuple], most: int
) -> None:  # type: ignore[type-arg]
    ack, model, top = AckRange(start), Model(start), start
    now, rto = 0.0, 0.2
    for op in ops:
        now += 0.01
        if op[0] == "send":
            top += op[1]
        elif op[0] == "ack":
            upto = min(start + op[1], top)
            sack = tuple(sorted({start + s for s in op[2] if s > 0 and start + s <= top}))[:16]
            newest = ack.acknowledge(upto, sack, top)
            before = set(model.acked)
            model.ack(upto, sack, top)
            assert (newest != 0) == (model.acked != before)
            if newest:
                assert ack.backoff == 0
    first_sent = 0.0
    due = ack.deadline(first_sent, rto)
    assert due == first_sent + backoff_timeout(rto, ack.backoff)
    backoff = ack.backoff
    resent = ack.on_timeout(due, top, most)
    assert resent == model.missing(top)[:most]
    if resent:
        assert ack.backoff == backoff + 1 and all(ack.resent[s] == due for s in resent)
        assert ack.deadline(first_sent, rto) == due + backoff_timeout(rto, backoff + 1)
        assert ack.clean_after >= resent[-1]  # their acks give no RTT sample
    ack.acknowledge(top, (), top)
    assert ack.resent == {}  # nothing kept once acknowledged


def test_fast_resend_sends_each_hole_below_a_selective_ack_once_per_spacing() -> None:
    ack = AckRange(0)
    ack.acknowledge(2, (5, 7), top=9)

    def fanned_at(seq: int) -> float:
        return 0.9

    assert ack.fast_resend(1.0, 9, 7, fanned_at, spacing=0.05) == [3, 4, 6]
    assert ack.fast_resend(1.01, 9, 7, fanned_at, spacing=0.05) == []  # too soon again
    ack.acknowledge(2, (5, 7, 9), top=9)
    assert ack.fast_resend(1.02, 9, 10, fanned_at, spacing=0.05) == [8]  # a new hole goes at once
    assert ack.fast_resend(1.06, 9, 10, fanned_at, spacing=0.05) == [3, 4, 6]
    assert ack.backoff == 0  # not a timeout


def test_an_ack_beyond_what_was_sent_acknowledges_only_what_was_sent() -> None:
    ack = AckRange(10)
    assert ack.acknowledge(1_000_000, (2_000_000,), top=12) == 12
    assert ack.acked == 12 and ack.sacks == set() and ack.missing(15) == [13, 14, 15]


def test_a_filled_gap_moves_the_cumulative_point_past_the_selective_acks() -> None:
    ack = AckRange(0)
    ack.acknowledge(0, (2, 3), top=5)
    assert ack.acked == 0 and ack.missing(5) == [1, 4, 5]
    ack.acknowledge(0, (1,), top=5)
    assert ack.acked == 3 and ack.sacks == set() and ack.missing(5) == [4, 5]


SLOTS = ("acked", "sacks", "sent", "resent", "backoff", "clean_after", "held", "progress_at")


@settings(max_examples=300)
@given(st.integers(0, 30), st.integers(0, 30), st.dictionaries(st.integers(0, 60), st.floats(0, 9)),
       st.integers(0, 6), st.booleans(), st.integers(0, 60), st.integers(0, 60))  # fmt: skip
def test_the_usual_ack_takes_a_short_way_to_the_same_state(
    acked: int, ahead: int, resent: dict[int, float], backoff: int, held: bool, upto: int, top: int
) -> None:
    """A cumulative ack with no gap on either side: the same result and state as the way every
    ack takes (``acknowledge_any``)."""
    states = []
    for take in (AckRange.acknowledge, AckRange.acknowledge_any):
        ack = AckRange(acked)
        ack.sent, ack.resent, ack.backoff, ack.held = acked + ahead, dict(resent), backoff, held
        newest = take(ack, upto, (), max(top, acked))
        states.append((newest, *(getattr(ack, name) for name in SLOTS)))
    assert states[0] == states[1]


@given(st.integers(0, 30), st.integers(0, 30), st.sets(st.integers(0, 60), max_size=5),
       st.dictionaries(st.integers(0, 60), st.floats(0, 9)), st.integers(0, 62))  # fmt: skip
def test_marking_the_next_seq_takes_a_short_way_to_the_same_state(
    acked: int, ahead: int, sacks: set[int], resent: dict[int, float], seq: int
) -> None:
    states = []
    for mark in (AckRange.mark, AckRange.mark_any):
        ack = AckRange(acked)
        ack.sent, ack.resent, ack.sacks = acked + ahead, dict(resent), {s for s in sacks if s > acked + 1}
        mark(ack, seq)
        states.append(tuple(getattr(ack, name) for name in SLOTS))
    assert states[0] == states[1]
