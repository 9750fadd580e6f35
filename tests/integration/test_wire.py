"""The lean wire calls answer exactly as botocore's client methods do, over real HTTP.

ecswatch's hot calls (PutItem, ReceiveMessage, DeleteMessageBatch) skip botocore's generic
pipeline (ecswatch/wire.py). Retries, outcome classification and dead-lettering rely on the
answers being the same, so every kind of answer is compared side by side against the emulator.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError

from ecswatch import wire
from ecswatch.retry import is_transient
from tests.conftest import REGION, Stack

NOW = datetime(2026, 11, 23, 15, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize(
    "url", ["https://dynamodb.eu-west-1.amazonaws.com", "http://127.0.0.1:4566"]
)
def test_signature_is_botocores_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, token: str | None, url: str
) -> None:
    body = json.dumps({"TableName": "ECSTaskState", "Item": {"taskArn": {"S": "arn:ü"}}}).encode()
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": wire._host(url),
        "x-amz-date": NOW.strftime("%Y%m%dT%H%M%SZ"),
        "x-amz-target": "DynamoDB_20120810.PutItem",
    }
    if token:
        headers["x-amz-security-token"] = token
    ours = wire.SigV4("eu-west-1", "dynamodb").authorization(
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        amz_date=headers["x-amz-date"],
        headers=headers,
        path="/",
        body=body,
    )
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url + "/", data=body, headers=dict(headers))
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(request)
    assert ours == request.headers["Authorization"]


def normalized(call: Any, **params: Any) -> dict[str, Any]:
    """A call's answer without what differs per request (ids, headers, dates)."""
    try:
        answer = call(**params)
    except ClientError as exc:
        answer = {"raised": type(exc).__name__, **exc.response}
    meta = answer.pop("ResponseMetadata")
    answer["status"] = meta["HTTPStatusCode"]
    answer.pop("message", None)  # botocore keeps the modeled copy of Message; we keep it too
    return answer


def table(dynamodb: Any, name: str) -> str:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "taskArn", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "taskArn", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def put(table_name: str, version: int, **extra: Any) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "Item": {
            "taskArn": {"S": "arn:aws:ecs:us-east-1:1:task/c/t1"},
            "version": {"N": str(version)},
            "lastStatus": {"S": f"S{version}"},
            "containers": {"L": [{"M": {"name": {"S": "app"}, "exitCode": {"NULL": True}}}]},
            "flag": {"BOOL": True},
        },
        "ConditionExpression": "attribute_not_exists(#key) OR #version < :version",
        "ExpressionAttributeNames": {"#key": "taskArn", "#version": "version"},
        "ExpressionAttributeValues": {":version": {"N": str(version)}},
        "ReturnValues": "ALL_OLD",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        **extra,
    }


def test_put_item_answers_like_botocore(stack: Stack) -> None:
    lean = wire.JsonOperation.of(stack.dynamodb, "PutItem")
    assert lean is not None
    tables = {"botocore": table(stack.dynamodb, "wire-a"), "lean": table(stack.dynamodb, "wire-b")}
    steps = [
        {"version": 1},  # applied, nothing replaced
        {"version": 3},  # applied, ALL_OLD is version 1
        {"version": 2},  # stale: ConditionalCheckFailedException with the stored item
        {"version": 3},  # duplicate
        {"version": 4, "ReturnValues": "ALL_NEW"},  # refused: ValidationException
    ]
    answers: dict[str, list[dict[str, Any]]] = {"botocore": [], "lean": []}
    for step in steps:
        for name, call in (("botocore", stack.dynamodb.put_item), ("lean", lean)):
            answers[name].append(normalized(call, **put(tables[name], **step)))
    assert answers["lean"] == answers["botocore"]
    codes = [a.get("Error", {}).get("Code") for a in answers["lean"]]
    conflict = "ConditionalCheckFailedException"
    assert codes == [None, None, conflict, conflict, "ValidationException"]
    assert answers["lean"][1]["Attributes"]["version"] == {"N": "1"}
    assert answers["lean"][2]["Item"]["version"] == {"N": "3"}
    missing = {"TableName": "no-such-table", "Item": {"taskArn": {"S": "x"}}}
    assert normalized(lean, **missing) == normalized(stack.dynamodb.put_item, **missing)


def test_sqs_calls_answer_like_botocore(stack: Stack) -> None:
    url = stack.resources.queue_url
    stack.send(*(json.dumps({"n": i, "text": "é\u2028"}) for i in range(3)))
    receive = {
        "QueueUrl": url,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 1,
        "VisibilityTimeout": 0,  # visible again at once: both readers see the same messages
        "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
    }

    def messages(call: Any) -> list[dict[str, Any]]:
        got = sorted(call(**receive)["Messages"], key=lambda m: m["MessageId"])
        for message in got:
            message.pop("ReceiptHandle")
            message["Attributes"].pop("ApproximateReceiveCount")
        return got

    lean_receive = wire.JsonOperation.of(stack.sqs, "ReceiveMessage")
    assert lean_receive is not None
    via_lean = messages(lean_receive)
    assert len(via_lean) == 3
    assert via_lean == messages(stack.sqs.receive_message)

    handles = [m["ReceiptHandle"] for m in stack.sqs.receive_message(**receive)["Messages"]]
    entries = [{"Id": "0", "ReceiptHandle": handles[0]}, {"Id": "1", "ReceiptHandle": "bogus"}]
    deleted = wire.operation(stack.sqs, "DeleteMessageBatch")(QueueUrl=url, Entries=entries)
    assert [e["Id"] for e in deleted["Successful"]] == ["0"]
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [("1", "ReceiptHandleIsInvalid")]

    gone = {**receive, "QueueUrl": url + "-missing"}
    lean_error, botocore_error = (
        normalized(lean_receive, **gone),
        normalized(stack.sqs.receive_message, **gone),
    )
    assert lean_error == botocore_error
    assert lean_error["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"throttle_share": 1.0}, "ProvisionedThroughputExceededException"),
        ({"server_error_share": 1.0}, "InternalServerError"),
        ({"down": True}, "503"),
    ],
)
def test_injected_faults_are_the_same_transient_errors(
    stack: Stack, fault: dict[str, Any], code: str
) -> None:
    lean = wire.JsonOperation.of(stack.dynamodb, "PutItem")
    assert lean is not None
    request = put(stack.config.dynamodb.task_table, 1)
    for name, value in fault.items():
        setattr(stack.emulator.faults, name, value)
    try:
        answers = [normalized(call, **request) for call in (stack.dynamodb.put_item, lean)]
        with pytest.raises(ClientError) as raised:
            lean(**request)
    finally:
        stack.emulator.faults.reset()
    assert answers[0] == answers[1]
    assert answers[1]["Error"]["Code"] == code
    assert is_transient(raised.value)


def test_connection_refused_is_botocores_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}"
        client = boto3.client("dynamodb", endpoint_url=url, region_name=REGION)
        lean = wire.JsonOperation.of(client, "PutItem")
        assert lean is not None
        with pytest.raises(EndpointConnectionError) as raised:
            lean(**put("t", 1))
    assert is_transient(raised.value)


def test_real_clients_get_the_lean_call(stack: Stack) -> None:
    for client, name in ((stack.dynamodb, "PutItem"), (stack.sqs, "ReceiveMessage")):
        assert isinstance(wire.operation(client, name), wire.JsonOperation)


def test_clients_without_botocore_internals_keep_their_own_method() -> None:
    class StubClient:
        def put_item(self, **params: Any) -> dict[str, Any]:
            return {"stub": params}

    call = wire.operation(StubClient(), "PutItem")
    assert call(TableName="t") == {"stub": {"TableName": "t"}}


def test_no_credentials_means_the_client_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client("dynamodb", region_name=REGION)
    assert wire.JsonOperation.of(client, "PutItem") is None


class Capture:
    """An HTTP session that records the request and refuses it."""

    def __init__(self) -> None:
        self.request: Any = None

    def send(self, request: Any) -> Any:
        self.request = request
        raise RuntimeError("captured")


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("dynamodb", "PutItem", put("ECSTaskState", 7)),
        ("sqs", "ReceiveMessage", {"QueueUrl": "http://127.0.0.1:1/q", "MaxNumberOfMessages": 10}),
        ("sqs", "DeleteMessageBatch", {"QueueUrl": "http://127.0.0.1:1/q", "Entries": []}),
    ],
)
def test_the_request_on_the_wire_is_botocores(
    monkeypatch: pytest.MonkeyPatch, service: str, operation: str, params: dict[str, Any]
) -> None:
    """Same headers, same signed headers, same body as botocore sends (SQS, for one, needs
    botocore's x-amzn-query-mode header to answer with the error codes callers know)."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-session-token")
    client = boto3.session.Session().client(
        service, region_name=REGION, endpoint_url="http://127.0.0.1:1"
    )
    sent: list[Any] = []

    def refuse(request: Any, **_: Any) -> dict[str, Any]:
        sent.append(request)
        raise RuntimeError("captured")

    client.meta.events.register("before-send", refuse)
    with pytest.raises(RuntimeError):
        getattr(client, botocore.xform_name(operation))(**params)
    lean, http = wire.JsonOperation.of(client, operation), Capture()
    assert lean is not None
    lean._http = http
    with pytest.raises(RuntimeError):
        lean(**params)

    def shape(request: Any) -> tuple[set[str], str, Any, str]:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        return set(headers) - BOTOCORE_ONLY, signed, json.loads(request.body), request.url

    assert shape(http.request)[1] == ";".join(
        sorted(shape(http.request)[0] - {"authorization"} | {"host"})
    )

    assert shape(http.request) == shape(sent[0])


BOTOCORE_ONLY = {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "content-length"}


@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "https://dynamodb.us-east-1.amazonaws.com:443",
        "http://localstack:80",
        "http://127.0.0.1:4566",
        "https://sqs.eu-west-1.amazonaws.com:8443/",
        "http://[::1]:4566",
    ],
)
def test_the_signed_host_is_botocores(url: str) -> None:
    assert wire._host(url) == botocore.auth._host_from_url(url)
