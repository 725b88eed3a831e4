"""Send a planned stream through a `Sender`: paced, concurrent, each flow in its planned order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from receiver.exceptions import ConfigError
from receiver.scenarios.plan import PlannedRequest
from receiver.scenarios.summary import Summary
from receiver.sender.base import Delivery
from receiver.sender.engine import Sender

__all__ = ["OnDelivery", "run_stream"]

OnDelivery = Callable[[PlannedRequest, Delivery], None]
"""Called as each planned request is done (acknowledged, discarded or refused)."""


async def run_stream(
    stream: Sequence[PlannedRequest],
    sender: Sender,
    *,
    rate: float | None = None,
    concurrency: int = 8,
    on_delivery: OnDelivery | None = None,
) -> Summary:
    """Send `stream` and count what happened.

    At most `concurrency` requests are in flight; with `rate`, request i is not sent before
    i / rate seconds. A flow's requests go one at a time, so the receiver sees each flow in
    exactly the planned order (swaps included). Forged requests are sent once: a 401 is the
    right answer, not a failure to retry.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be 1 or more, got {concurrency}")
    if rate is not None and rate <= 0:
        raise ConfigError(f"rate must be more than 0 events/s, got {rate}")
    forged = sender.provider.forged()
    slots = asyncio.Semaphore(concurrency)
    results: list[tuple[PlannedRequest, Delivery]] = []
    previous: dict[int, asyncio.Event] = {}
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def deliver(
        planned: PlannedRequest, after: asyncio.Event | None, done: asyncio.Event
    ) -> None:
        try:
            if after is not None:
                await after.wait()
            if planned.wrong_token:
                request = forged.build(sender.url, planned.payload, event_type=planned.event_type)
                delivery = await sender.deliver(request, retries=0)
            else:
                delivery = await sender.send(planned.payload, event_type=planned.event_type)
            results.append((planned, delivery))
            if on_delivery is not None:
                on_delivery(planned, delivery)
        finally:
            done.set()
            slots.release()

    async with asyncio.TaskGroup() as group:
        for planned in stream:
            if rate is not None:
                await asyncio.sleep(max(started + planned.index / rate - loop.time(), 0))
            # Taken here, not in the task, so no more than `concurrency` tasks ever exist; a
            # task waiting for its flow's previous request holds a slot, which is safe because
            # that request was started earlier and holds a slot of its own or is done.
            await slots.acquire()
            done = asyncio.Event()
            group.create_task(deliver(planned, previous.get(planned.flow), done))
            previous[planned.flow] = done
    return Summary.of(results, planned=len(stream), elapsed=loop.time() - started)
