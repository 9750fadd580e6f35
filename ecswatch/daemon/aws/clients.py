"""boto3 clients, built once per process, with timeouts that fit long polling."""

from __future__ import annotations

import platform
from typing import Any

import boto3
import botocore
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.handlers import add_retry_headers

from ecswatch import __version__
from ecswatch.config import AwsConfig

#: Our own User-Agent: botocore otherwise rebuilds its own (SDK usage metadata) twice per call,
#: ~5 % of a write's CPU; this one says who calls, with what (CloudTrail's userAgent).
USER_AGENT = (
    f"ecswatch/{__version__} Botocore/{botocore.__version__} Python/{platform.python_version()}"
)


def user_agent(app_id: str | None = None) -> str:
    """USER_AGENT plus the operator's application id, as botocore's own would carry it.

    The id comes from where botocore reads it (AWS_SDK_UA_APP_ID, `sdk_ua_app_id` in the
    shared config file), so an operator who tags their callers finds ecswatch's in CloudTrail.
    """
    if app_id is None:
        app_id = botocore.session.get_session().get_config_variable("user_agent_appid")
    return f"{USER_AGENT} app/{app_id}" if app_id else USER_AGENT


def client_config(
    *, read_timeout: float, connect_timeout: float = 5, max_pool_connections: int = 10
) -> BotoConfig:
    """botocore retries are off: daemon.aws.retry owns retrying, so nothing is retried twice.

    Client-side parameter validation is off too: it cost ~0.6 ms of CPU per PutItem (more than
    anything else ecswatch does per event) and our requests are built by code, not by users;
    DynamoDB still validates every request, and a rejected item is dead-lettered.
    """
    return BotoConfig(
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=False,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
        user_agent=user_agent(),
    )


def make_client(
    service: str,
    aws: AwsConfig,
    *,
    read_timeout: float = 10,
    connect_timeout: float = 5,
    max_pool_connections: int = 10,
) -> Any:
    """A thread-safe client; raises botocore's NoRegionError when no region can be found."""
    session = boto3.session.Session()
    client = session.client(
        service,
        region_name=aws.region or None,
        endpoint_url=aws.endpoint_url or None,
        config=client_config(
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            max_pool_connections=max_pool_connections,
        ),
    )
    drop_retry_handlers(client)
    return client


def drop_retry_handlers(client: Any) -> None:
    """botocore's per-call retry work, for retries it never makes (one attempt, see above).

    Its standard mode still classifies every response (`needs-retry`), seeds and writes the
    `amz-sdk-request` / `amz-sdk-invocation-id` headers (telemetry AWS does not act on) and
    draws a uuid4 per call for the latter: os.urandom, a syscall that lets go of the GIL, so
    under load one more hand-off between threads per call. Unregistered from this client only
    (each client has its own copy of the handlers); the invocation id is pre-set so botocore
    draws none. Retrying stays daemon.aws.retry's, by the same policies.
    """
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
    events.unregister(f"request-created.{service}", unique_id=f"seed-max-attempts-{service}")
    events.unregister("request-created", add_retry_headers)
    events.register(f"before-call.{service}", _no_invocation_id)


def _no_invocation_id(context: dict[str, Any], **_: Any) -> None:
    context.setdefault("retries", {}).setdefault("invocation-id", "")


def bootstrap_clients(aws: AwsConfig) -> dict[str, Any]:
    """The clients `ecswatch.commands.bootstrap.bootstrap` takes, by keyword."""
    return {name: make_client(name, aws) for name in ("sqs", "dynamodb", "events")}
