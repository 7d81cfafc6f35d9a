"""Many datagrams in one system call: ``recvmmsg(2)`` through ctypes, for the hub's receive path.

Why: most datagrams the hub reads under load are small acks, and ``recvfrom`` costs one
system call and one interpreter call each.  ``recvmmsg`` fills up to ``capacity`` preallocated
buffers at once; lengths and address lengths are read back through one integer view of the
``mmsghdr`` array, and each sender's ``sockaddr`` is turned into the address tuple that
``recvfrom`` would give once, then cached.

Portable: :func:`open_batch_receiver` returns None where this cannot work (not Linux, no
``recvmmsg`` in libc, another ``struct mmsghdr`` layout) and the shell keeps ``recvfrom``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from roomcast.hub.batch import _IoVec, _layout_ok, _MMsgHdr, _MsgHdr

Address = tuple[Any, ...]

#: Bytes kept of one datagram: anything longer is over every limit of the hub and refused as
#: such (its real length is reported with MSG_TRUNC, so it is never taken for a shorter one).
SLOT = 4096
_NAME = 128  # sizeof(struct sockaddr_storage)
_SOCKADDR_IN = 16  # sizeof(struct sockaddr_in)
_HEADS_PER_NAME = _NAME // 8
_MSG_DONTWAIT, _MSG_TRUNC = 0x40, 0x20
_CACHE = 65_536


class BatchReceiver:
    """Reads up to ``capacity`` datagrams per ``recvmmsg`` call from one non-blocking socket."""

    def __init__(self, sock: socket.socket, recvmmsg: Any, capacity: int = 64) -> None:
        self.fd = sock.fileno()
        self.capacity = capacity
        self._recvmmsg = recvmmsg
        self._msgs = (_MMsgHdr * capacity)()
        self._iovs = (_IoVec * capacity)()
        #: Sliced, it gives bytes (typeshed says a list).
        self._bufs: Any = ctypes.create_string_buffer(SLOT * capacity)
        self._names = ctypes.create_string_buffer(_NAME * capacity)
        base, names = ctypes.addressof(self._bufs), ctypes.addressof(self._names)
        for i in range(capacity):
            self._iovs[i].iov_base, self._iovs[i].iov_len = base + i * SLOT, SLOT
            hdr = self._msgs[i].msg_hdr
            hdr.msg_iov, hdr.msg_iovlen = ctypes.addressof(self._iovs[i]), 1
            hdr.msg_name, hdr.msg_namelen = names + i * _NAME, _NAME
        self._msgs_at = ctypes.addressof(self._msgs)
        self._ints = memoryview(self._msgs).cast("B").cast("I")
        stride = ctypes.sizeof(_MMsgHdr) // 4
        namelen_at, len_at = _MsgHdr.msg_namelen.offset // 4, _MMsgHdr.msg_len.offset // 4
        #: Per datagram of a batch, where to look: its address length and its length (in
        #: ``_ints``), the first 8 bytes of its address (in ``_heads``), its address and its
        #: bytes (in ``_names``, ``_bufs``), as (namelen, head, name, length, start, end of slot).
        self._slots = [
            (
                i * stride + namelen_at,
                i * _HEADS_PER_NAME,
                i * _NAME,
                i * stride + len_at,
                i * SLOT,
                (i + 1) * SLOT,
            )
            for i in range(capacity)
        ]
        self._name_view = memoryview(self._names).cast("B")
        self._heads = memoryview(self._names).cast("B").cast("Q")
        self._addresses: dict[int | bytes, Address] = {}

    def receive(self) -> list[tuple[bytes, Address]]:
        """The datagrams waiting (at most ``capacity``); empty when none.  Raises OSError for
        an error the socket reports (e.g. an ICMP error), as ``recvfrom`` would."""
        out: list[tuple[bytes, Address]] = []
        self.deliver(lambda data, address, _now: out.append((data, address)), 0.0)
        return out

    def deliver(self, handle: Callable[[bytes, Address, float], object], now: float) -> int:
        """Read the datagrams waiting (at most ``capacity``) and hand each to ``handle(data,
        address, now)`` as it is taken out, with no list in between; how many (0: none).
        Raises as :meth:`receive` does."""
        got: int = self._recvmmsg(self.fd, self._msgs_at, self.capacity, _MSG_DONTWAIT | _MSG_TRUNC, None)
        if got < 0:
            error = ctypes.get_errno()
            if error in (11, 4):  # EAGAIN / EINTR: nothing (more) to read now
                return 0
            raise OSError(error, os.strerror(error))
        ints, bufs, names, cache, heads = (
            self._ints,
            self._bufs,
            self._name_view,
            self._addresses,
            self._heads,
        )
        for namelen_at, head, name, len_at, start, end in self._slots[:got]:
            namelen = ints[namelen_at]
            if namelen == _SOCKADDR_IN:
                # IPv4: family, port and address are the name's first 8 bytes, one integer; the
                # kernel writes the same length back, so the slot needs no reset.
                key: int | bytes = heads[head]
            else:
                ints[namelen_at] = _NAME
                key = bytes(names[name : name + namelen])
            address = cache.get(key)
            if address is None:
                address = self._address(key, bytes(names[name : name + namelen]))
            length = start + ints[len_at]  # past the slot: truncated (MSG_TRUNC), refused as such
            handle(bufs[start : length if length < end else end], address, now)
        return got

    def _address(self, key: int | bytes, raw: bytes) -> Address:
        """The tuple ``recvfrom`` gives for a ``sockaddr``, cached under ``key``."""
        family = struct.unpack_from("=H", raw)[0]
        port = int.from_bytes(raw[2:4], "big")
        address: Address
        if family == socket.AF_INET6:
            flowinfo = int.from_bytes(raw[4:8], "big")
            host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
            scope = struct.unpack_from("=I", raw, 24)[0]
            if scope:
                host = f"{host}%{socket.if_indextoname(scope)}"
            address = (host, port, flowinfo, scope)
        else:
            address = (socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
        if len(self._addresses) > _CACHE:
            self._addresses.clear()
        self._addresses[key] = address
        return address


def open_batch_receiver(sock: socket.socket, capacity: int = 64) -> BatchReceiver | None:
    """A :class:`BatchReceiver` for ``sock``, or None where recvmmsg is not available."""
    if not sys.platform.startswith("linux") or sock.type != socket.SOCK_DGRAM or not _layout_ok():
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        recvmmsg = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    recvmmsg.restype = ctypes.c_int
    return BatchReceiver(sock, recvmmsg, capacity)
