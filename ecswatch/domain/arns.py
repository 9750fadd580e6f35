"""ARNs of ECS resources: the one place that takes them apart (cluster name, account, region)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Metric label values must stay bounded: only well-formed ids pass, anything else is "".
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def cluster_name(cluster_arn: object) -> str:
    """`arn:aws:ecs:r:a:cluster/name` -> `name`; a bare name stays as it is."""
    text = cluster_arn if isinstance(cluster_arn, str) else ""
    return text.rsplit("/", 1)[-1]


def account_of(value: object) -> str:
    """A 12-digit account id, or "" for anything else."""
    return value if isinstance(value, str) and _ACCOUNT.fullmatch(value) else ""


def region_of(value: object) -> str:
    """A region name such as `eu-west-1` or `us-gov-west-1`, or "" for anything else."""
    return value if isinstance(value, str) and _REGION.fullmatch(value) else ""


def account_region(arn: object, envelope: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(account, region) of `arn:partition:service:region:account:...`; where the ARN lacks one,
    the EventBridge envelope's `account` / `region`; "" where neither has a valid one."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    account = account_of(parts[4]) if len(parts) == 6 else ""
    region = region_of(parts[3]) if len(parts) == 6 else ""
    if envelope is not None:
        account = account or account_of(envelope.get("account"))
        region = region or region_of(envelope.get("region"))
    return account, region
