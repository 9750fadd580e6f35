"""Which AWS errors are whose fault, in one place: the item's (dead-letter it), the world's
(systemic: its route pauses, see daemon/pipeline/pause.py for the policy), or a passing one
(transient: retry).

Why it matters: a failure that belongs to the world (a revoked permission, a missing table,
expired credentials, a throttling storm) looks like a failure of every message. Treating it as
the message's would burn receive counts until the redrive policy drains a valid queue into the
DLQ. So the default for an AWS error we cannot pin on the item is *systemic*; only DynamoDB's
verdicts about the item itself (size, nesting, empty names, number range) dead-letter.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

# Retried like botocore's standard mode (botocore/data/_retry.json and retryhandler): throttling
# codes, transient codes, 5xx except 501 (Not Implemented never heals), connection errors.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})

#: the reasons a consumer pauses for: the label set of `ecswatch_paused`
PAUSE_REASONS = (
    "access_denied",  # AccessDenied*, KMS refusals: a policy or key changed
    "credentials",  # unrecognized, expired or missing credentials, bad signatures, clock skew
    "missing_resource",  # a table (or queue) that is not there
    "throttling",  # throttling that outlasted the retries
    "unavailable",  # 5xx that outlasted the retries
    "unreachable",  # no connection to the endpoint
    "rejected_request",  # a request refused for a reason not about the item (key schema, ...)
)

_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "AuthFailure",
    }
)
_MISSING_CODES = frozenset(
    {"ResourceNotFoundException", "TableNotFoundException", "QueueDoesNotExist"}
)
_MISSING_CODES_PREFIXED = ("AWS.SimpleQueueService.NonExistentQueue",)
_ITEM_CODES = frozenset({"ValidationException", "SerializationException"})
# DynamoDB's words when the *item* is what it refuses; anything else under ValidationException
# (e.g. "Missing the key taskArn in the item", "Type mismatch for key") is about the table or
# the request, is the same for every message, and so pauses instead.
_ITEM_PHRASES = (
    "item size",  # has exceeded the maximum allowed size (400 KB)
    "size of hashkey",  # a key over 2048 bytes
    "nesting levels",  # deeper than 32
    "number overflow",
    "number underflow",
    "significant digits",
    "attributename in a map cannot be empty",
    "attribute name cannot be empty",
    "empty attribute name",
    "attributevalue may not contain an empty string",
    "key attribute cannot contain an empty string",
)


def error_code(exc: BaseException | None) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_aws_error(exc: BaseException) -> bool:
    return isinstance(exc, ClientError | BotoCoreError)


def is_throttling(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    return error_code(exc) in THROTTLING_CODES or _status(exc) == 429


def is_transient(exc: BaseException) -> bool:
    """What botocore's standard mode retries: throttling, transient codes, 5xx but 501,
    connection errors and timeouts."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), _status(exc)
        return is_throttling(exc) or code in TRANSIENT_CODES or status in TRANSIENT_STATUS
    return isinstance(exc, ConnectionError | HTTPClientError)


def item_fault(exc: BaseException) -> str | None:
    """DynamoDB's message when it refuses the item itself (it never will store it), else None."""
    if error_code(exc) not in _ITEM_CODES:
        return None
    assert isinstance(exc, ClientError)
    message = str(exc.response.get("Error", {}).get("Message") or "")
    return message if any(p in message.lower() for p in _ITEM_PHRASES) else None


def systemic_reason(exc: BaseException) -> str | None:
    """The pause reason for an AWS error that is not the item's (the caller ruled item faults
    out and retried transient ones): one of PAUSE_REASONS; None for a non-AWS error (a bug)."""
    if isinstance(exc, ClientError):
        return _client_error_reason(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "credentials"
    if isinstance(exc, ConnectionError | HTTPClientError):
        return "unreachable"
    # Any other botocore error (e.g. a request it cannot encode) fails every message alike.
    return "rejected_request" if isinstance(exc, BotoCoreError) else None


def _client_error_reason(exc: ClientError) -> str:
    code, status = error_code(exc), _status(exc)
    verdicts = (
        (code.startswith(("AccessDenied", "KMS")) or code == "Forbidden", "access_denied"),
        (code in _CREDENTIAL_CODES, "credentials"),
        (code in _MISSING_CODES or code.startswith(_MISSING_CODES_PREFIXED), "missing_resource"),
        (is_throttling(exc), "throttling"),
        (is_transient(exc), "unavailable"),
        (status == 403, "access_denied"),
    )
    return next((reason for hit, reason in verdicts if hit), "rejected_request")
