"""The binary envelope: ``0xC1``, a version byte, then one msgpack map.

0xC1 is never valid UTF-8 and never used by msgpack, so the hub tells an envelope from a
plain text line by its first byte, and no text line can be taken for an envelope.  The map
holds ``k`` (the kind, see ``shared.events``), ``s`` (the session token, client to hub, once
the session is open) and the kind's fields under their own names.

Decoding is strict and bounded: the datagram, every string, binary, array and map have a size
limit (``shared.limits``), keys must be strings, unknown keys are ignored (so a newer peer can
add fields), unknown kinds, missing fields, wrong types and bad values are refused with a
:class:`RemoteProtocolError` whose ``code`` is stable and whose text says what was wrong.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs
import msgpack

from roomcast.shared import events, fastwire, limits
from roomcast.shared.names import BadName

HEADER = fastwire.HEADER
KIND_KEY = "k"
TOKEN_KEY = "s"


class RemoteProtocolError(Exception):
    """The peer sent something we cannot accept.  ``code`` is for programs, the text for people."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        #: When a request was refused for its fields: its id and the token it came with, so
        #: the hub can answer that request by id (and not wait for it for ever).
        self.request_id = 0
        self.token = b""


class LocalProtocolError(Exception):
    """We tried to send something the protocol does not allow (a bug on our side)."""


@attrs.frozen
class Envelope:
    """A decoded datagram: the message and the session token it carried (empty if none)."""

    event: Any
    token: bytes = b""


def is_envelope(data: bytes) -> bool:
    """True when ``data`` claims to be an envelope (as opposed to a plain text line)."""
    return bool(data) and data[0] == limits.ENVELOPE_MAGIC


def encode(event: events.Event, token: bytes = b"") -> bytes:
    """Bytes of one envelope holding ``event``; raise LocalProtocolError if it is too large."""
    e: Any = event
    kind = type(e)
    if kind is events.Deliver and not token:  # the hub's most frequent ones, put together
        data = fastwire.encode_deliver(e.room, e.seq, e.nick, e.body, e.ts, e.action, e.history)
        if data is not None:
            return data
    elif kind is events.Reply and not token and not e.items and not e.delay:
        data = fastwire.encode_reply(e.id, e.text, e.seq)
        if data is not None:
            return data
    return encode_fields(event, token)


def encode_fields(event: events.Event, token: bytes = b"") -> bytes:
    """:func:`encode` field by field, for every kind (``shared.fastwire`` gives the same bytes
    faster for the most frequent ones)."""
    wire: dict[str, Any] = {KIND_KEY: event.KIND}
    if token:
        wire[TOKEN_KEY] = token
    for name, default in _fields(type(event)):
        value = getattr(event, name)
        if value != default or default is attrs.NOTHING:
            kind = type(value)
            if kind is str:
                if len(value) * 4 > limits.MAX_STR and len(value.encode()) > limits.MAX_STR:
                    raise LocalProtocolError(f"{event.KIND}.{name} is over {limits.MAX_STR} bytes")
            elif kind is tuple:
                _check_size(event.KIND, name, value)
            wire[name] = value
    data: bytes = HEADER + msgpack.packb(wire, use_bin_type=True)
    if len(data) > limits.MAX_DATAGRAM:
        raise LocalProtocolError(f"{event.KIND} envelope is {len(data)} bytes, over {limits.MAX_DATAGRAM}")
    return data


_FIELDS: dict[type[Any], tuple[tuple[str, Any], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[str, Any], ...]:
    """(name, default) of each field of an event class, read once (encoding is hot)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = tuple((f.name, f.default) for f in attrs.fields(cls))
    return fields


def _check_size(kind: str, name: str, value: object) -> None:
    """Refuse to send what the peer's bounded decoder would refuse."""
    if isinstance(value, str) and len(value) * 4 > limits.MAX_STR and len(value.encode()) > limits.MAX_STR:
        raise LocalProtocolError(f"{kind}.{name} is over {limits.MAX_STR} bytes")
    if isinstance(value, tuple):
        if len(value) > limits.MAX_ARRAY:
            raise LocalProtocolError(f"{kind}.{name} has over {limits.MAX_ARRAY} items")
        for item in value:
            _check_size(kind, name, item)


def decode(data: bytes) -> Envelope:
    """Parse one datagram as an envelope, or raise RemoteProtocolError saying why not."""
    if len(data) > limits.MAX_DATAGRAM:
        raise RemoteProtocolError(
            "too-large", f"datagram is {len(data)} bytes; the limit is {limits.MAX_DATAGRAM}"
        )
    if not is_envelope(data) or len(data) < 3:
        raise RemoteProtocolError("not-envelope", "datagram does not start with the 0xC1 envelope header")
    if data[1] != limits.ENVELOPE_VERSION:
        raise RemoteProtocolError(
            "bad-version",
            f"envelope version {data[1]} is not supported; this hub speaks {limits.ENVELOPE_VERSION}",
        )
    wire = _unpack(data[2:])
    kind = wire.get(KIND_KEY)
    cls = events.KIND_TO_CLASS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RemoteProtocolError("unknown-kind", f"unknown message kind {kind!r}")
    token = wire.get(TOKEN_KEY, b"")
    if not isinstance(token, bytes) or len(token) not in (0, limits.TOKEN_BYTES):
        raise RemoteProtocolError("bad-type", f"session token must be {limits.TOKEN_BYTES} bytes")
    try:
        return Envelope(_build(cls, wire), token)
    except RemoteProtocolError as exc:
        request_id = wire.get("id")
        if cls in events.REQUESTS and type(request_id) is int and 0 < request_id < 2**63:
            exc.request_id, exc.token = request_id, token
        raise


def _unpack(body: bytes) -> dict[str, Any]:
    try:
        wire = msgpack.unpackb(body, **fastwire.LIMITS)
    except UnicodeDecodeError:
        raise RemoteProtocolError("malformed", "a string in the envelope is not valid UTF-8") from None
    except ValueError as exc:  # msgpack's size limits and its malformed-data errors
        raise RemoteProtocolError(
            "malformed", f"envelope body is not valid msgpack within limits: {exc}"
        ) from None
    except Exception as exc:  # msgpack raises several unrelated types on junk
        raise RemoteProtocolError(
            "malformed", f"envelope body is not valid msgpack: {type(exc).__name__}"
        ) from None
    if not isinstance(wire, dict) or not all(isinstance(key, str) for key in wire):
        raise RemoteProtocolError("malformed", "envelope body must be a map with string keys")
    return wire


def _build(cls: type[Any], wire: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for name, expected, required in _schema(cls):
        if name not in wire:
            if required:
                raise RemoteProtocolError("missing-field", f"{cls.KIND} needs the field {name!r}")
            continue
        value = wire[name]
        if not _has_type(value, expected):
            raise RemoteProtocolError(
                "bad-type", f"{cls.KIND}.{name} must be {_type_name(expected)}, not {type(value).__name__}"
            )
        kwargs[name] = float(value) if expected is float else value
    try:
        return cls(**kwargs)
    except BadName as exc:
        raise RemoteProtocolError("bad-name", str(exc)) from None
    except ValueError as exc:
        raise RemoteProtocolError("bad-value", f"{cls.KIND}: {exc}") from None


_SCHEMAS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _schema(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """(field name, expected type, required) for each field of ``cls``, resolved once."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        schema = tuple((f.name, hints[f.name], f.default is attrs.NOTHING) for f in attrs.fields(cls))
        _SCHEMAS[cls] = schema
    return schema


def _has_type(value: object, expected: Any) -> bool:
    if expected is float:
        return type(value) in (float, int)
    if expected in (int, str, bytes, bool):
        return type(value) is expected
    if typing.get_origin(expected) is tuple:
        (item, _ellipsis) = typing.get_args(expected)
        return isinstance(value, tuple) and all(type(v) is item for v in value)
    raise LocalProtocolError(f"unsupported field type {expected!r}")


def _type_name(expected: Any) -> str:
    if isinstance(expected, types.GenericAlias):
        return f"an array of {typing.get_args(expected)[0].__name__}"
    return {int: "an integer", str: "a string", bytes: "binary", bool: "a boolean", float: "a number"}[
        expected
    ]
