"""What became of one message, as the processor answers it: the worker settles it from this."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    DELETE = "delete"  # done: applied, duplicate, stale or ignored
    DEAD_LETTERED = "dead_lettered"  # copied to the DLQ with its reason: delete the original
    KEEP = "keep"  # not done through its own fault (or a bug): SQS redelivers it
    SYSTEMIC = "systemic"  # the world is broken, not the message: hold it, pause, probe


@dataclass(frozen=True, slots=True)
class Fate:
    action: Action
    #: for SYSTEMIC, one of ecswatch.daemon.aws.errors.PAUSE_REASONS
    reason: str = ""

    @property
    def deletes(self) -> bool:
        return self.action in (Action.DELETE, Action.DEAD_LETTERED)


DELETE = Fate(Action.DELETE)
DEAD_LETTERED = Fate(Action.DEAD_LETTERED)
KEEP = Fate(Action.KEEP)


def systemic(reason: str) -> Fate:
    return Fate(Action.SYSTEMIC, reason)
