"""What the metrics plugin counts as it happens (requests, hook calls), kept light: the
daemon imports ``prometheus_client`` (4.6 MB of resident memory) only when it is first
scraped, and these counts become its metric families then (``work.py``)."""

from __future__ import annotations

import bisect
import threading

REQUEST_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""prometheus_client's default buckets, in seconds."""
HOOK_BUCKETS = (.0005, .001, .005, .01, .05, .1, .5, 1.0, 5.0, 30.0, 120.0)


class Histograms:
    """Observations by label values, in fixed buckets (hooks run in worker threads)."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.series: dict[tuple, list] = {}
        self.lock = threading.Lock()

    def observe(self, labels: tuple, value: float) -> None:
        with self.lock:
            counts = self.series.get(labels)
            if counts is None:
                counts = self.series[labels] = [[0] * (len(self.buckets) + 1), 0.0]
            counts[0][bisect.bisect_left(self.buckets, value)] += 1
            counts[1] += value

    def cumulative(self) -> list[tuple[tuple, list[tuple[str, int]], float]]:
        """Each series: its labels, its ``(le, count)`` buckets up to ``+Inf``, its sum."""
        with self.lock:
            kept = [(labels, list(counts), total) for labels, (counts, total)
                    in self.series.items()]
        out = []
        for labels, counts, total in kept:
            running, buckets = 0, []
            for bound, count in zip([*map(str, self.buckets), "+Inf"], counts):
                running += count
                buckets.append((bound, running))
            out.append((labels, buckets, total))
        return out


REQUESTS: dict[tuple, int] = {}
"""Requests answered, by (node, method, route, status)."""
REQUEST_TIME = Histograms(REQUEST_BUCKETS)
HOOK_TIME = Histograms(HOOK_BUCKETS)
_requests_lock = threading.Lock()


def on_request(sender, method: str, route: str, status: int, seconds: float, **_) -> None:
    with _requests_lock:
        key = (sender, method, route, str(status))
        REQUESTS[key] = REQUESTS.get(key, 0) + 1
    REQUEST_TIME.observe((sender, method, route), seconds)


async def watcher(node) -> None:
    """Count the API's requests and time the hooks while the daemon runs."""
    import asyncio

    import blinker

    from virshle_core.hooks import time_hook_calls

    signal = blinker.signal("request-handled")
    signal.connect(on_request)

    def on_hook(hook: str, plugin: str, seconds: float) -> None:
        HOOK_TIME.observe((node.name, hook, plugin), seconds)

    try:
        while True:  # again after a reload, which loads the plugins anew
            time_hook_calls(on_hook)
            await asyncio.sleep(5)
    finally:
        signal.disconnect(on_request)
