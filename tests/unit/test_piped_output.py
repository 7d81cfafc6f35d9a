"""The piped client's output: written by its own task, so a full pipe blocks only that task; a
full buffer says so (the client then stops reading from the hub) until the reader catches up,
and no line is dropped or reordered."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from roomcast.client import render
from roomcast.client.output import PlainOutput
from roomcast.shared import limits

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
LINES = [f"[ops] <bob> line {n:03d} {'聊' * 30}" for n in range(300)]  # ~100 bytes each


@contextlib.contextmanager
def stdout_pipe(monkeypatch: pytest.MonkeyPatch, size: int = 4096) -> Iterator[int]:
    """sys.stdout on a pipe of ``size`` bytes (one page) nobody reads yet; yields the read end."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, F_SETPIPE_SZ, size)
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        yield read_end
    finally:
        stream.close()
        os.close(read_end)


def read_all(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += os.read(fd, 65536)
    return data


async def test_a_stdout_not_read_fills_the_buffer_then_every_line_comes_out_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "PIPED_OUTPUT_BUFFER", 2000)
    expected = "".join(line + "\n" for line in LINES).encode()
    with stdout_pipe(monkeypatch) as read_end:
        output = PlainOutput()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(output.run)
                for line in LINES:
                    output.show([("", line)])
                    await trio.lowlevel.checkpoint()  # the loop is never blocked by the pipe
                assert output.full, "more than the buffer waits for a reader"
                got = await trio.to_thread.run_sync(read_all, read_end, len(expected))
                output.close()  # the writers return once everything is written
        assert got == expected
        assert not output.full, "written: the client takes room lines again"


async def test_a_reader_that_went_away_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    with stdout_pipe(monkeypatch) as read_end:
        output = PlainOutput()
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(output.run)
                os.close(read_end)
                os.dup2(os.open(os.devnull, os.O_RDONLY), read_end)  # keep the fd number valid
                for line in LINES:
                    output.show([("", line)])
                output.close()
        assert output.out.broken
        assert not output.full


def test_outside_trio_lines_are_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with stdout_pipe(monkeypatch) as read_end:
        output = PlainOutput()
        output.show([("", "room line")])
        output.show(render.notice("a notice goes to stderr"))
        assert os.read(read_end, 100) == b"room line\n"


def count_handoffs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every write the output hands to a worker thread, from now on."""
    handoffs: list[object] = []
    real = trio.to_thread.run_sync

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        handoffs.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(trio.to_thread, "run_sync", counted)
    return handoffs


async def show_and_close(output: PlainOutput, lines: list[str]) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(output.run)
            for line in lines:
                output.show([("", line)])
                await trio.lowlevel.checkpoint()
            output.close()


async def test_a_pipe_with_room_is_written_without_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread hand-off per write costs more CPU than the write: what cannot block (a pipe
    that polls writable takes PIPE_BUF bytes) is written by the task itself."""
    with stdout_pipe(monkeypatch, size=65536) as read_end:
        handoffs = count_handoffs(monkeypatch)
        await show_and_close(PlainOutput(), LINES[:10])
        expected = "".join(line + "\n" for line in LINES[:10]).encode()
        assert read_all(read_end, len(expected)) == expected
    assert handoffs == []


async def test_a_terminal_is_written_from_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal stopped with Ctrl-S blocks a write however much room it polls: never
    written from the task."""
    master, slave = pty.openpty()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115, ASYNC230 (closed below; a pty opens at once)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        handoffs = count_handoffs(monkeypatch)
        await show_and_close(PlainOutput(), ["a line"])
        assert b"a line" in os.read(master, 100)
    finally:
        stream.close()
        os.close(master)
    assert handoffs
