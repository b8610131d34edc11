"""Routes that embed a text compute a few at a time, in arrival order."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.api.slots import ComputeSlots


@pytest.mark.parametrize("count", [1, 2])
def test_at_most_slots_compute_at_once_and_waiters_start_in_arrival_order(count: int) -> None:
    slots = ComputeSlots(count)
    lock = threading.Lock()
    running, most, started = 0, 0, []

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            started.append(i)
        time.sleep(0.03)
        with lock:
            running -= 1
        return i * i

    async def main() -> list[int]:
        tasks = []
        for i in range(8):
            tasks.append(asyncio.create_task(slots.run(work, i)))
            await asyncio.sleep(0)  # each asks in turn
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [i * i for i in range(8)]
    assert most == count
    if count == 1:  # one at a time: the order they ran in is the order they got the slot
        assert started == list(range(8))  # first come, first served


def test_one_slot_object_serves_several_event_loops() -> None:
    slots = ComputeSlots(1)

    async def twice() -> list[int]:
        return list(await asyncio.gather(slots.run(abs, -1), slots.run(abs, -2)))

    assert asyncio.run(twice()) == [1, 2]
    assert asyncio.run(twice()) == [1, 2]  # a new loop: no "bound to a different event loop"
