"""The hot calls -- DynamoDB PutItem, SQS ReceiveMessage and DeleteMessageBatch -- sent on the
wire without botocore's generic pipeline.

botocore spends ~1 ms of CPU per PutItem outside the socket (event hooks, a shape-driven
serializer and parser, the user-agent string, an email-module header parse, a generic signer):
more than everything else ecswatch does per event. This module sends the very same request --
the JSON protocol both services speak, the same headers (SQS's x-amzn-query-mode included),
SigV4-signed with the client's own credentials, through the client's own HTTP session (its
pool, timeouts, proxies and CA bundle) -- and answers exactly as the client method would: the
parsed body, or the same modeled exception with the same `Error`, modeled fields (`Item`) and
`ResponseMetadata`, or botocore's own connection exceptions. So retries, classification and
dead-lettering upstream cannot tell the two apart (tests/integration/test_wire.py compares
the requests, and the answers of the emulator to both). A client without these parts (a stub)
gets None from `JsonOperation.of` and the caller keeps using botocore.

What it does not do, because ecswatch's three calls never need it: blobs stay base64 text (no
`B` attributes in our items, no binary message attributes requested), and there are no
botocore event hooks (a botocore Stubber on the client would not see these calls).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore import xform_name
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, NoCredentialsError

from ecswatch import __version__

USER_AGENT = f"ecswatch/{__version__} (lean-json)"


def _host(url: str) -> str:
    """The Host header botocore signs: the URL's netloc without a default port."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class SigV4:
    """AWS Signature Version 4 for a JSON-protocol POST; the key is derived once per day."""

    def __init__(self, region: str, service: str) -> None:
        self._region, self._service = region, service
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _key(self, secret: str, day: str) -> bytes:
        with self._lock:
            key = self._keys.get((secret, day))
            if key is None:
                key = f"AWS4{secret}".encode()
                for part in (day, self._region, self._service, "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._keys = {(secret, day): key}  # one key in use at a time
            return key

    def authorization(
        self,
        *,
        access_key: str,
        secret_key: str,
        amz_date: str,
        headers: dict[str, str],
        path: str,
        body: bytes,
    ) -> str:
        """The Authorization header signing every one of `headers` (lower-case names)."""
        names = sorted(headers)
        signed = ";".join(names)
        canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
        canonical_request = "\n".join(
            ("POST", path, "", canonical_headers, signed, hashlib.sha256(body).hexdigest())
        )
        scope = f"{amz_date[:8]}/{self._region}/{self._service}/aws4_request"
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            )
        )
        signature = hmac.new(
            self._key(secret_key, amz_date[:8]), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        return (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )


class JsonOperation:
    """One operation of a JSON-protocol service, callable like the client method."""

    def __init__(
        self,
        *,
        operation: str,
        url: str,
        region: str,
        signing_name: str,
        target_prefix: str,
        json_version: str,
        query_compatible: bool = False,
        credentials: Any,
        http_session: Any,
        error_class: Callable[[str], type[ClientError]] = lambda code: ClientError,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._operation = operation
        self._url = url if urlsplit(url).path else url + "/"
        self._path = urlsplit(self._url).path
        self._host = _host(url)
        self._target = f"{target_prefix}.{operation}"
        self._content_type = f"application/x-amz-json-{json_version}"
        self._query_compatible = query_compatible
        self._credentials = credentials
        self._http = http_session
        self._error_class = error_class
        self._signer = SigV4(region, signing_name)
        self._clock = clock

    @classmethod
    def of(cls, client: Any, operation: str) -> JsonOperation | None:
        """The lean twin of `client.<operation>`, or None when the client lacks what it needs
        (a stubbed client, another protocol, no credentials): then keep using the client."""
        try:
            meta = client.meta
            model = meta.service_model
            if model.protocol != "json" or model.signature_version != "v4":
                return None
            # The client's own credential provider (refreshing) and HTTP session, by their
            # private names: without them (another botocore, a stub) we fall back to the client.
            credentials = client._request_signer._credentials
            http_session = client._endpoint.http_session
            if credentials is None:
                return None
            return cls(
                operation=operation,
                url=meta.endpoint_url,
                region=meta.region_name,
                signing_name=model.signing_name,
                target_prefix=model.metadata["targetPrefix"],
                json_version=model.metadata["jsonVersion"],
                # SQS: asks for the query-era error codes botocore's callers know
                query_compatible=bool(model.is_query_compatible),
                credentials=credentials,
                http_session=http_session,
                error_class=client.exceptions.from_code,  # the modeled exception classes
            )
        except (AttributeError, KeyError):
            return None

    def __call__(self, **params: Any) -> dict[str, Any]:
        body = json.dumps(params, separators=(",", ":")).encode()
        credentials = self._credentials.get_frozen_credentials()
        if not credentials.access_key or not credentials.secret_key:
            raise NoCredentialsError()
        amz_date = self._clock().strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "content-type": self._content_type,
            "x-amz-date": amz_date,
            "x-amz-target": self._target,
        }
        if self._query_compatible:
            headers["x-amzn-query-mode"] = "true"
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        # Host is signed, and sent by http.client from the URL, as botocore does.
        headers["authorization"] = self._signer.authorization(
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            amz_date=amz_date,
            headers={**headers, "host": self._host},
            path=self._path,
            body=body,
        )
        headers["user-agent"] = USER_AGENT
        request = AWSPreparedRequest("POST", self._url, headers, body, stream_output=False)
        response = self._http.send(request)
        return self._parse(response.status_code, response.headers, response.content)

    def _parse(self, status: int, headers: Any, content: bytes) -> dict[str, Any]:
        metadata = {
            "RequestId": headers.get("x-amzn-requestid", ""),
            "HTTPStatusCode": status,
            "HTTPHeaders": {k.lower(): v for k, v in headers.items()},
            "RetryAttempts": 0,
        }
        expected = headers.get("x-amz-crc32")
        if expected is not None and zlib.crc32(content) != int(expected):
            # A damaged response: 500 makes it transient for ecswatch.retry, which retries it.
            damaged = {"Code": "CRC32CheckFailed", "Message": "response checksum mismatch"}
            raise ClientError(
                {"Error": damaged, "ResponseMetadata": {**metadata, "HTTPStatusCode": 500}},
                self._operation,
            )
        try:
            parsed: Any = json.loads(content) if content else {}
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):  # not AWS's JSON: a proxy's page, say
            parsed = {"message": content[:200].decode("utf-8", "replace")}
        if status < 300:
            return {**parsed, "ResponseMetadata": metadata}
        error = self._error(status, headers, parsed, metadata)
        modeled = error["Error"].get("QueryErrorCode", error["Error"]["Code"])
        raise self._error_class(modeled)(error, self._operation)

    @staticmethod
    def _error(
        status: int, headers: Any, body: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """botocore's JSON error parse: `__type` (or the status) is the code, `#`-prefix and
        `:`-suffix dropped; a query-compatible service (SQS) names it in x-amzn-query-error."""
        error = {"Code": "", "Message": body.get("message", body.get("Message", ""))}
        code = str(body.get("__type", status))
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        query_error = str(headers.get("x-amzn-query-error", "")).split(";")
        if len(query_error) == 2 and query_error[0]:
            error["QueryErrorCode"], error["Type"], code = code, query_error[1], query_error[0]
        error["Code"] = code
        # Modeled fields such as DynamoDB's `Item`; the message lives in Error.Message.
        fields = {k: v for k, v in body.items() if k not in ("__type", "message", "Message")}
        return {**fields, "Error": error, "ResponseMetadata": metadata}


def operation(client: Any, name: str) -> Callable[..., dict[str, Any]]:
    """`client.<name>` as a callable taking the same keywords: the lean one when it can be."""
    lean = JsonOperation.of(client, name)
    return lean if lean is not None else getattr(client, xform_name(name))
