"""The pause policy, its one owner: what a failure that is the world's (errors.py says which)
stops, what happens meanwhile to the messages it concerns and to all the others, what proves
the world answers again, and when a message rather than the world is to blame.

- **Per route.** A systemic failure breaks the route it happened on (fate.py: a table, the
  service tables, the DLQ), and only that route. The others keep being received and written:
  one table's revoked permission must not stop the events of the other three, nor, through
  every replica, the whole stream. A message whose route is broken is *held* here: it stays
  invisible (the heartbeat in inflight.py extends it), so SQS never hands it out again and its
  receive count does not climb, however long the outage (up to SQS's 12-hour visibility cap,
  and while this process runs: docs/guarantees.md). Nothing is received twice, so nothing
  moves towards the queue's maxReceiveCount: no valid message reaches the DLQ. A new message
  is not sorted by route before its write (that would parse it twice on the hot path): one of
  a broken route is tried once, fails and is held, which the bound below limits per outage.
- **Bounded.** At most HELD_LIMIT (500) messages are held for broken routes, plus what the
  prefetch buffer (and the receives it had room reserved for) held when the limit was reached.
  There receiving stops altogether (a full pause) until a route recovers, so memory (500 ECS
  events are a few MB), the heartbeat's calls (one per ten held per third of the visibility)
  and what a shutdown gives back stay bounded; messages not received wait in SQS, where no
  receive count moves either.
- **Evidence of recovery** is a write to *the broken route* that succeeded, by a message taken
  after the route broke (one taken before may have written before the fault began): a probe
  (one held message at a time per route, capped exponential backoff 0.5 s → 20 s) or any new
  message of that route. Ignored or expired messages and other routes' writes prove nothing.
  On recovery the route's held messages go back to the workers. A probe that says nothing
  about its route (its handling raised, it turned out invalid or expired) is followed by the
  next held message at once; with none left, nothing is held to protect or probe with, so the
  pause ends unproven (`consumer_resumed` with `evidence`) and the route's next failure, if
  the outage goes on, pauses it again: a rarely written route is not left paused for hours.
- **A message to blame** broke its route and was the only message to fail there, while a
  write to the same route succeeded: that is a trip. After MAX_TRIPS_PER_MESSAGE trips it is
  given back to SQS (its receive count then climbs, as a poison message's should) instead of
  breaking its route again. Only the message that broke the route can trip, and not once any
  other message failed there during the pause: that shows the world is broken, not it.
- A failure of a message taken before its route last recovered is a straggler of that outage:
  it goes back to the workers, so an outage is one pause. A write cut short by the shutdown's
  abort says nothing about the world.

What the operator sees: one `consumer_paused` WARNING when a route breaks (route, reason, what
AWS said) and one `consumer_resumed` when it recovers; `ecswatch_paused{reason}` is 1 while any
route is broken for that reason, steady for the whole outage; /readyz answers 503 meanwhile;
`receiving_paused`/`receiving_resumed` when the hold limit stops and restarts receiving.

Thread-safety: every decision is made under one lock. The hot path reads two attributes
without it: `watching` (False: nothing is broken and no message has tripped, so a success only
needs deleting) and `epoch` (a counter of route transitions, read once a message is taken and
before its write starts, so a success whose epoch is at or past a break was written after it).
A break sets `watching` before it moves `epoch`, so a message whose epoch is at or past a
break reads `watching` True: a stale False can only be read by a message taken before the
break it misses, whose success is no evidence anyway. A stale `epoch` is older, so it only
makes a success count as evidence later, never sooner.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.broken import Broken, probe_delay
from ecswatch.daemon.pipeline.fate import Action, Fate
from ecswatch.daemon.pipeline.queue import Message

log = structlog.get_logger("ecswatch.daemon.pipeline.pause")

#: messages held for broken routes before receiving stops altogether
HELD_LIMIT = 500
#: pauses a message may break its route alone, with successes there in between, before it
#: is given back to SQS instead: it, not the world, is what fails
MAX_TRIPS_PER_MESSAGE = 3


class Verdict(enum.Enum):
    DELETE = "delete"  # done: delete it
    HELD = "held"  # the policy holds it until its route recovers
    RETRY = "retry"  # back to the workers now (a straggler, or cut short by the abort)
    KEEP = "keep"  # give it back to SQS


@dataclass(frozen=True, slots=True)
class Settlement:
    verdict: Verdict
    #: messages of a route that just recovered: back to the workers
    requeue: Sequence[Message] = ()
    #: messages that tripped too often: give them back to SQS
    give_back: Sequence[Message] = ()


DELETE = Settlement(Verdict.DELETE)
HELD = Settlement(Verdict.HELD)
RETRY = Settlement(Verdict.RETRY)
KEEP = Settlement(Verdict.KEEP)


class Pause:
    """The routes' pause state and their held messages; thread-safe."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        limit: int = HELD_LIMIT,
        abort: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._metrics, self._limit, self._clock, self._rng = metrics, limit, clock, rng
        self._abort = abort if abort is not None else threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._broken: dict[str, Broken] = {}
        self._resumed_at: dict[str, int] = {}  # route -> the epoch it last recovered at
        self._trips: dict[str, int] = {}  # receipt handle -> pauses it broke its route alone
        self._held = 0  # held for broken routes, probes in hand included
        self._shown: set[str] = set()  # reasons whose gauge is 1
        #: read without the lock on the hot path (see the module's docstring)
        self.watching = False
        self.epoch = 0
        self.receiving = True

    # -- what the rest of the process asks --------------------------------------------------

    @property
    def paused(self) -> bool:
        return bool(self._broken)

    @property
    def reason(self) -> str | None:
        """Why, for /readyz: e.g. 'access_denied (task)'; None when no route is broken."""
        with self._lock:
            parts = [f"{b.reason} ({route})" for route, b in self._broken.items()]
        return ", ".join(parts) or None

    def held(self) -> int:
        return self._held

    def wait(self, timeout: float) -> None:
        """Sleep until a route's state changes or `timeout` passes."""
        with self._changed:
            self._changed.wait(timeout)

    def take_probe(self) -> Message | None:
        """A held message whose route is due for a probe, for the one worker to try it."""
        if not self._broken:
            return None
        with self._lock:
            now = self._clock()
            for broken in self._broken.values():
                if broken.probe_in(now) == 0:
                    return broken.take_probe()
            return None

    def seconds_to_probe(self, longest: float) -> float:
        """How long until some route's probe is due (at most `longest`)."""
        if not self._broken:
            return longest
        with self._lock:
            now = self._clock()
            due = [b.probe_in(now) for b in self._broken.values()]
            return min([longest, *(d for d in due if d is not None)])

    def drain(self) -> list[Message]:
        """Every held message (the shutdown gives them back); the routes' states stay."""
        with self._changed:
            taken = [m for broken in self._broken.values() for m in broken.held]
            for broken in self._broken.values():
                broken.held.clear()
            self._trips.clear()
            self._count_held()
            return taken

    # -- the decision -----------------------------------------------------------------------

    def settled(self, message: Message, fate: Fate, *, probe: bool, epoch: int) -> Settlement:
        """What to do with `message`, now its fate is known; `epoch` is `self.epoch` as it was
        when the message was taken, `probe` whether it came from take_probe."""
        with self._changed:
            settlement = self._decide(message, fate, probe=probe, epoch=epoch)
            self._count_held()
            return settlement

    def _decide(self, message: Message, fate: Fate, *, probe: bool, epoch: int) -> Settlement:
        handle, route = message.receipt_handle, fate.route
        probed = self._probed(handle) if probe else None
        if fate.deletes:
            self._trips.pop(handle, None)
            broken = self._broken.get(route)
            if broken is not None and epoch >= broken.changed_at:
                settlement = self._resume(route, broken, by=handle)
            else:
                settlement = DELETE
        elif fate.action is Action.SYSTEMIC:
            settlement = self._failed(message, fate, probed=probed, epoch=epoch)
        else:
            self._trips.pop(handle, None)
            settlement = KEEP
        if probed is not None and settlement is not RETRY and not probed.count():
            # The probe said nothing about its route (a bug raised, it turned out invalid or
            # expired, its DLQ copy failed) and nothing else is held there to probe with.
            self._end_unproven(probed)
        return settlement

    def _probed(self, handle: str) -> Broken | None:
        """The broken route whose probe `handle` is, now no longer in hand; None if its route
        recovered (and maybe broke again) meanwhile: then it was no probe of this outage."""
        for broken in self._broken.values():
            if broken.probing == handle:
                broken.probing = ""
                return broken
        return None

    def _failed(
        self, message: Message, fate: Fate, *, probed: Broken | None, epoch: int
    ) -> Settlement:
        route = fate.route
        broken = self._broken.get(route)
        if self._abort.is_set():
            return RETRY
        if broken is not None:
            return self._hold(broken, message, fate, probe=broken is probed)
        if epoch < self._resumed_at.get(route, 0):
            return RETRY  # taken before its route recovered: a straggler of that outage
        if self._trips.get(message.receipt_handle, 0) >= MAX_TRIPS_PER_MESSAGE:
            self._give_back(message, route)
            return KEEP
        return self._break(route, message, fate)

    def _give_back(self, message: Message, route: str) -> None:
        pauses = self._trips.pop(message.receipt_handle)
        log.warning(
            "message_kept_after_pauses", message_id=message.message_id, route=route, pauses=pauses
        )

    def _break(self, route: str, message: Message, fate: Fate) -> Settlement:
        now = self._clock()
        self.watching = True  # before the epoch moves: see the module's docstring
        self.epoch += 1
        broken = Broken(
            route=route,
            reason=fate.reason,
            since=now,
            changed_at=self.epoch,
            tripper=message.receipt_handle,
            next_probe=now + probe_delay(0, self._rng),
        )
        broken.held.append(message)
        self._broken[route] = broken
        log.warning("consumer_paused", route=route, reason=fate.reason, detail=fate.detail)
        self._show_reasons()
        return HELD

    def _hold(self, broken: Broken, message: Message, fate: Fate, *, probe: bool) -> Settlement:
        if message.receipt_handle != broken.tripper:
            broken.others_failed = True
        if probe:
            broken.probe_failed(self._clock(), self._rng)
            if fate.reason != broken.reason:
                broken.reason = fate.reason
                log.warning("consumer_pause_reason_changed", route=fate.route, reason=fate.reason)
                self._show_reasons()
        broken.held.append(message)
        return HELD

    def _resume(self, route: str, broken: Broken, *, by: str) -> Settlement:
        requeue, give_back = list(broken.held), []
        tripper = broken.tripper
        if by != tripper and not broken.others_failed:
            # It alone failed on a route where another write then succeeded: a trip.
            self._trips[tripper] = self._trips.get(tripper, 0) + 1
            if self._trips[tripper] >= MAX_TRIPS_PER_MESSAGE:
                give_back = [m for m in requeue if m.receipt_handle == tripper]
                requeue = [m for m in requeue if m.receipt_handle != tripper]
                for m in give_back:
                    self._give_back(m, route)
        self._end(broken, held=len(broken.held), evidence="write")
        self._resumed_at[route] = self.epoch
        return Settlement(Verdict.DELETE, requeue, give_back)

    def _end_unproven(self, broken: Broken) -> None:
        """A broken route with nothing held and no probe in hand ends its pause unproven:
        nothing is left to probe it with nor to protect, and keeping it would hold /readyz
        and `ecswatch_paused` until its next message, hours away for a rarely written route.
        Its next failure breaks it again (no straggler rule: nothing showed it works)."""
        if self._broken.get(broken.route) is broken:  # not recovered by this settlement
            self._end(broken, held=0, evidence="none: nothing left held")

    def _end(self, broken: Broken, *, held: int, evidence: str) -> None:
        del self._broken[broken.route]
        self.epoch += 1
        log.warning(
            "consumer_resumed",
            route=broken.route,
            reason=broken.reason,
            paused_seconds=round(self._clock() - broken.since, 1),
            failed_probes=broken.failures,
            held=held,
            evidence=evidence,
        )
        self._show_reasons()

    def _show_reasons(self) -> None:
        """A route broke, recovered or changed its reason: `ecswatch_paused` follows."""
        reasons = {b.reason for b in self._broken.values()}
        for reason in self._shown - reasons:
            self._metrics.paused.labels(reason=reason).set(0)
        for reason in reasons - self._shown:
            self._metrics.paused.labels(reason=reason).set(1)
        self._shown = reasons

    def _count_held(self) -> None:
        """After every decision: held count, the hot path's flag, receiving, waiters."""
        self._held = sum(b.count() for b in self._broken.values())
        self.watching = bool(self._broken or self._trips)
        receiving = self._held < self._limit
        if receiving != self.receiving:
            self.receiving = receiving
            log.warning(
                "receiving_resumed" if receiving else "receiving_paused",
                held=self._held,
                limit=self._limit,
            )
        self._changed.notify_all()
