"""The prefetch buffer: messages received and not yet started by a worker, and the room that
fetchers may fill, reserved a whole batch at a time.

Two Conditions on one lock, as `queue.Queue` has (not_empty, not_full): workers wait for work,
fetchers for room, and each notify wakes only a thread of the kind that can act on it; with
one Condition a message's arrival could wake a fetcher and leave a worker asleep. Both are
checked and changed under the one lock, so no wake-up falls between a check and a wait.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

from ecswatch.daemon.pipeline.queue import Message


class Buffer:
    """At most `capacity` unstarted messages (more only when held messages come back)."""

    def __init__(self, capacity: int, batch: int) -> None:
        self._capacity, self._batch = capacity, batch
        self._unstarted: collections.deque[Message] = collections.deque()
        self._reserved = 0  # room promised to receives in flight
        lock = threading.Lock()
        self._has_work = threading.Condition(lock)
        self._has_room = threading.Condition(lock)

    def reserve(self, timeout: float) -> int:
        """Room for one receive: a whole batch once there is room for one (waiting up to
        `timeout` for it), else 0. The caller hands it back through `received`."""
        with self._has_room:
            if self._room() < self._batch:
                self._has_room.wait(timeout)
            if self._room() < self._batch:
                return 0
            self._reserved += self._batch
            return self._batch

    def received(self, reserved: int, messages: Sequence[Message]) -> None:
        """A receive returned: its room is no longer reserved, its messages wait for workers."""
        with self._has_work:
            self._reserved -= reserved
            self._unstarted.extend(messages)
            self._has_work.notify(len(messages))

    def take(self, timeout: float) -> Message | None:
        """The next unstarted message, waiting up to `timeout` for one."""
        with self._has_work:
            if not self._unstarted:
                self._has_work.wait(timeout)
                if not self._unstarted:
                    return None
            message = self._unstarted.popleft()
            # A fetcher waits for room for a whole batch: waking one for less only sends it
            # round its loop (a GIL hand-off per message, ~10% of the daemon's CPU).
            if self._room() >= self._batch:
                self._has_room.notify()
            return message

    def put_back(self, messages: Sequence[Message]) -> None:
        """Messages that go to the workers first (their route recovered, or a retry)."""
        with self._has_work:
            self._unstarted.extendleft(reversed(messages))
            self._has_work.notify(len(messages))

    def drain(self) -> list[Message]:
        """Every unstarted message, for the shutdown to give back."""
        with self._has_work:
            taken = list(self._unstarted)
            self._unstarted.clear()
            return taken

    def wake_all(self) -> None:
        """Every waiting thread looks at the stop flag now."""
        with self._has_work:
            self._has_work.notify_all()
            self._has_room.notify_all()

    def _room(self) -> int:
        """Free places, not counting those promised to receives in flight."""
        return self._capacity - len(self._unstarted) - self._reserved
