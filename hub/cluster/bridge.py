"""The crossing between the hub's trio loop and nats-py's asyncio loop, in batches.

nats-py runs on an asyncio loop in its own thread.  Going out, the hub hands the proposals of
one loop turn over at once (``call_soon_threadsafe``).  Coming back, what the NATS side brings
in one turn of its loop (every message of one read from the socket: nats-py hands them all to
the consumer before the loop turns) is gathered there and handed over once, at the end of that
turn: one lock, one ``TrioToken.run_sync_soon``, which only wakes the hub loop; the loop takes
everything waiting on its next turn and fans it out in one send.  Nothing waits for more to come:
a lone line crosses at once.  No trio object is ever touched from the asyncio thread, and no
asyncio object from trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable

import trio

from roomcast.hub.cluster.messages import Input, Output
from roomcast.hub.cluster.nats import NatsSide
from roomcast.hub.cluster.options import ClusterError, ClusterOptions

log = logging.getLogger("roomcast.hub.cluster")

START_TIMEOUT = 30.0


class NatsBridge:
    """Runs a :class:`NatsSide` in a thread for the hub's lifetime."""

    def __init__(self, options: ClusterOptions, wake: Callable[[], None]) -> None:
        self.side = NatsSide(options, self._emit)
        self._wake = wake
        self._token = trio.lowlevel.current_trio_token()
        self._inbox: deque[Input] = deque()
        #: (asyncio thread) What this turn of the NATS loop brought, handed over at its end.
        self._gathered: list[Input] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="nats", daemon=True)

    async def start(self) -> None:
        """Connect and set up the streams; raise :class:`ClusterError` if that fails."""
        self._thread.start()
        started = await trio.to_thread.run_sync(self._started.wait, START_TIMEOUT, abandon_on_cancel=True)
        if not started:
            raise ClusterError(f"NATS set-up did not finish within {START_TIMEOUT:.0f} s")
        if self._error is not None:
            raise ClusterError(str(self._error))

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.side.start()
        except Exception as exc:
            self._error = exc
            self._started.set()
            await self.side.close()
            return
        self._started.set()
        await self._stop.wait()
        await self.side.close()

    # --- asyncio thread -> trio --------------------------------------------------------------

    def _emit(self, item: Input) -> None:
        if not self._gathered:
            assert self._loop is not None
            self._loop.call_soon(self._hand_over)
        self._gathered.append(item)

    def _hand_over(self) -> None:
        """Everything gathered in this turn of the NATS loop, to trio in one go."""
        gathered, self._gathered = self._gathered, []
        with self._lock:
            self._inbox.extend(gathered)
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._wake)

    def take(self) -> list[Input]:
        """(trio thread) Everything the NATS side brought since the last call."""
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._scheduled = False
        return items

    # --- trio -> asyncio thread --------------------------------------------------------------

    def submit(self, outputs: list[Output]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.side.submit, outputs)

    def call(self, function: Callable[[], object]) -> None:
        """Run ``function`` on the NATS thread (fire and forget)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(function)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
