"""Requests-per-minute limits, with the `limits` library.

One limiter per model (label), shared by every call of the process that goes to it. With a
Redis queue (`WORKBENCH_QUEUE_URL=redis://...`) the counters live in Redis, so every worker
process and machine shares the model's full rate. Without one, counters are in memory; a run
split into N shards across processes then gives each shard 1/N of the rate, which keeps the
run-wide rate under the limit however the shards are spread.

The window is as short as lets about ten calls through (1 s at 600 rpm, 10 s at 60 rpm, never
longer than a minute), so a 600 rpm model gets at most 10 calls in any second rather than 600
at once and then a minute of silence.
"""

from __future__ import annotations

import asyncio
import math
import os
import time


def _storage_url() -> str:
    url = os.environ.get("WORKBENCH_QUEUE_URL", "")
    return "async+" + url if url.startswith(("redis://", "rediss://")) else "async+memory://"


class RateLimits:
    def __init__(self, share: float = 1.0, scope: str = ""):
        from limits.aio.strategies import MovingWindowRateLimiter
        from limits.storage import storage_from_string

        url = _storage_url()
        self.shared = not url.startswith("async+memory")
        # Shared storage counts every process's calls: each gets the full rate. Memory storage
        # counts this process only: it gets its share, under a key of its own.
        self.share = 1.0 if self.shared else share
        self.scope = "" if self.shared else scope
        # redis-py's asyncio client (a dependency already), not limits' default coredis
        options = {} if url.startswith("async+memory") else {"implementation": "redispy"}
        self.limiter = MovingWindowRateLimiter(storage_from_string(url, **options))
        self._items: dict[float, object] = {}

    def _item(self, rpm: float):
        from limits import RateLimitItemPerSecond

        rpm = rpm * self.share
        if rpm not in self._items:
            window = max(1, min(60, round(600 / rpm)))
            self._items[rpm] = RateLimitItemPerSecond(max(1, math.floor(rpm * window / 60)), window)
        return self._items[rpm]

    async def wait(self, key: str, rpm: float | None) -> None:
        """Return once a call to `key` may start without passing `rpm`."""
        if not rpm:
            return
        item = self._item(rpm)
        key = f"workbench:rpm:{key}:{self.scope}"
        while not await self.limiter.hit(item, key):
            stats = await self.limiter.get_window_stats(item, key)
            await asyncio.sleep(min(10.0, max(0.005, stats.reset_time - time.time())))
