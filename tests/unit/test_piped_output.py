"""The piped client's output: written by its own task, so a full pipe blocks only that task; a
full buffer says so (the client then stops reading from the hub) until the reader catches up,
and no line is dropped or reordered."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator

import pytest
import trio

from roomcast.client import render
from roomcast.client.output import PlainOutput
from roomcast.shared import limits

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
LINES = [f"[ops] <bob> line {n:03d} {'聊' * 30}" for n in range(300)]  # ~100 bytes each


@contextlib.contextmanager
def stdout_pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """sys.stdout on a one-page pipe nobody reads yet; yields the read end."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
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
