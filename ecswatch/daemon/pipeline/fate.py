"""What became of one message, as the processor answers it, and which route it proved or broke:
the worker settles it from this, the pause policy (pause.py) reads the route.

A route is the write a message needs to be done: its table (task, container instance), the
service tables (a service event writes both), or the DLQ (a copy of an invalid message). A
success names its route, so it is evidence for that route only; ignored and expired messages
name none, since they wrote nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ecswatch.domain.events import Resource


class Action(enum.Enum):
    DELETE = "delete"  # done: applied, duplicate, stale or ignored
    DEAD_LETTERED = "dead_lettered"  # copied to the DLQ with its reason: delete the original
    KEEP = "keep"  # not done through its own fault (or a bug): SQS redelivers it
    SYSTEMIC = "systemic"  # its route is broken, not the message: hold it, pause the route


TASK_ROUTE = "task"
CONTAINER_INSTANCE_ROUTE = "container_instance"
SERVICE_ROUTE = "service"
DEAD_LETTER_ROUTE = "dead_letter"
ROUTES = (TASK_ROUTE, CONTAINER_INSTANCE_ROUTE, SERVICE_ROUTE, DEAD_LETTER_ROUTE)
#: the route of an event stored in a versioned table
RESOURCE_ROUTES = {
    Resource.TASK: TASK_ROUTE,
    Resource.CONTAINER_INSTANCE: CONTAINER_INSTANCE_ROUTE,
}


@dataclass(frozen=True, slots=True)
class Fate:
    action: Action
    #: for SYSTEMIC, one of ecswatch.daemon.aws.errors.PAUSE_REASONS
    reason: str = ""
    #: the route this fate proved (a write that succeeded) or broke (SYSTEMIC); "" for none
    route: str = ""
    #: for SYSTEMIC, what AWS said (shortened), for the pause's log line
    detail: str = ""

    @property
    def deletes(self) -> bool:
        return self.action in (Action.DELETE, Action.DEAD_LETTERED)


DELETE = Fate(Action.DELETE)  # done without a write: ignored, expired
DEAD_LETTERED = Fate(Action.DEAD_LETTERED, route=DEAD_LETTER_ROUTE)
KEEP = Fate(Action.KEEP)
# One constant per route, so the hot path allocates nothing for its answer.
_WRITTEN = {route: Fate(Action.DELETE, route=route) for route in ROUTES}
_WRITTEN_RESOURCE = {resource: _WRITTEN[route] for resource, route in RESOURCE_ROUTES.items()}


def written(route: str) -> Fate:
    """Done by a write that succeeded on `route` (applied, duplicate or stale)."""
    return _WRITTEN[route]


def stored(resource: Resource) -> Fate:
    """Done by a write to the versioned table of `resource`."""
    return _WRITTEN_RESOURCE[resource]


def systemic(reason: str, route: str = "", detail: str = "") -> Fate:
    return Fate(Action.SYSTEMIC, reason, route, detail[:300])
