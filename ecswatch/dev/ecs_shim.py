"""WSGI middleware that makes moto's ECS answer like real ECS where reconciliation depends on it.

moto's tasks and container instances carry no `version` (real ECS always reports one: the
version of the resource's latest state-change event), so the shim adds it to every task and
container instance in ECS answers: `versions[arn]` when a test set one, else a version that
grows with the status (PENDING 1, RUNNING 2, ..., STOPPED 5). It can also throttle a share of ECS
requests with ThrottlingException, as ECS does past its API rate limits.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
STATUS_VERSION = {"PROVISIONING": 1, "PENDING": 1, "ACTIVATING": 2, "RUNNING": 2,
                  "DEACTIVATING": 3, "STOPPING": 3, "DEPROVISIONING": 4, "STOPPED": 5,
                  "REGISTERING": 1, "ACTIVE": 2, "DRAINING": 3, "DEREGISTERING": 4,
                  "INACTIVE": 5}  # fmt: skip
THROTTLE_BODY = {"__type": "ThrottlingException", "message": "Rate exceeded"}


class EcsShim:
    """`versions` and `throttle_share` are mutable: tests set them between phases."""

    def __init__(self, app: WsgiApp, *, seed: int = 11) -> None:
        self.app = app
        self.versions: dict[str, int] = {}
        self.throttle_share = 0.0
        self.throttled = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        from moto.moto_api import state_manager  # noqa: PLC0415 (moto: the demo extra)

        # moto moves a task one status further on every DescribeTasks; real tasks change only
        # when the world does, so hold them where run_task / stop_task left them.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})

    def reset(self) -> None:
        self.versions.clear()
        self.throttle_share = 0.0
        self.throttled = 0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(TARGET_PREFIX):
            return self.app(environ, start_response)
        with self._lock:
            throttle = self._random.random() < self.throttle_share
            self.throttled += throttle
        if throttle:
            return _answer(
                start_response, "400 Bad Request", [], json.dumps(THROTTLE_BODY).encode()
            )
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        if captured["status"].startswith("200"):
            body = self._with_versions(body)
        return _answer(start_response, captured["status"], captured["headers"], body)

    def _with_versions(self, body: bytes) -> bytes:
        try:
            answer = json.loads(body)
        except ValueError:
            return body
        if not isinstance(answer, dict):
            return body
        for key, arn_key, status_key in (
            ("tasks", "taskArn", "lastStatus"),
            ("task", "taskArn", "lastStatus"),
            ("containerInstances", "containerInstanceArn", "status"),
            ("containerInstance", "containerInstanceArn", "status"),
        ):
            found = answer.get(key)
            for resource in found if isinstance(found, list) else [found]:
                if isinstance(resource, dict) and arn_key in resource:
                    resource.setdefault(
                        "version",
                        self.versions.get(resource[arn_key])
                        or STATUS_VERSION.get(str(resource.get(status_key)), 1),
                    )
        return json.dumps(answer).encode()


def _answer(
    start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]], body: bytes
) -> list[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "content-type")]
    start_response(
        status,
        [*kept, ("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
    )
    return [body]
