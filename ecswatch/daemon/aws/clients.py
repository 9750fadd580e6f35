"""boto3 clients, built once per process, with timeouts that fit long polling."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from ecswatch.config import AwsConfig


def client_config(*, read_timeout: float, max_pool_connections: int = 10) -> BotoConfig:
    """botocore retries are off: daemon.aws.retry owns retrying, so nothing is retried twice.

    Client-side parameter validation is off too: it cost ~0.6 ms of CPU per PutItem (more than
    anything else ecswatch does per event) and our requests are built by code, not by users;
    DynamoDB still validates every request, and a rejected item is dead-lettered.
    """
    return BotoConfig(
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=False,
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
    )


def make_client(
    service: str, aws: AwsConfig, *, read_timeout: float = 10, max_pool_connections: int = 10
) -> Any:
    """A thread-safe client; raises botocore's NoRegionError when no region can be found."""
    session = boto3.session.Session()
    return session.client(
        service,
        region_name=aws.region or None,
        endpoint_url=aws.endpoint_url or None,
        config=client_config(read_timeout=read_timeout, max_pool_connections=max_pool_connections),
    )


def bootstrap_clients(aws: AwsConfig) -> dict[str, Any]:
    """The clients `ecswatch.commands.bootstrap.bootstrap` takes, by keyword."""
    return {name: make_client(name, aws) for name in ("sqs", "dynamodb", "events")}
