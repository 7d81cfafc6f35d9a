"""Flood control (token buckets) and stateless address validation (cookies and typed codes)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.shared import limits
from roomcast.shared.cookie import CODE_LENGTH, COOKIE_MAC, check_code, check_cookie, make_code, make_cookie
from roomcast.shared.flood import TokenBucket

PROPERTY = settings(max_examples=200, deadline=None)

# --- TokenBucket ----------------------------------------------------------------------------------


def _spend_all(bucket: TokenBucket, now: float) -> int:
    taken = 0
    while bucket.take(now):
        taken += 1
        assert taken < 10_000, "bucket never ran dry"
    return taken


def test_new_bucket_allows_a_full_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=4.0, burst=20)
    assert _spend_all(bucket, now=0.0) == 20
    assert bucket.take(0.0) is False


def test_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=4.0, burst=20)
    _spend_all(bucket, now=0.0)
    assert bucket.take(0.125) is False  # half a token
    assert bucket.take(0.25) is True  # one token
    assert bucket.take(0.25) is False
    assert _spend_all(bucket, now=1.25) == 4  # one second: rate tokens


def test_steady_rate_is_allowed_after_the_burst() -> None:
    bucket = TokenBucket(rate=4.0, burst=2)
    _spend_all(bucket, now=0.0)
    assert all(bucket.take(0.25 * i) for i in range(1, 100))


def test_refill_never_exceeds_the_burst() -> None:
    bucket = TokenBucket(rate=4.0, burst=5)
    _spend_all(bucket, now=0.0)
    assert _spend_all(bucket, now=3600.0) == 5


def test_first_use_long_after_creation_still_allows_only_the_burst() -> None:
    bucket = TokenBucket(rate=limits.FLOOD_RATE, burst=limits.FLOOD_BURST)
    assert _spend_all(bucket, now=123_456.0) == limits.FLOOD_BURST


def test_refused_take_spends_nothing() -> None:
    bucket = TokenBucket(rate=4.0, burst=1)
    assert bucket.take(0.0)
    for _ in range(10):
        assert not bucket.take(0.0)
    assert bucket.take(0.25)


def test_cost_spends_that_many_tokens() -> None:
    bucket = TokenBucket(rate=1.0, burst=10)
    assert bucket.take(0.0, cost=7)
    assert not bucket.take(0.0, cost=4)
    assert bucket.take(0.0, cost=3)
    assert not bucket.take(0.0, cost=0.5)


def test_rate_zero_means_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.take(0.0) for _ in range(1000))
    assert bucket.take(0.0, cost=1e9)
    assert bucket.wait_time(cost=1e9) == 0.0


def test_wait_time_is_zero_while_tokens_remain() -> None:
    bucket = TokenBucket(rate=4.0, burst=3)
    assert bucket.wait_time() == 0.0
    bucket.take(0.0)
    assert bucket.wait_time() == 0.0


def test_wait_time_says_when_the_next_token_arrives() -> None:
    bucket = TokenBucket(rate=4.0, burst=3)
    _spend_all(bucket, now=0.0)
    assert bucket.wait_time() == pytest.approx(0.25)
    assert bucket.wait_time(cost=2) == pytest.approx(0.5)
    bucket.take(0.125)  # refused, but half a token has come in
    assert bucket.wait_time() == pytest.approx(0.125)


@PROPERTY
@given(
    rate=st.floats(min_value=0.5, max_value=100.0),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), max_size=80),
)
def test_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        allowed += bucket.take(now)
        assert allowed <= burst + rate * now + 1e-6


@PROPERTY
@given(rate=st.floats(min_value=0.5, max_value=100.0), burst=st.integers(min_value=1, max_value=50))
def test_waiting_wait_time_is_enough_for_the_next_take(rate: float, burst: int) -> None:
    bucket = TokenBucket(rate=rate, burst=burst)
    _spend_all(bucket, now=10.0)
    assert bucket.take(10.0 + bucket.wait_time() + 1e-9)


# --- cookies --------------------------------------------------------------------------------------

SECRET = b"s" * 32
ADDRESS = ("192.0.2.7", 40000)
BUCKET = limits.COOKIE_BUCKET
#: A moment in the middle of bucket 100.
NOW = 100 * BUCKET + BUCKET / 2


def test_cookie_has_its_bucket_and_mac() -> None:
    assert len(make_cookie(SECRET, ADDRESS, NOW)) == 8 + COOKIE_MAC


def test_cookie_is_valid_at_once() -> None:
    assert check_cookie(SECRET, ADDRESS, make_cookie(SECRET, ADDRESS, NOW), NOW)


@pytest.mark.parametrize("offset", [-BUCKET / 2, BUCKET / 2 - 1e-6])
def test_cookie_is_valid_throughout_its_bucket(offset: float) -> None:
    assert check_cookie(SECRET, ADDRESS, make_cookie(SECRET, ADDRESS, NOW), NOW + offset)


@pytest.mark.parametrize("offset", [BUCKET / 2, BUCKET, 1.5 * BUCKET - 1e-6])
def test_cookie_is_valid_in_the_next_bucket(offset: float) -> None:
    assert check_cookie(SECRET, ADDRESS, make_cookie(SECRET, ADDRESS, NOW), NOW + offset)


@pytest.mark.parametrize("offset", [1.5 * BUCKET, 2 * BUCKET, 100 * BUCKET])
def test_cookie_from_an_older_bucket_is_refused(offset: float) -> None:
    assert not check_cookie(SECRET, ADDRESS, make_cookie(SECRET, ADDRESS, NOW), NOW + offset)


def test_cookie_from_a_future_bucket_is_refused() -> None:
    assert not check_cookie(SECRET, ADDRESS, make_cookie(SECRET, ADDRESS, NOW + BUCKET), NOW)


@pytest.mark.parametrize(
    "other",
    [("192.0.2.8", 40000), ("192.0.2.7", 40001), ("::1", 40000), ("2001:db8::7", 40000, 0, 0)],
)
def test_cookie_for_another_address_is_refused(other: tuple[object, ...]) -> None:
    assert not check_cookie(SECRET, other, make_cookie(SECRET, ADDRESS, NOW), NOW)


def test_cookie_made_with_another_secret_is_refused() -> None:
    assert not check_cookie(SECRET, ADDRESS, make_cookie(b"other secret", ADDRESS, NOW), NOW)


def test_cookie_with_any_byte_changed_is_refused() -> None:
    cookie = make_cookie(SECRET, ADDRESS, NOW)
    for index in range(len(cookie)):
        tampered = bytearray(cookie)
        tampered[index] ^= 0x01
        assert not check_cookie(SECRET, ADDRESS, bytes(tampered), NOW), index


def test_cookie_with_its_bucket_moved_forward_is_refused() -> None:
    cookie = make_cookie(SECRET, ADDRESS, NOW - BUCKET * 5)
    bucket = int(NOW // BUCKET)
    assert not check_cookie(SECRET, ADDRESS, bucket.to_bytes(8, "big") + cookie[8:], NOW)


@pytest.mark.parametrize(
    "cookie", [b"", b"x", b"\x00" * (8 + COOKIE_MAC - 1), b"\x00" * (8 + COOKIE_MAC + 1)]
)
def test_cookie_of_the_wrong_length_is_refused(cookie: bytes) -> None:
    assert not check_cookie(SECRET, ADDRESS, cookie, NOW)


def test_cookies_differ_by_address_and_bucket() -> None:
    cookies = {
        make_cookie(SECRET, ADDRESS, NOW),
        make_cookie(SECRET, ("192.0.2.7", 40001), NOW),
        make_cookie(SECRET, ADDRESS, NOW + BUCKET),
    }
    assert len(cookies) == 3


@PROPERTY
@given(junk=st.binary(max_size=40), now=st.floats(min_value=0.0, max_value=1e9))
def test_random_bytes_are_no_valid_cookie(junk: bytes, now: float) -> None:
    assert not check_cookie(SECRET, ADDRESS, junk, now)


# --- typed codes ----------------------------------------------------------------------------------


def test_code_is_short_uppercase_base32() -> None:
    code = make_code(SECRET, ADDRESS, NOW)
    assert len(code) == CODE_LENGTH
    assert all(ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for ch in code)


def test_code_is_valid_as_typed() -> None:
    assert check_code(SECRET, ADDRESS, make_code(SECRET, ADDRESS, NOW), NOW)


@pytest.mark.parametrize("typed", ["{code}\n", "  {code}  ", "{lower}", "\t{lower}\r\n"])
def test_code_is_case_insensitive_and_whitespace_is_stripped(typed: str) -> None:
    code = make_code(SECRET, ADDRESS, NOW)
    assert check_code(SECRET, ADDRESS, typed.format(code=code, lower=code.lower()), NOW)


@pytest.mark.parametrize("offset", [-BUCKET / 2, BUCKET / 2, 1.5 * BUCKET - 1e-6])
def test_code_is_valid_in_its_bucket_and_the_next(offset: float) -> None:
    assert check_code(SECRET, ADDRESS, make_code(SECRET, ADDRESS, NOW), NOW + offset)


@pytest.mark.parametrize("offset", [1.5 * BUCKET, 10 * BUCKET])
def test_code_from_an_older_bucket_is_refused(offset: float) -> None:
    assert not check_code(SECRET, ADDRESS, make_code(SECRET, ADDRESS, NOW), NOW + offset)


def test_code_for_another_address_is_refused() -> None:
    assert not check_code(SECRET, ("192.0.2.7", 40001), make_code(SECRET, ADDRESS, NOW), NOW)


def test_code_made_with_another_secret_is_refused() -> None:
    assert not check_code(SECRET, ADDRESS, make_code(b"other secret", ADDRESS, NOW), NOW)


def test_code_with_a_character_changed_or_missing_is_refused() -> None:
    code = make_code(SECRET, ADDRESS, NOW)
    changed = ("B" if code[0] == "A" else "A") + code[1:]
    for typed in (changed, code[:-1], code + "A", "", "hello"):
        assert not check_code(SECRET, ADDRESS, typed, NOW), typed


@pytest.mark.parametrize("typed", ["é", "héllo", "日本", "ＡＢＣＤＥＦ"])
def test_non_ascii_line_is_no_valid_code(typed: str) -> None:
    assert not check_code(SECRET, ADDRESS, typed, NOW)


@PROPERTY
@given(typed=st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=20))
def test_random_ascii_is_no_valid_code(typed: str) -> None:
    code = make_code(SECRET, ADDRESS, NOW)
    assert check_code(SECRET, ADDRESS, typed, NOW) == (typed.strip().upper() == code)
