"""Bootstrap's central event bus: the bus itself (when not `default`) and the statements of its
resource policy that admit the organization (`aws:PrincipalOrgID`) or listed member accounts.

Read-modify-write of the bus policy: statements with other Sids are kept as they are, ours are
replaced or removed to match the configuration, so running bootstrap again changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.config import BootstrapConfig

ORGANIZATION_SID = "ecswatch-organization"
ACCOUNTS_SID = "ecswatch-member-accounts"
Record = Callable[[str, str, str], None]  # (kind, name, action)


def member_accounts(config: BootstrapConfig) -> list[str]:
    return [part.strip() for part in config.member_account_ids.split(",") if part.strip()]


def ensure_bus(events: Any, config: BootstrapConfig, record: Record) -> str:
    """The bus's ARN, creating a bus other than `default` when it is missing."""
    name = config.event_bus_name
    try:
        arn = str(events.describe_event_bus(Name=name)["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        if name == "default":
            raise
        arn = str(events.create_event_bus(Name=name)["EventBusArn"])
        record("bus", name, "created")
        return arn
    if name != "default":
        record("bus", name, "exists")
    return arn


def wanted_statements(config: BootstrapConfig, bus_arn: str) -> list[dict[str, Any]]:
    """Who may put events on the bus, as the CloudFormation template's EventBusPolicy says."""
    base = {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn}
    statements = []
    if config.organization_id:
        statements.append(
            {
                "Sid": ORGANIZATION_SID,
                **base,
                "Principal": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": config.organization_id}},
            }
        )
    accounts = member_accounts(config)
    if accounts:
        partition = bus_arn.split(":", 2)[1]
        principals = [f"arn:{partition}:iam::{account}:root" for account in accounts]
        statements.append({"Sid": ACCOUNTS_SID, **base, "Principal": {"AWS": principals}})
    return statements


def ensure_bus_policy(events: Any, config: BootstrapConfig, bus_arn: str, record: Record) -> None:
    name = config.event_bus_name
    raw = events.describe_event_bus(Name=name).get("Policy")
    policy: dict[str, Any] = json.loads(raw) if raw else {"Version": "2012-10-17"}
    found = policy.get("Statement", [])
    statements: list[dict[str, Any]] = [found] if isinstance(found, dict) else list(found)
    ours = {ORGANIZATION_SID, ACCOUNTS_SID}
    wanted = wanted_statements(config, bus_arn)
    current = [s for s in statements if s.get("Sid") in ours]
    if sorted(current, key=str) == sorted(wanted, key=str):
        if wanted:
            record("bus-policy", name, "exists")
        return
    # Ours that the configuration no longer wants go one by one (PutPermission with a Policy
    # replaces the whole policy on AWS, but merges on moto: removing first is right on both).
    for sid in {s.get("Sid") for s in current} - {s["Sid"] for s in wanted}:
        events.remove_permission(EventBusName=name, StatementId=sid)
    if wanted:
        others = [s for s in statements if s.get("Sid") not in ours]
        policy["Statement"] = [*others, *wanted]
        events.put_permission(EventBusName=name, Policy=json.dumps(policy))
    record("bus-policy", name, "updated" if current else "created")
