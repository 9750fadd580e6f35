"""One broken route's state for the pause policy (pause.py, which owns every decision and
locks around every call here): why and since when it broke, the messages it holds, and when
its next probe is due.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ecswatch.daemon.pipeline.queue import Message

FIRST_PROBE_SECONDS = 0.5
MAX_PROBE_SECONDS = 20.0


def probe_delay(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Capped exponential backoff with equal jitter: 0.5 s, 1 s, 2 s ... up to 20 s."""
    ceiling = min(MAX_PROBE_SECONDS, FIRST_PROBE_SECONDS * 2.0 ** min(failures, 16))
    return ceiling / 2 + rng() * ceiling / 2


@dataclass
class Broken:
    """One broken route: why, since when, its held messages and its probe."""

    route: str
    reason: str
    since: float
    changed_at: int  # the epoch it broke at: evidence is a success taken at or after it
    tripper: str  # receipt handle of the message whose failure broke it
    next_probe: float
    held: collections.deque[Message] = field(default_factory=collections.deque)
    probing: str = ""  # receipt handle of the probe in hand, if any
    failures: int = 0  # failed probes
    others_failed: bool = False  # a message other than the tripper failed here meanwhile

    def count(self) -> int:
        """Its messages: held, and the probe in hand."""
        return len(self.held) + bool(self.probing)

    def probe_in(self, now: float) -> float | None:
        """Seconds until its next probe is due (0 when due); None without one to take."""
        if not self.held or self.probing:
            return None
        return max(0.0, self.next_probe - now)

    def take_probe(self) -> Message:
        message = self.held.popleft()
        self.probing = message.receipt_handle
        return message

    def probe_failed(self, now: float, rng: Callable[[], float]) -> None:
        self.failures += 1
        self.next_probe = now + probe_delay(self.failures, rng)
