"""ecswatch's boto3 clients: one attempt per call (retrying is daemon.aws.retry's), no retry
telemetry, and our own User-Agent."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from ecswatch import __version__
from ecswatch.config import AwsConfig
from ecswatch.daemon.aws.clients import make_client


class RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def answering(client: Any, status: int, body: bytes) -> list[Any]:
    """Every request `client` sends from now on, each answered `status`, `body`."""
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, status, {}, RawBody(body))

    client.meta.events.register("before-send", answer)
    return sent


def test_a_throttled_call_is_sent_once_and_raised_to_our_retrier() -> None:
    """botocore never retries on its own: a throttling error reaches daemon.aws.retry at once."""
    client = make_client("dynamodb", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    throttled = b'{"__type": "ThrottlingException", "message": "slow down"}'
    sent = answering(client, 400, throttled)
    with pytest.raises(ClientError) as raised:
        client.put_item(TableName="t", Item={"k": {"S": "v"}})
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert len(sent) == 1


def test_requests_carry_our_user_agent_and_no_retry_telemetry() -> None:
    """Each request says it is ecswatch, without botocore's per-call retry headers."""
    client = make_client("sqs", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    sent = answering(client, 200, b"{}")
    client.delete_message_batch(QueueUrl="http://x:1/q", Entries=[])
    headers = sent[0].headers
    assert headers["User-Agent"].startswith(f"ecswatch/{__version__} ".encode())
    assert "amz-sdk-invocation-id" not in headers
    assert "amz-sdk-request" not in headers
    assert "Authorization" in headers


def test_the_operators_application_id_reaches_the_user_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS_SDK_UA_APP_ID tags ecswatch's calls as it would any boto3 caller's (CloudTrail)."""
    monkeypatch.setenv("AWS_SDK_UA_APP_ID", "team-ops")
    client = make_client("sqs", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    sent = answering(client, 200, b"{}")
    client.delete_message_batch(QueueUrl="http://x:1/q", Entries=[])
    assert b" app/team-ops" in sent[0].headers["User-Agent"]
