"""Why a task stopped: one cause from a fixed set, by one table of rules over the STOPPED event.

Inputs are what every Task State Change carries: `stopCode` (an open set: a code this table does
not know is data, never an error), `stoppedReason`, each container's `reason` and `exitCode`,
and whether the task reached RUNNING (`startedAt`). The first rule that matches names the cause;
prefixes are matched with `str.startswith` on tuples (no regex), and only for STOPPED tasks.
The texts are ECS's own (the "Stopped tasks error codes" page of the ECS developer guide, the
re:Post article "Why is my Amazon ECS task stopped?", and captured events); each rule keeps one
real example, which the tests classify and the docs page shows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecswatch.domain.times import parse_time


class Cause(enum.StrEnum):
    """The metric label `cause`: stable snake_case values, never renamed."""

    IMAGE_PULL = "image_pull"
    RESOURCE_INIT = "resource_init"
    CONTAINER_RUNTIME = "container_runtime"
    OOM = "oom"
    ELB_HEALTH_CHECK = "elb_health_check"
    CONTAINER_HEALTH_CHECK = "container_health_check"
    ESSENTIAL_EXIT_ERROR = "essential_exit_error"
    ESSENTIAL_EXIT_CLEAN = "essential_exit_clean"
    SPOT_INTERRUPTION = "spot_interruption"
    INFRASTRUCTURE = "infrastructure"
    USER = "user"
    SCHEDULER = "scheduler"
    FAILED_TO_START = "failed_to_start"
    UNKNOWN = "unknown"


#: The service's own fault: these count towards crash loops and the failed-task lifetime.
#: Not failures: stops someone or something chose (user, scheduler, Spot, the platform's
#: infrastructure), a clean exit, and what the table cannot name.
FAILURE_CAUSES = frozenset(
    {
        Cause.IMAGE_PULL,
        Cause.RESOURCE_INIT,
        Cause.CONTAINER_RUNTIME,
        Cause.OOM,
        Cause.ELB_HEALTH_CHECK,
        Cause.CONTAINER_HEALTH_CHECK,
        Cause.ESSENTIAL_EXIT_ERROR,
        Cause.FAILED_TO_START,
    }
)

OOM_PREFIX = "OutOfMemoryError"
#: Exit codes of a container stopped by a signal (143 SIGTERM, 137 SIGKILL after stopTimeout):
#: what the other containers of a task show once its essential container has exited.
STOP_SIGNAL_EXITS = frozenset({137, 143})
ESSENTIAL_EXIT_REASON = "Essential container in task exited"


def is_failure(cause: Cause | str) -> bool:
    """Does this cause count as the service failing (crash loops, failed-task lifetime)?"""
    return cause in FAILURE_CAUSES


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: a stopCode, or a text prefix of the task's `stoppedReason` or of
    any container's `reason` (where ECS puts a container's own error)."""

    cause: Cause
    matches: str  # what it matches, in words (the docs page shows it)
    example: str  # a real text it matches (tests classify it)
    stop_codes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


# Order matters: the first matching rule wins. A container's own error (pull, init, runtime,
# OOM) is more specific than who then stopped the task; health-check kills arrive as
# ServiceSchedulerInitiated, so they come before the scheduler's rule.
RULES: tuple[Rule, ...] = (
    Rule(
        Cause.IMAGE_PULL,
        "CannotPullContainerError (every platform version; EC2 agents also say "
        "CannotPullECRContainerError) in stoppedReason or a container's reason",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
        "resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2: not found",
        prefixes=("CannotPullContainerError", "CannotPullECRContainerError"),
    ),
    Rule(
        Cause.RESOURCE_INIT,
        "ResourceInitializationError (secrets, registry auth, ENI, logging driver; platform "
        "1.4.0+), CannotCreateVolumeError, or the ENI provisioning timeout",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm",
        prefixes=(
            "ResourceInitializationError",
            "CannotCreateVolumeError",
            "Timeout waiting for network interface provisioning to complete",
        ),
    ),
    Rule(
        Cause.CONTAINER_RUNTIME,
        "the container runtime could not create, start, inspect or stop a container: "
        "CannotStartContainerError, CannotCreateContainerError, CannotInspectContainerError, "
        "CannotStopContainerError, ContainerRuntimeError, ContainerRuntimeTimeoutError "
        "(platform 1.3 and EC2 agents: DockerTimeoutError)",
        "CannotStartContainerError: failed to get container status: exec: "
        '"/app/start.sh": permission denied',
        prefixes=(
            "CannotStartContainerError",
            "CannotCreateContainerError",
            "CannotInspectContainerError",
            "CannotStopContainerError",
            "ContainerRuntimeError",
            "ContainerRunTimeError",
            "ContainerRuntimeTimeoutError",
            "DockerTimeoutError",
        ),
    ),
    Rule(
        Cause.INFRASTRUCTURE,
        "InternalError: the Fargate agent's own unexpected error (platform 1.4.0+)",
        "InternalError: unexpected EOF",
        prefixes=("InternalError",),
    ),
    Rule(
        Cause.OOM,
        "OutOfMemoryError in a container's reason (or stoppedReason): the kernel killed it "
        "for its memory limit; exit code 137 alone is not this",
        "OutOfMemoryError: Container killed due to memory usage",
        prefixes=(OOM_PREFIX,),
    ),
    Rule(
        Cause.ELB_HEALTH_CHECK,
        "the service scheduler stopped a task its load balancer found unhealthy "
        "(stopCode ServiceSchedulerInitiated, containers exit 143)",
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
        "us-east-1:123456789012:targetgroup/web/0123456789abcdef)",
        prefixes=("Task failed ELB health checks",),
    ),
    Rule(
        Cause.CONTAINER_HEALTH_CHECK,
        "the task definition's own container health check marked an essential container unhealthy",
        "Task failed container health checks",
        prefixes=("Task failed container health checks",),
    ),
    Rule(
        Cause.SPOT_INTERRUPTION,
        "stopCode SpotInterruption or TerminationNotice: Fargate Spot or the EC2 Spot "
        "instance reclaimed",
        "Your Spot Task was interrupted.",
        stop_codes=("SpotInterruption", "TerminationNotice"),
        prefixes=("Your Spot Task was interrupted",),
    ),
    Rule(
        Cause.INFRASTRUCTURE,
        "stopCode InfrastructureHealth, the EC2 host stopped or terminated, Fargate task "
        "maintenance (retirement)",
        "Host EC2 (instance i-0123456789abcdef0) stopped/terminated",
        stop_codes=("InfrastructureHealth",),
        prefixes=(
            "Host EC2 (instance",
            "ECS is performing maintenance on the underlying infrastructure hosting the task",
        ),
    ),
    Rule(
        Cause.USER,
        "stopCode UserInitiated: StopTask from a person or tool, a forced deregistration",
        "Task stopped by user",
        stop_codes=("UserInitiated",),
        prefixes=("Task stopped by user", "Container instance deregistration forced by user"),
    ),
    Rule(
        Cause.SCHEDULER,
        "stopCode ServiceSchedulerInitiated (not a health check): a deployment replacing the "
        "task, a scale-in",
        "Scaling activity initiated by (deployment ecs-svc/8646900195280463695)",
        stop_codes=("ServiceSchedulerInitiated",),
        prefixes=("Scaling activity initiated by",),
    ),
    Rule(
        Cause.ESSENTIAL_EXIT_ERROR,
        "stopCode EssentialContainerExited (or its stoppedReason) and a container exited "
        "non-zero other than by the stop signals 137/143 that the others receive, or every "
        "exit was such a signal, or no exit code is known",
        ESSENTIAL_EXIT_REASON,
        stop_codes=("EssentialContainerExited",),
        prefixes=(ESSENTIAL_EXIT_REASON,),
    ),
    Rule(
        Cause.FAILED_TO_START,
        "stopCode TaskFailedToStart, or any stop before RUNNING that no rule above names",
        "TaskFailedToStart",
        stop_codes=("TaskFailedToStart",),
    ),
)

_CODE_RULES = {code: rule for rule in reversed(RULES) for code in rule.stop_codes}
_PREFIX_RULES = tuple((rule.prefixes, rule) for rule in RULES if rule.prefixes)
_ORDER = {rule: index for index, rule in enumerate(RULES)}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def containers_of(detail: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    containers = detail.get("containers")
    return [c for c in containers if isinstance(c, Mapping)] if isinstance(containers, list) else []


def _exit_code(container: Mapping[str, Any]) -> int | None:
    code = container.get("exitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def classify(detail: Mapping[str, Any]) -> Cause:
    """The cause of a STOPPED task's event detail (see `classify_stop`)."""
    return classify_stop(
        _text(detail.get("stopCode")),
        _text(detail.get("stoppedReason")),
        containers_of(detail),
        started=bool(detail.get("startedAt")),
    )


def classify_stop(
    stop_code: str,
    stopped_reason: str,
    containers: Sequence[Mapping[str, Any]],
    *,
    started: bool,
) -> Cause:
    """The first rule of RULES that matches; texts before codes only through the order."""
    texts = [stopped_reason, *(_text(c.get("reason")) for c in containers)]
    best: Rule | None = None
    for prefixes, rule in _PREFIX_RULES:
        if any(text.startswith(prefixes) for text in texts if text):
            best = rule
            break
    by_code = _CODE_RULES.get(stop_code)
    if by_code is not None and (best is None or _ORDER[by_code] < _ORDER[best]):
        best = by_code
    if best is None:
        return Cause.UNKNOWN if started else Cause.FAILED_TO_START
    if best.cause is Cause.ESSENTIAL_EXIT_ERROR:
        return _essential_exit(containers)
    return best.cause


def _essential_exit(containers: Sequence[Mapping[str, Any]]) -> Cause:
    """Clean only with evidence: one container exited 0 and every other exit is 0 or the stop
    signal ECS sends the rest once the essential container has gone (a sidecar's 143)."""
    codes = [code for code in map(_exit_code, containers) if code is not None]
    if any(code != 0 and code not in STOP_SIGNAL_EXITS for code in codes):
        return Cause.ESSENTIAL_EXIT_ERROR
    return Cause.ESSENTIAL_EXIT_CLEAN if 0 in codes else Cause.ESSENTIAL_EXIT_ERROR


def oom_containers(detail: Mapping[str, Any]) -> list[str]:
    """Names of the containers the kernel killed for memory: reason `OutOfMemoryError...`.
    Exit code 137 alone is not one (it is also the SIGKILL after stopTimeout)."""
    return [
        _text(c.get("name"))
        for c in containers_of(detail)
        if _text(c.get("reason")).startswith(OOM_PREFIX)
    ]


#: (phase label, from field, to field) of the start phases, in order
PHASES = (
    ("provisioning", "createdAt", "pullStartedAt"),
    ("pull", "pullStartedAt", "pullStoppedAt"),
    ("start", "pullStoppedAt", "startedAt"),
)


def start_phases(detail: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(phase, seconds) of each start phase both of whose times are known and in order.

    A missing time (EC2 events without pull times) or a negative phase skips that phase; a
    cached pull whose start and stop times are equal is a phase of 0 seconds.
    """
    timed = ((phase, _seconds(detail, start, end)) for phase, start, end in PHASES)
    return [(phase, seconds) for phase, seconds in timed if seconds is not None]


def lifetime_seconds(detail: Mapping[str, Any]) -> float | None:
    """startedAt→stoppedAt of a task that reached RUNNING; None when unknown or negative."""
    return _seconds(detail, "startedAt", "stoppedAt")


def _seconds(detail: Mapping[str, Any], start: str, end: str) -> float | None:
    began, ended = parse_time(detail.get(start)), parse_time(detail.get(end))
    if began is None or ended is None:
        return None
    seconds = (ended - began).total_seconds()
    return seconds if seconds >= 0 else None
