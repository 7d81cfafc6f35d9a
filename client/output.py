"""Piped output that never holds back the network: stdout and stderr written by their own tasks.

A piped client's stdout may be read slowly (``roomcast ... | slow-consumer``) or not for a
while (a pager, a stopped process).  Were it written from the trio loop, one full pipe would
block the loop, and with it receiving and acknowledging: the hub would count the client too
slow although it has every line.  So what is shown is kept in a bounded buffer and written by a
task per stream, while the network side goes on: what cannot block (a stream that polls
writable takes ``PIPE_BUF`` bytes without blocking) is written at once, the rest in a worker
thread, whose hand-off costs more CPU than the write itself.

When the buffer is full (``limits.PIPED_OUTPUT_BUFFER`` characters), the client takes no more
room lines until the writer catches up: it leaves them unacknowledged (``HubLink.holding``),
so the hub keeps them and sends them again later, and nothing is dropped; answers, pings and
acks go on, so neither side takes the other for gone.  A reader stuck for good thus ends as
any consumer that is too slow (the hub drops it and says so) rather than with lines silently
missing.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from typing import TextIO

import trio

from roomcast.client import render
from roomcast.shared import limits


class StreamWriter:
    """One output stream: text queued by :meth:`put`, written in order by :meth:`run`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        #: Characters queued and not yet written.
        self.buffered = 0
        self.broken = False
        self._pending: list[str] = []
        self._wake = trio.Event()
        self._closed = False
        #: Polls the stream for room, if it is a pipe or a file (a terminal can be stopped
        #: with Ctrl-S, and then blocks a write however much room it polls); None: never.
        self._poll: select.poll | None = None
        self._looked = False

    def put(self, text: str) -> None:
        if self.broken:
            return  # the reader went away: nothing to do
        self._pending.append(text)
        self.buffered += len(text)
        self._wake.set()

    def close(self) -> None:
        """No more text: :meth:`run` returns once what is queued is written."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        while self._pending or not self._closed:
            if not self._pending:
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            text = "".join(self._pending)
            self._pending.clear()
            data = self._write_ready(text.encode(self.stream.encoding or "utf-8", "replace"))
            if data:
                # A write blocked on a full pipe blocks only its thread; cancelled (Ctrl-C),
                # the thread is left to finish or die with the process.
                await trio.to_thread.run_sync(self._write, data, abandon_on_cancel=True)
            self.buffered -= len(text)

    def _write_ready(self, data: bytes) -> bytes:
        """Write what cannot block, ``PIPE_BUF`` bytes at a time while the stream polls
        writable; return the rest (for a worker thread)."""
        while data and not self.broken and self._writable():
            self._write(data[: select.PIPE_BUF])
            data = data[select.PIPE_BUF :]
        return b"" if self.broken else data

    def _writable(self) -> bool:
        if not self._looked:
            self._looked, self._poll = True, self._poller()
        # Writable, or an error that the write reports at once.
        return self._poll is not None and bool(self._poll.poll(0))

    def _poller(self) -> select.poll | None:
        try:
            fd = self.stream.fileno()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError):
            return None  # no descriptor: the worker thread finds out
        if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
            return None
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return poller

    def write_now(self) -> None:
        """Write what is queued from this thread (outside trio: nothing else writes)."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.buffered = 0
            self._write(text.encode(self.stream.encoding or "utf-8", "replace"))

    def _write(self, data: bytes) -> None:
        """All of ``data`` to the stream's file descriptor (no Python-level lock is held while
        a full pipe blocks, so an abandoned write cannot hang the interpreter's exit)."""
        try:
            fd = self.stream.fileno()
            while data and not self.broken:
                data = data[os.write(fd, data) :]
        except (OSError, ValueError):  # the reader went away, or the stream has no descriptor
            self.broken = True


class PlainOutput:
    """Room lines to stdout, notices and errors to stderr, as plain text, each through its own
    :class:`StreamWriter`; lines shown in one trio step go out in one write."""

    def __init__(self) -> None:
        self.out = StreamWriter(sys.stdout)
        self.err = StreamWriter(sys.stderr)
        self._running = False

    @property
    def full(self) -> bool:
        """Too much waits to be written: take in no more lines for now."""
        return self.out.buffered + self.err.buffered >= limits.PIPED_OUTPUT_BUFFER

    def show(self, fragments: render.Fragments) -> None:
        is_notice = any(style in ("class:notice", "class:error") for style, _ in fragments)
        writer = self.err if is_notice else self.out
        writer.put(render.plain(fragments) + "\n")
        if not self._running:
            writer.write_now()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write until :meth:`close`, then what is left."""
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.out.run)
                nursery.start_soon(self.err.run)
                task_status.started()
        finally:
            self._running = False

    def close(self) -> None:
        self.out.close()
        self.err.close()
