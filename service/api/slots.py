"""Routes that embed a text (search, topic search, recommend) run a few at a time, in order.

Each was a plain ``def`` route, so every request waiting for the CPU held a thread of the pool
(40 of them) and competed for the interpreter lock and the embedding runtime with the others:
at 16 connections the slowest answers waited four times the median. Here at most as many
compute at once as the process has cores; the rest wait on the event loop in arrival order
(``asyncio.Semaphore`` wakes its waiters first come, first served)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

ON_LOOP_ROWS = 20_000
"""A filtered scan of at most this many rows (about 2 ms in float16) is answered on the event
loop, where a hop to a worker thread would cost as much; a larger one goes to the thread pool
so that it does not hold up the requests behind it."""

P = ParamSpec("P")
T = TypeVar("T")


class ComputeSlots:
    """At most ``slots`` calls at once in the thread pool; the others queue in order."""

    def __init__(self, slots: int | None = None) -> None:
        self.slots = slots or max(1, os.cpu_count() or 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: asyncio.Semaphore | None = None

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._semaphore():
            return await run_in_threadpool(work, *args, **kwargs)

    def _semaphore(self) -> asyncio.Semaphore:
        """The semaphore of the running loop (a server has one; tests may start several)."""
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:
            self._loop, self._free = loop, asyncio.Semaphore(self.slots)
        return self._free


async def run_scan(rows: int, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work``, a filtered scan of ``rows`` rows: on the event loop up to :data:`ON_LOOP_ROWS`,
    else in the thread pool."""
    if rows > ON_LOOP_ROWS:
        return await run_in_threadpool(work, *args, **kwargs)
    return work(*args, **kwargs)
