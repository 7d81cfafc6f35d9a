"""Many datagrams in one system call: ``sendmmsg(2)`` through ctypes, for the hub's send path.

Why: a room message goes to every member as the same bytes, and profiles of the hub under
fan-out load show about half its time in the ``sendto`` line of the shell: one interpreter
call, one address conversion and one system call per datagram.  ``sendmmsg`` hands the
kernel up to ``capacity`` datagrams at once; the datagrams of one fan-out share one iovec, and
each member's ``sockaddr`` is converted once and cached.  A big room message goes out in its
own call over its room's prebuilt vector; small ones ride in one batch with the replies around
them, their entries copied out of their vectors one slice each (no per-datagram Python work).

Portable: :func:`open_batch_sender` returns None where this cannot work (not Linux, no
``sendmmsg`` in libc, a ``struct msghdr`` layout other than the one checked here), and the
shell then sends with ``sendto`` per datagram, as before.
"""

from __future__ import annotations

import array
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
_MSG_SIZE = ctypes.sizeof(_MMsgHdr)
_MSG_WORDS = _MSG_SIZE // 8
#: Where ``msg_iov`` is in an ``mmsghdr``, in 8-byte words (checked in _layout_ok).
_IOV_WORD = _MsgHdr.msg_iov.offset // 8
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
        and _MSG_SIZE % 8 == 0
        and _MsgHdr.msg_iov.offset % 8 == 0
        and struct.calcsize("@P") == 8
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
    """Sends datagrams and room messages on one non-blocking UDP socket, ``capacity``
    datagrams per ``sendmmsg`` call: :meth:`load` then :meth:`send_loaded`, or
    :meth:`send_fanout` for a room message to ``small`` members or more."""

    def __init__(self, sock: socket.socket, sendmmsg: Any, capacity: int = 256, small: int = 64) -> None:
        self.fd = sock.fileno()
        self.family = sock.family
        self.capacity = capacity
        if not 0 < small <= capacity:
            raise ValueError(f"small ({small}) must be between 1 and the capacity ({capacity})")
        self.small = small
        self._sendmmsg = sendmmsg
        self._msgs = (_MMsgHdr * capacity)()
        self._iovs = (_IoVec * capacity)()
        self._msg_view = memoryview(self._msgs).cast("B")
        self._words = self._msg_view.cast("Q")
        self._loaded = 0
        #: Per iovec slot, ``small`` copies of its pointer (see _rep).
        self._reps: list[memoryview] = []
        self._iov_view = memoryview(self._iovs).cast("B")
        self._msg_base = ctypes.addressof(self._msgs)
        self._iov_base = ctypes.addressof(self._iovs)
        for msg in self._msgs:
            msg.msg_hdr.msg_iovlen = 1
        self._address_of = _data_address()
        #: Where a bytes object's data starts relative to its id() (CPython), or None (then
        #: ``_address_of`` asks ctypes): no call per datagram in :meth:`load`.
        self._by_id: int | None = _BYTES_OFFSET if _id_is_address() else None
        #: address -> (sockaddr bytes, kept alive here, its pointer, its length)
        self._names: dict[Address, tuple[bytes, int, int]] = {}

    def load(self, items: Sequence[Any], start: int = 0) -> tuple[int, int]:
        """Lay ``items[start:]`` out in the batch array, in order, as many as fit: plain
        ``(bytes, address)`` datagrams and room messages (``hub.fanout.Fanout``) to fewer than
        ``small`` members, whose entries are copied from their vector's prebuilt array in one
        slice, each message with its own iovec.  Stops before a bigger room message (the
        caller sends it with :meth:`send_fanout`).  Returns (items taken, datagrams laid out);
        :meth:`send_loaded` sends them.  The caller keeps ``items`` alive until then."""
        if len(self._names) > _NAME_CACHE:
            self._names.clear()
        names, name_of, address_of, by_id = self._names, self._name_or_none, self._address_of, self._by_id
        msg_bytes, iov_view, pack_iov, pack_head = (
            self._msg_view,
            self._iov_view,
            _IOV.pack_into,
            _HEAD.pack_into,
        )
        capacity, small, iov_base, iov_size, msg_size = (
            self.capacity,
            self.small,
            self._iov_base,
            _IOV.size,
            _MSG_SIZE,
        )
        pos = slot = 0
        for index in range(start, len(items)):
            item = items[index]
            if type(item) is tuple:
                data, address = item
            else:
                addresses, skip = item.vector.addresses, item.skip
                count = len(addresses) - (skip >= 0)
                if count != 1:  # none, or several: one slice of the vector's own entries
                    if count >= small or pos + count > capacity:
                        break
                    if count:
                        self._copy(item, pos, slot, count)
                        pos, slot = pos + count, slot + 1
                    continue
                data, address = item.data, addresses[0] if skip != 0 else addresses[1]  # the one
            if pos == capacity:
                break
            name = names.get(address) or name_of(address)
            iov_at = slot * iov_size
            pack_iov(iov_view, iov_at, address_of(data) if by_id is None else id(data) + by_id, len(data))
            pack_head(msg_bytes, pos * msg_size, name[1], name[2], iov_base + iov_at)
            pos, slot = pos + 1, slot + 1
        else:
            index = len(items)
        self._loaded = pos
        return index - start, pos

    def _copy(self, item: Any, pos: int, slot: int, count: int) -> None:
        """Lay a room message to ``count`` members out from ``pos`` on: its vector's entries,
        copied in one slice, then pointed at iovec ``slot`` (one strided assignment)."""
        vector = item.vector
        native = vector.native
        if native is None or native[0] is not self:
            native = vector.native = self._vector(vector.addresses)
        first = item.skip + 1 if item.skip >= 0 else 0
        self._msg_view[pos * _MSG_SIZE : (pos + count) * _MSG_SIZE] = native[5][
            first * _MSG_SIZE : (first + count) * _MSG_SIZE
        ]
        data = item.data
        _IOV.pack_into(self._iov_view, slot * _IOV.size, self._address_of(data), len(data))
        rep = self._reps[slot] if slot < len(self._reps) else self._rep(slot)
        words = self._words
        words[pos * _MSG_WORDS + _IOV_WORD : (pos + count) * _MSG_WORDS : _MSG_WORDS] = rep[:count]

    def send_loaded(self, start: int = 0) -> int:
        """Send what :meth:`load` laid out, from its ``start``-th datagram on, in one system
        call; how many went.  Raises BlockingIOError when the socket buffer is full before the
        first one, OSError (with the kernel's errno) when the first one cannot be sent at all
        (e.g. an address that is not numeric)."""
        sent: int = self._sendmmsg(self.fd, self._msg_base + start * _MSG_SIZE, self._loaded - start, 0)
        if sent < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))  # EAGAIN makes it a BlockingIOError
        return sent

    def _rep(self, slot: int) -> memoryview:
        """``small`` copies of the pointer to iovec ``slot``: written into a room message's
        entries with one strided slice assignment."""
        while len(self._reps) <= slot:
            pointer = self._iov_base + len(self._reps) * _IOV.size
            self._reps.append(memoryview(array.array("Q", [pointer]) * self.small))
        return self._reps[slot]

    def _name_or_none(self, address: Address) -> tuple[bytes, int, int]:
        """The converted address, or no address at all (the kernel refuses that datagram)."""
        try:
            return self._name(address)
        except (OSError, ValueError, TypeError, IndexError):
            return (b"", 0, 0)

    def send_fanout(self, data: bytes, vector: Any, skip: int, start: int = 0) -> int:
        """One room message to a live vector (``hub.fanout.LiveVector``) but the entry at
        ``skip``, from the ``start``-th target on: one ``sendmmsg`` over the vector's own
        array, whose entries all point at one iovec.  The array holds the members twice, so
        the targets after ``skip`` and then before it are one slice.  Returns how many went;
        raises as :meth:`send` does."""
        native = vector.native
        if native is None or native[0] is not self:
            native = vector.native = self._vector(vector.addresses)
        _owner, msgs, iov, _names, size, _view = native
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

    def _vector(self, addresses: Sequence[Address]) -> tuple[Any, Any, _IoVec, list[bytes], int, memoryview]:
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
        return (self, msgs, iov, names, size, memoryview(msgs).cast("B"))

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


def open_batch_sender(sock: socket.socket, capacity: int = 256, small: int = 64) -> BatchSender | None:
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
    return BatchSender(sock, sendmmsg, capacity, small)
