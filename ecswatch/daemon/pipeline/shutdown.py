"""The pipeline's ordered stop, by one deadline that bounds every step and every AWS call made
after the signal (a brownout of SQS at SIGTERM must not overrun ECS's stopTimeout).

1. stop receiving and starting messages; workers finish the one in hand;
2. at 80% of the time left, abort retries so a stuck write gives its message back;
3. give back what was prefetched but never started, and what was held for a broken route,
   while the deletes are flushed;
4. stop the heartbeat last, so messages still being deleted stay invisible meanwhile.
The long poll: fetchers get one poll interval to leave, no more. One blocked in a long poll (up
to wait_time_seconds, 20 s by default, which would not fit ECS's 30 s stopTimeout after a busy
drain) is left to end with the process; what that cut-short poll would have returned stays
invisible until its visibility timeout, then is redelivered (docs/guarantees.md). SQS keeps
such a poll open for its whole wait time after we exit, so what we give back meanwhile becomes
visible only once the last of our polls has ended there: given back sooner, it falls into the
dead poll, one receive more each time (towards maxReceiveCount) and hidden for a visibility
timeout. A poll that returns while we still drain gives its messages back at once (fetcher.py).
Steps that wait on AWS (the give-back, the deletes, the heartbeat) run on threads of their own
that are joined until the deadline, not beyond: a call still hanging then is abandoned with the
process, and its messages become visible at their timeout instead, a redelivery at worst.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import structlog

from ecswatch.daemon.pipeline.buffer import Buffer
from ecswatch.daemon.pipeline.fetcher import POLL_SECONDS
from ecswatch.daemon.pipeline.inflight import InFlight
from ecswatch.daemon.pipeline.pause import Pause

log = structlog.get_logger("ecswatch.daemon.pipeline.shutdown")

#: seconds past the end of our last open poll (by our clock) that messages given back stay
#: invisible: the poll began on SQS's side after we sent it, and ends a little past its wait
RELEASE_BEHIND_POLL_SECONDS = 2


def stop_pipeline(
    *,
    deadline: float,
    stopping: threading.Event,
    abort: threading.Event,
    workers: list[threading.Thread],
    fetchers: list[threading.Thread],
    open_poll_seconds: Callable[[], float],
    buffer: Buffer,
    pause: Pause,
    inflight: InFlight,
) -> bool:
    """Stop by `deadline` (time.monotonic()); True when every message was settled in time."""
    started = time.monotonic()
    stopping.set()
    buffer.wake_all()
    finished = join(workers, started + 0.8 * (deadline - started))
    if not finished:
        abort.set()
        finished = join(workers, deadline - 1.0)
    polling = not join(fetchers, min(deadline, time.monotonic() + POLL_SECONDS))
    # Released at once, they would fall into a poll of ours still open and then die with
    # the process; visible again once that poll has ended on SQS's side, the next consumer
    # takes them.
    behind = math.ceil(open_poll_seconds()) + RELEASE_BEHIND_POLL_SECONDS if polling else 0
    unstarted = buffer.drain() + pause.drain()
    release = threading.Thread(
        target=inflight.release,
        args=(unstarted,),
        kwargs={"after_seconds": behind},
        name="ecswatch-release",
        daemon=True,
    )
    release.start()
    flushed = inflight.close(max(0.1, deadline - time.monotonic()))
    released = join([release], deadline)
    if not (finished and flushed and released):
        log.warning(
            "shutdown_incomplete",
            threads_still_running=sum(t.is_alive() for t in workers),
            flushed=flushed,
            released=released,
        )
    return finished and flushed and released


def join(threads: list[threading.Thread], deadline: float) -> bool:
    """Join `threads` until `deadline` at the latest; True when all ended."""
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)
