"""Many datagrams in one system call: ``sendmmsg(2)`` through ctypes, for the hub's send path.

Why: a room message goes to every member as the same bytes, and profiles of the hub under
fan-out load show about half its time in the ``sendto`` line of the shell: one interpreter
call, one address conversion and one system call per datagram.  ``sendmmsg`` hands the
kernel up to ``capacity`` datagrams at once; the datagrams of one fan-out share one iovec, and
each member's ``sockaddr`` is converted once and cached.

Portable: :func:`open_batch_sender` returns None where this cannot work (not Linux, no
``sendmmsg`` in libc, a ``struct msghdr`` layout other than the one checked here), and the
shell then sends with ``sendto`` per datagram, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

Address = tuple[Any, ...]


class _IoVec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    """``struct msghdr``, Linux layout."""

    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    """``struct mmsghdr``: one datagram for sendmmsg and the length the kernel sent."""

    _fields_ = (("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint))


#: One call writes a datagram's name, name length and iovec pointer: the first three fields.
_HEAD = struct.Struct("@PIP")
_IOV = struct.Struct("@PN")
#: Where a bytes object's data starts, relative to id() (CPython); checked in _data_address.
_BYTES_OFFSET = sys.getsizeof(b"") - 1
#: Converted addresses kept; past this many the cache starts again (a hub with more clients
#: converts some addresses more than once, nothing worse).
_NAME_CACHE = 65_536


def _pointer_of(data: bytes) -> int:
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def _layout_ok() -> bool:
    return (
        _MMsgHdr.msg_hdr.offset == 0
        and _MsgHdr.msg_name.offset == 0
        and _MsgHdr.msg_namelen.offset == struct.calcsize("@P")
        and _MsgHdr.msg_iov.offset == _HEAD.size - struct.calcsize("@P")
        and ctypes.sizeof(_IoVec) == _IOV.size
    )


def _id_is_address() -> bool:
    """True when ``id(b) + _BYTES_OFFSET`` is where ``b``'s bytes are (CPython): no ctypes
    round trip per datagram then."""
    samples = [b"x" * n for n in (1, 7, 100, 1500)]
    return all(id(b) + _BYTES_OFFSET == _pointer_of(b) for b in samples)


def _data_address() -> Callable[[bytes], int]:
    if _id_is_address():
        offset = _BYTES_OFFSET
        return lambda data: id(data) + offset
    return _pointer_of


class BatchSender:
    """Sends a list of ``(bytes, address)`` datagrams on one non-blocking UDP socket,
    ``capacity`` per ``sendmmsg`` call.  The caller keeps the list alive during :meth:`send`."""

    def __init__(self, sock: socket.socket, sendmmsg: Any, capacity: int = 256) -> None:
        self.fd = sock.fileno()
        self.family = sock.family
        self.capacity = capacity
        self._sendmmsg = sendmmsg
        self._msgs = (_MMsgHdr * capacity)()
        self._iovs = (_IoVec * capacity)()
        self._msg_view = memoryview(self._msgs).cast("B")
        self._iov_view = memoryview(self._iovs).cast("B")
        self._msg_base = ctypes.addressof(self._msgs)
        self._iov_base = ctypes.addressof(self._iovs)
        for msg in self._msgs:
            msg.msg_hdr.msg_iovlen = 1
        self._address_of = _data_address()
        #: address -> (sockaddr bytes, kept alive here, its pointer, its length)
        self._names: dict[Address, tuple[bytes, int, int]] = {}

    def send(self, datagrams: Sequence[tuple[bytes, Address]], start: int = 0) -> int:
        """Send datagrams from ``start`` on (at most ``capacity``) in one system call; return how
        many went.  Raises BlockingIOError when the socket buffer is full before the first
        one, OSError (with the kernel's errno) when the first one cannot be sent at all."""
        if len(self._names) > _NAME_CACHE:
            self._names.clear()
        count = min(len(datagrams) - start, self.capacity)
        names, name_of, address_of = self._names, self._name, self._address_of
        msg_view, iov_view, pack_head, pack_iov = (
            self._msg_view,
            self._iov_view,
            _HEAD.pack_into,
            _IOV.pack_into,
        )
        msg_size, iov_size = ctypes.sizeof(_MMsgHdr), _IOV.size
        last: bytes | None = None
        iov = self._iov_base - iov_size
        slot = -iov_size
        for i in range(count):
            data, address = datagrams[start + i]
            if data is not last:
                last = data
                slot += iov_size
                iov += iov_size
                pack_iov(iov_view, slot, address_of(data), len(data))
            name = names.get(address)
            if name is None:
                try:
                    name = name_of(address)
                except (OSError, ValueError, TypeError, IndexError):
                    if i == 0:
                        raise OSError(f"cannot send to {address!r}: not a numeric address") from None
                    count = i
                    break
            pack_head(msg_view, i * msg_size, name[1], name[2], iov)
        sent: int = self._sendmmsg(self.fd, self._msg_base, count, 0)
        if sent < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))  # EAGAIN makes it a BlockingIOError
        return sent

    def send_fanout(self, data: bytes, vector: Any, skip: int, start: int = 0) -> int:
        """One room message to a live vector (``hub.fanout.LiveVector``) but the entry at
        ``skip``, from the ``start``-th target on: one ``sendmmsg`` over the vector's own
        array, whose entries all point at one iovec.  The array holds the members twice, so
        the targets after ``skip`` and then before it are one slice.  Returns how many went;
        raises as :meth:`send` does."""
        native = vector.native
        if native is None or native[0] is not self:
            native = vector.native = self._vector(vector.addresses)
        _owner, msgs, iov, _names, size = native
        count = size - (skip >= 0) - start
        if count <= 0:
            return 0
        iov.iov_base, iov.iov_len = self._address_of(data), len(data)
        first = (skip + 1 if skip >= 0 else 0) + start
        sent: int = self._sendmmsg(
            self.fd, ctypes.addressof(msgs) + first * ctypes.sizeof(_MMsgHdr), count, 0
        )
        if sent < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        return sent

    def _vector(self, addresses: Sequence[Address]) -> tuple[Any, Any, _IoVec, list[bytes], int]:
        """The ``mmsghdr`` array of a live vector, built once per vector (when membership
        changes): every address twice, every entry pointing at one shared iovec."""
        size = len(addresses)
        msgs = (_MMsgHdr * max(1, 2 * size))()
        iov = _IoVec()
        iov_pointer = ctypes.addressof(iov)
        names: list[bytes] = []
        for i, address in enumerate(addresses):
            try:
                raw, pointer, length = self._names.get(address) or self._name(address)
            except (OSError, ValueError, TypeError, IndexError):
                raw, pointer, length = b"", 0, 0  # not numeric: the kernel refuses that entry
            names.append(raw)
            for slot in (i, i + size):
                msgs[slot].msg_hdr.msg_name = pointer
                msgs[slot].msg_hdr.msg_namelen = length
                msgs[slot].msg_hdr.msg_iov = iov_pointer
                msgs[slot].msg_hdr.msg_iovlen = 1
        return (self, msgs, iov, names, size)

    def _name(self, address: Address) -> tuple[bytes, int, int]:
        """The ``sockaddr`` for ``address`` as recvfrom gave it, converted once."""
        host, port = str(address[0]).split("%")[0], int(address[1])
        if self.family == socket.AF_INET6:
            flowinfo = int(address[2]) if len(address) > 2 else 0
            scope = int(address[3]) if len(address) > 3 else 0
            raw = struct.pack(
                "=H2s4s16sI",
                socket.AF_INET6,
                port.to_bytes(2, "big"),
                flowinfo.to_bytes(4, "big"),
                socket.inet_pton(socket.AF_INET6, host),
                scope,
            )
        else:
            raw = struct.pack(
                "=H2s4s8x", socket.AF_INET, port.to_bytes(2, "big"), socket.inet_pton(socket.AF_INET, host)
            )
        name = (raw, _pointer_of(raw), len(raw))
        self._names[address] = name
        return name


def open_batch_sender(sock: socket.socket, capacity: int = 256) -> BatchSender | None:
    """A :class:`BatchSender` for ``sock``, or None where sendmmsg is not available."""
    if not sys.platform.startswith("linux") or sock.type != socket.SOCK_DGRAM or not _layout_ok():
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        sendmmsg = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    sendmmsg.restype = ctypes.c_int
    return BatchSender(sock, sendmmsg, capacity)
