"""ARNs of ECS resources: the one place that takes them apart (cluster name, account, region)."""

from __future__ import annotations


def cluster_name(cluster_arn: object) -> str:
    """`arn:aws:ecs:r:a:cluster/name` -> `name`; a bare name stays as it is."""
    text = cluster_arn if isinstance(cluster_arn, str) else ""
    return text.rsplit("/", 1)[-1]
