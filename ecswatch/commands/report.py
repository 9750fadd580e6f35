"""`ecswatch report`: per service, what failed to start and why, how its tasks died (cause, crash
loops, OOM kills) and how long they took to start, from the tables alone (no Prometheus).

It streams: the scan is read page by page and each task item is folded into its service's
tally (commands.tally) and dropped, so memory grows with the number of services, never with
the number of tasks kept in the table.

Services are keyed by account and region too (from their ARNs), so one organization's two
`prod` clusters stay apart; the text groups them under one heading per account and region
when the tables hold more than one, and `--account` / `--region` keep only those.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecswatch.commands.tally import (
    CRASH_LOOP_DEATHS,
    CRASH_LOOP_LIFETIME_SECONDS,
    Deaths,
    DeathTally,
)
from ecswatch.config import Config
from ecswatch.daemon.state.dynamo import scan
from ecswatch.domain.arns import account_region, cluster_name
from ecswatch.domain.expiry import GONE_AT, service_gone
from ecswatch.domain.services import is_service_key
from ecswatch.domain.stops import is_failure
from ecswatch.domain.times import normalize_time

TASK_FIELDS = ("taskArn", "clusterArn", "group", "lastStatus", "startedAt", "stoppedAt",
               "updatedAt", "stopCode", "stoppedReason", "containers", "createdAt",
               "pullStartedAt", "pullStoppedAt")  # fmt: skip
INSTANCE_FIELDS = (
    "containerInstanceArn",
    "clusterArn",
    "status",
    "agentConnected",
    "ec2InstanceId",
    "expiresAt",
)
SERVICE_FIELDS = ("serviceArn", "clusterName", "serviceName", "taskStartImpaired",
                  "deploymentState", "impairmentReason", "expiresAt", GONE_AT)  # fmt: skip


@dataclass
class ServiceReport:
    account: str
    region: str
    cluster: str
    group: str
    running: int = 0
    stopped: int = 0
    failed_to_start: int = 0
    stop_codes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    task_start_impaired: bool | None = None
    deployment_state: str | None = None
    deaths: Deaths = field(default_factory=Deaths)


@dataclass
class Report:
    hours: float
    generated_at: str
    services: list[ServiceReport]
    unhealthy_instances: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reason_of(stopped_reason: str) -> str:
    """'CannotPullContainerError: pull image manifest ...' -> 'CannotPullContainerError'."""
    head = stopped_reason.split(":", 1)[0].strip()
    return head[:80] or "(no reason)"


def build_report(
    dynamodb: Any,
    config: Config,
    *,
    hours: float,
    now: datetime,
    account: str | None = None,
    region: str | None = None,
) -> Report:
    window_start = now - timedelta(hours=hours)
    since = normalize_time(window_start.isoformat()) or ""
    services: dict[tuple[str, str, str, str], ServiceReport] = {}
    tallies: dict[tuple[str, str, str, str], DeathTally] = {}  # by service, what its tasks did

    def wanted(arn: object) -> tuple[str, str] | None:
        origin = account_region(arn)
        if account not in (None, origin[0]) or region not in (None, origin[1]):
            return None
        return origin

    def service(origin: tuple[str, str], cluster: str, group: str) -> ServiceReport:
        key = (*origin, cluster, group)
        return services.setdefault(key, ServiceReport(*key))

    for task in scan(dynamodb, config.dynamodb.task_table, TASK_FIELDS):
        if (origin := wanted(task.get("taskArn"))) is None:
            continue
        entry = service(origin, cluster_name(task.get("clusterArn")), str(task.get("group") or ""))
        key = (entry.account, entry.region, entry.cluster, entry.group)
        if (tally := tallies.get(key)) is None:
            tally = tallies[key] = DeathTally(window_start)
        tally.add(task)
        status = task.get("lastStatus")
        if status == "RUNNING":
            entry.running += 1
        elif status == "STOPPED":
            entry.stopped += 1
            stopped_at = normalize_time(task.get("stoppedAt") or task.get("updatedAt")) or ""
            if not task.get("startedAt") and stopped_at >= since:
                entry.failed_to_start += 1
                code = str(task.get("stopCode") or "(none)")
                entry.stop_codes[code] = entry.stop_codes.get(code, 0) + 1
                reason = reason_of(str(task.get("stoppedReason") or ""))
                entry.reasons[reason] = entry.reasons.get(reason, 0) + 1
    for state in scan(dynamodb, config.dynamodb.service_table, SERVICE_FIELDS):
        if (
            not is_service_key(state.get("serviceArn"))  # the lease, the gauges' journal
            or service_gone(state.get("expiresAt"), state.get(GONE_AT), now)  # deleted
            or (origin := wanted(state.get("serviceArn"))) is None
        ):
            continue
        entry = service(
            origin, str(state.get("clusterName", "")), f"service:{state.get('serviceName', '')}"
        )
        entry.task_start_impaired = state.get("taskStartImpaired")
        entry.deployment_state = state.get("deploymentState")
    unhealthy = [
        {
            "account": origin[0],
            "region": origin[1],
            "cluster": cluster_name(i.get("clusterArn")),
            "containerInstanceArn": i["containerInstanceArn"],
            "ec2InstanceId": i.get("ec2InstanceId"),
            "status": i.get("status"),
            "agentConnected": i.get("agentConnected"),
        }
        for i in scan(dynamodb, config.dynamodb.container_instance_table, INSTANCE_FIELDS)
        if (i.get("status") != "ACTIVE" or i.get("agentConnected") is False)
        and i.get("expiresAt") is None  # deregistered: gone, not unhealthy
        and (origin := wanted(i["containerInstanceArn"])) is not None
    ]
    for key, tally in tallies.items():
        services[key].deaths = tally.summary()
    ordered = sorted(
        services.values(),
        key=lambda s: (s.account, s.region, -s.failed_to_start, -s.deaths.failures, s.cluster,
                       s.group),
    )  # fmt: skip
    return Report(hours, now.astimezone(UTC).isoformat(timespec="seconds"), ordered, unhealthy)


def render(report: Report) -> str:
    lines = [f"Services (tasks that never started in the last {report.hours:g} h first):"]
    origins = sorted({(s.account, s.region) for s in report.services})
    heading = f"  {'cluster':<12} {'service':<28} {'running':>7} {'stopped':>7} {'failed':>6}  "
    heading += "impaired  deployment  why"
    if len(origins) <= 1:
        lines.append(heading)
    origin: tuple[str, str] | None = None
    for s in report.services:
        if len(origins) > 1 and (s.account, s.region) != origin:
            origin = (s.account, s.region)
            lines.append(f"Account {s.account or '(unknown)'}, region {s.region or '(unknown)'}:")
            lines.append(heading)
        why = ", ".join(f"{r} ×{n}" for r, n in collections.Counter(s.reasons).most_common(3))
        impaired = {True: "YES", False: "no", None: "-"}[s.task_start_impaired]
        lines.append(
            f"  {s.cluster:<12} {s.group.removeprefix('service:'):<28} {s.running:>7} "
            f"{s.stopped:>7} {s.failed_to_start:>6}  {impaired:<8}  "
            f"{s.deployment_state or '-':<10}  {why}"
        )
    lines += _render_deaths(report, several_origins=len(origins) > 1)
    lines.append(
        f"Container instances not ACTIVE or disconnected: {len(report.unhealthy_instances)}"
    )
    for i in report.unhealthy_instances:
        lines.append(
            f"  {i['account'] or '-':<12} {i['region'] or '-':<14} "
            f"{i['cluster']:<12} {i['ec2InstanceId'] or i['containerInstanceArn']:<24} "
            f"status={i['status']} agentConnected={i['agentConnected']}"
        )
    return "\n".join(lines)


def _render_deaths(report: Report, *, several_origins: bool) -> list[str]:
    """The sections on task deaths, crash loops, OOM kills and start phases (services with
    something to show only)."""

    def name(s: ServiceReport) -> str:
        where = f"{s.account or '-'} {s.region or '-'} " if several_origins else ""
        return f"  {where}{s.cluster}/{s.group.removeprefix('service:')}"[:48].ljust(48)

    died = [s for s in report.services if s.deaths.by_cause]
    lines = [f"Task deaths in the last {report.hours:g} h by cause (* the service's own failure):"]
    lines += [
        f"{name(s)} {sum(s.deaths.by_cause.values()):>6}  "
        + ", ".join(f"{c}{'*' if is_failure(c) else ''} ×{n}" for c, n in s.deaths.by_cause.items())
        for s in died
    ] or ["  none"]
    lines.append(
        f"Crash-looping services (≥ {CRASH_LOOP_DEATHS} failure deaths within "
        f"{CRASH_LOOP_LIFETIME_SECONDS / 60:g} min of starting, in 15 min):"
    )
    lines += [
        f"{name(s)} {s.deaths.quick_failures:>6} quick failures, last looping at "
        f"{s.deaths.crash_loop_last_at}"
        for s in died
        if s.deaths.crash_looping
    ] or ["  none"]
    lines.append("OOM kills by container:")
    lines += [
        f"{name(s)} " + ", ".join(f"{c} ×{n}" for c, n in s.deaths.oom_kills.items())
        for s in died
        if s.deaths.oom_kills
    ] or ["  none"]
    lines.append(f"Start phases of tasks created in the last {report.hours:g} h (p50 / p95):")
    lines += [
        name(s)
        + "  ".join(
            f" {phase} {_duration(q['p50'])} / {_duration(q['p95'])} (n={q['count']})"
            for phase, q in s.deaths.start_phases.items()
        )
        for s in report.services
        if s.deaths.start_phases
    ] or ["  none"]
    return lines


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
