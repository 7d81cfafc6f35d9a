"""Stateless address validation (RFC 9000 §8.1, DTLS HelloVerifyRequest).

A cookie is an HMAC over the client's address and a time bucket, keyed by a secret that only
this hub run knows.  The hub keeps no state for an address until it echoes a valid cookie, so
a spoofed source address costs the hub nothing and gets its owner at most one small reply.
The key rotates with the bucket (derived from the secret), a cookie being good for its bucket
and the next.  Text clients on untrusted networks get a short code derived the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from roomcast.shared import limits

COOKIE_MAC = 16
CODE_LENGTH = 6


def _bucket(now: float) -> int:
    return int(now // limits.COOKIE_BUCKET)


def _mac(secret: bytes, address: tuple[Any, ...], bucket: int, size: int) -> bytes:
    key = hmac.digest(secret, bucket.to_bytes(8, "big", signed=True), hashlib.sha256)
    message = f"{address[0]}|{address[1]}".encode()
    return hmac.digest(key, message, hashlib.sha256)[:size]


def make_cookie(secret: bytes, address: tuple[Any, ...], now: float) -> bytes:
    bucket = _bucket(now)
    return bucket.to_bytes(8, "big", signed=True) + _mac(secret, address, bucket, COOKIE_MAC)


def check_cookie(secret: bytes, address: tuple[Any, ...], cookie: bytes, now: float) -> bool:
    """True if ``cookie`` was made for ``address`` in this time bucket or the one before."""
    if len(cookie) != 8 + COOKIE_MAC:
        return False
    bucket = int.from_bytes(cookie[:8], "big", signed=True)
    if bucket not in (_bucket(now), _bucket(now) - 1):
        return False
    return hmac.compare_digest(cookie[8:], _mac(secret, address, bucket, COOKIE_MAC))


def make_code(secret: bytes, address: tuple[Any, ...], now: float) -> str:
    """A short code a person can type back, valid for this bucket and the next."""
    return _code(secret, address, _bucket(now))


def check_code(secret: bytes, address: tuple[Any, ...], line: str, now: float) -> bool:
    typed = line.strip().upper().encode()
    return any(
        hmac.compare_digest(typed, _code(secret, address, b).encode())
        for b in (_bucket(now), _bucket(now) - 1)
    )


def _code(secret: bytes, address: tuple[Any, ...], bucket: int) -> str:
    return base64.b32encode(_mac(secret, address, bucket, 5)).decode()[:CODE_LENGTH]
