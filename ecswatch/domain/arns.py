"""ARNs of ECS resources: the one place that takes them apart (cluster name, account, region)."""

from __future__ import annotations


def cluster_name(cluster_arn: object) -> str:
    """`arn:aws:ecs:r:a:cluster/name` -> `name`; a bare name stays as it is."""
    text = cluster_arn if isinstance(cluster_arn, str) else ""
    return text.rsplit("/", 1)[-1]


def account_region(arn: object) -> tuple[str, str]:
    """`arn:aws:ecs:REGION:ACCOUNT:...` -> (ACCOUNT, REGION); ("", "") for anything else."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    return (parts[4], parts[3]) if len(parts) == 6 and parts[0] == "arn" else ("", "")
