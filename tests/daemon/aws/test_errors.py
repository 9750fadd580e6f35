"""Whose fault an AWS error is: the item's (dead-letter), the world's (pause), or passing."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from ecswatch.daemon.aws.errors import PAUSE_REASONS, item_fault, systemic_reason
from ecswatch.daemon.aws.retry import WRITE, Retrier, RetryQuota


def client_error(code: str, message: str = "x", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutItem",
    )


@pytest.mark.parametrize(
    "message",
    [
        "Item size has exceeded the maximum allowed size",
        "Item size to update has exceeded the maximum allowed size",
        "Nesting Levels have exceeded supported limits",
        "Number overflow. Attempting to store a number with magnitude larger than supported",
        "Number underflow. Attempting to store a number with magnitude smaller than supported",
        "Attempting to store more than 38 significant digits in a Number",
        "One or more parameter values were invalid: An AttributeName in a map cannot be empty",
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size "
        "limit of2048 bytes",
    ],
)
def test_dynamodb_refusals_about_the_item_are_item_faults(message: str) -> None:
    """Only what DynamoDB says about the item itself dead-letters it."""
    assert item_fault(client_error("ValidationException", message)) == message
    assert item_fault(client_error("SerializationException", message)) == message


@pytest.mark.parametrize(
    "message",
    [
        "One or more parameter values were invalid: Missing the key taskArn in the item",
        "One or more parameter values were invalid: Type mismatch for key taskArn expected: S "
        "actual: N",
        "The provided key element does not match the schema",
        "Invalid ConditionExpression: Syntax error; token: ...",
        "1 validation error detected: Value null at 'tableName' failed to satisfy constraint",
    ],
)
def test_key_schema_and_request_errors_are_systemic_not_item_faults(message: str) -> None:
    """A table keyed on another attribute fails every message alike: pause, never DLQ."""
    error = client_error("ValidationException", message)
    assert item_fault(error) is None
    assert systemic_reason(error) == "rejected_request"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (client_error("AccessDeniedException"), "access_denied"),
        (client_error("AccessDenied", status=403), "access_denied"),
        (client_error("KMSAccessDeniedException"), "access_denied"),
        (client_error("KMSDisabledException"), "access_denied"),
        (client_error("ResourceNotFoundException"), "missing_resource"),
        (client_error("AWS.SimpleQueueService.NonExistentQueue"), "missing_resource"),
        (client_error("UnrecognizedClientException"), "credentials"),
        (client_error("ExpiredTokenException"), "credentials"),
        (client_error("InvalidSignatureException", "Signature expired"), "credentials"),
        (client_error("SignatureDoesNotMatch", status=403), "credentials"),
        (client_error("ProvisionedThroughputExceededException"), "throttling"),
        (client_error("ThrottlingException"), "throttling"),
        (client_error("Whatever", status=429), "throttling"),
        (client_error("InternalServerError", status=500), "unavailable"),
        (client_error("ServiceUnavailable", status=503), "unavailable"),
        (client_error("NotImplemented", status=501), "rejected_request"),
        (client_error("SomethingNew"), "rejected_request"),
        (EndpointConnectionError(endpoint_url="http://x"), "unreachable"),
        (ReadTimeoutError(endpoint_url="http://x"), "unreachable"),
        (NoCredentialsError(), "credentials"),
    ],
)
def test_the_worlds_failures_have_a_pause_reason(error: BaseException, reason: str) -> None:
    """Every AWS failure past its retries names a reason from the small fixed set."""
    assert systemic_reason(error) == reason
    assert reason in PAUSE_REASONS


def test_a_bug_is_not_systemic() -> None:
    """A Python error in our code is no reason to pause every replica's consumer."""
    assert systemic_reason(ValueError("a bug")) is None


def test_the_retry_budget_is_spent_by_retries_and_refilled_by_successes() -> None:
    """Like botocore's retry quota: 5 a retry, 10 after a timeout, given back on success."""
    quota = RetryQuota(capacity=12)
    assert quota.acquire(client_error("ThrottlingException")) == 5
    assert quota.acquire(ReadTimeoutError(endpoint_url="http://x")) == 0  # 7 left, costs 10
    assert quota.acquire(client_error("ThrottlingException")) == 5
    assert quota.acquire(client_error("ThrottlingException")) == 0
    quota.succeeded(5)
    quota.succeeded(0)  # a first-attempt success earns one
    assert quota.tokens == 8
    quota.succeeded(100)
    assert quota.tokens == 12


def test_a_spent_budget_makes_the_failure_final_at_once() -> None:
    """Once the shared budget is empty no thread retries: load does not multiply."""
    quota, calls, sleeps = RetryQuota(capacity=10), [], []

    def throttled() -> None:
        calls.append(1)
        raise client_error("ThrottlingException")

    retrier = Retrier(WRITE, abort=threading.Event(), quota=quota, sleep=sleeps.append)
    with pytest.raises(ClientError):
        retrier("PutItem", throttled)
    assert len(calls) == 3  # two retries of 5 tokens, then the budget is spent
    assert quota.tokens == 0
    with pytest.raises(ClientError):
        retrier("PutItem", throttled)
    assert len(calls) == 4
