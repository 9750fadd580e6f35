"""An embedded AWS emulator (moto's server, over real HTTP) with optional latency and faults.

Used by `ecswatch demo`, the integration tests and the benchmarks. moto is imported lazily:
it is the `demo` extra, not a runtime dependency of the daemon.
"""

from __future__ import annotations

import collections
import io
import json
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ecswatch.dev.ecs_shim import EcsShim

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

THROTTLE_BODY = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded.",
}
ACCESS_DENIED = "com.amazon.coral.service#AccessDeniedException"
SQS_THROTTLED = "com.amazonaws.sqs#RequestThrottled"
SQS_MISSING_QUEUE = "com.amazonaws.sqs#QueueDoesNotExist"
FAULT_KINDS = (
    "throttle",
    "server_error",
    "stall",
    "down",
    "dynamodb_error",
    "sqs_error",
    "batch_entry",
)
BATCH_TARGETS = ("AmazonSQS.DeleteMessageBatch", "AmazonSQS.ChangeMessageVisibilityBatch")
INTERNAL_ERROR_BODY = {
    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
    "message": "Internal server error (injected by ecswatch's emulator)",
}

# DynamoDB applies every conditional write atomically per item; moto reads the current item,
# evaluates the condition in Python and then stores, so two concurrent writes of one item can
# both pass the condition. Seen for UpdateItem often; for PutItem rarely (a double-counted failed
# start under load: both writers of one version saw the old item as ALL_OLD). The emulator runs
# every item write one at a time, as DynamoDB's per-item atomicity promises.
SERIALIZED = frozenset(
    {
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.UpdateItem",
        "DynamoDB_20120810.DeleteItem",
        "DynamoDB_20120810.TransactWriteItems",
    }
)


@dataclass
class Faults:
    """What the emulator does to DynamoDB requests (X-Amz-Target DynamoDB_20120810.*).

    Mutable on purpose: tests switch faults on and off between phases. Each share is a
    probability in [0, 1], drawn per request from a seeded generator.
    """

    throttle_share: float = 0.0
    server_error_share: float = 0.0
    stall_share: float = 0.0
    stall_seconds: float = 0.0
    operations: tuple[str, ...] = ("PutItem",)
    down: bool = False  # every request (any service) answers 503, as an outage would
    #: a systemic fault: every DynamoDB request (any operation) answers HTTP 400 with this
    #: `__type`, e.g. ACCESS_DENIED, as when someone edits the task role
    dynamodb_error: str = ""
    #: when set, `dynamodb_error` answers only requests naming one of these tables (a policy
    #: losing one table's ARN); the other tables work
    dynamodb_error_tables: tuple[str, ...] = ()
    #: the SQS side: these operations (e.g. "ReceiveMessage", "DeleteMessageBatch") answer
    #: HTTP 400 with `sqs_error` as `__type` (e.g. SQS_THROTTLED) for `sqs_share` of requests
    sqs_operations: tuple[str, ...] = ()
    sqs_error: str = ""
    sqs_share: float = 1.0
    #: share of DeleteMessageBatch / ChangeMessageVisibilityBatch entries answered as failed
    #: (SenderFault false, InternalError) while the rest of the batch goes through
    batch_entry_failure_share: float = 0.0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


class FaultInjector:
    """WSGI middleware: per-request delay, DynamoDB throttling/5xx/stalls, a switchable outage."""

    def __init__(self, app: WsgiApp, *, delay_seconds: float = 0.0, seed: int = 7) -> None:
        self.app = app
        self.delay_seconds = delay_seconds
        self.faults = Faults()
        self.injected: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        #: requests seen, by X-Amz-Target (e.g. "AmazonSQS.ReceiveMessage")
        self.requests: collections.Counter[str] = collections.Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._atomic = threading.Lock()

    def __call__(  # noqa: PLR0911 (one early answer per kind of fault)
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self._lock:
            self.requests[target] += 1
        faults = self.faults
        if faults.down:
            self._count("down")
            return _answer(start_response, "503 Service Unavailable", {"message": "down"})
        error = self._systemic(target, environ)
        if error is not None:
            body = {"__type": error, "message": "injected by ecswatch's emulator"}
            return _answer(start_response, "400 Bad Request", body)
        if faults.batch_entry_failure_share and target in BATCH_TARGETS:
            return self._partial_batch(environ, start_response)
        if target.startswith("DynamoDB_20120810.") and target.split(".", 1)[1] in faults.operations:
            with self._lock:
                draw = self._random.random()
            if draw < faults.throttle_share:
                self._count("throttle")
                return _answer(start_response, "400 Bad Request", THROTTLE_BODY)
            draw -= faults.throttle_share
            if draw < faults.server_error_share:
                self._count("server_error")
                return _answer(start_response, "500 Internal Server Error", INTERNAL_ERROR_BODY)
            draw -= faults.server_error_share
            if draw < faults.stall_share:
                self._count("stall")
                time.sleep(faults.stall_seconds)
        if target in SERIALIZED:
            with self._atomic:  # moto answers inside the call: the whole write is under the lock
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)

    def _systemic(self, target: str, environ: dict[str, Any]) -> str | None:
        """The `__type` to answer `target` with, when a configured error applies to it."""
        faults = self.faults
        if target.startswith("AmazonSQS.") and target.split(".", 1)[1] in faults.sqs_operations:
            with self._lock:
                draw = self._random.random()
            if draw < faults.sqs_share:
                self._count("sqs_error")
                return faults.sqs_error
        if faults.dynamodb_error and target.startswith("DynamoDB_20120810."):
            if faults.dynamodb_error_tables and _table(environ) not in faults.dynamodb_error_tables:
                return None
            self._count("dynamodb_error")
            return faults.dynamodb_error
        return None

    def _partial_batch(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Fail a share of a batch's entries; send the others on to moto; merge the answers."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        entries = request.get("Entries", [])
        with self._lock:
            draws = [self._random.random() for _ in entries]
        share = self.faults.batch_entry_failure_share
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for e, draw in zip(entries, draws, strict=True)
            if draw < share
        ]
        kept = [e for e, draw in zip(entries, draws, strict=True) if draw >= share]
        for _ in failed:
            self._count("batch_entry")
        if not kept:
            return _answer(start_response, "200 OK", {"Successful": [], "Failed": failed})
        data = json.dumps({**request, "Entries": kept}).encode()
        environ = {**environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            answered.extend((status, headers))
            return lambda chunk: None

        body = b"".join(self.app(environ, capture))
        status, headers = answered
        if not status.startswith("200"):
            start_response(status, headers)
            return [body]
        merged = json.loads(body or b"{}")
        merged["Failed"] = merged.get("Failed", []) + failed
        return _answer(start_response, status, merged)

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1


def _table(environ: dict[str, Any]) -> str:
    """The TableName of a DynamoDB request; its body is put back for moto to read."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        return str(json.loads(body or b"{}").get("TableName", ""))
    except ValueError:
        return ""


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))],
    )
    return [data]


def require_moto() -> None:
    """Import what the emulator needs, so a missing `demo` extra fails here, before any work.

    Raises ModuleNotFoundError naming the missing module (moto, or one of its server extra's).
    """
    import moto.moto_server.werkzeug_app  # noqa: F401, PLC0415 (optional dependency)
    import werkzeug.serving  # noqa: F401, PLC0415


class Emulator:
    """moto's server on 127.0.0.1 (a free port by default), in a background thread."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, delay_seconds: float = 0.0
    ) -> None:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 (optional dependency)
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        self._host = host
        #: moto's ECS with real ECS's `version` on tasks/container instances, and throttling
        self.ecs = EcsShim(DomainDispatcherApplication(create_backend_app))
        self.injector = FaultInjector(self.ecs, delay_seconds=delay_seconds)

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: object) -> None:
                pass  # one line per request would bury the demo's and the tests' output

        self._server = make_server(
            host, port, self.injector, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ecswatch-emulator", daemon=True
        )

    @property
    def faults(self) -> Faults:
        return self.injector.faults

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://{self._host}:{port}"

    def start(self) -> Emulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget every resource (moto's state is per process, shared by all its servers)."""
        self.faults.reset()
        self.ecs.reset()
        self.injector.requests.clear()
        self.injector.injected = dict.fromkeys(self.injector.injected, 0)
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (our own loopback server)
            pass

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m ecswatch.dev.emulator --port 5000`: the emulator as its own process."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m ecswatch.dev.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every request")
    args = parser.parse_args(argv)
    emulator = Emulator(args.host, args.port, delay_seconds=args.delay_ms / 1000).start()
    print(f"emulator listening on {emulator.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
