"""The pass's batched reads of the tables: BatchGetItem, whose UnprocessedKeys (DynamoDB's answer
to read throttling) are sent again after a jittered backoff, a bounded number of times, and
whose waits end at the reconciler's stop; never re-sent at once in a hot loop."""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.reconcile.ecs import Stopping

#: how often, and with what backoff, UnprocessedKeys are sent again (the writes' policy)
UNPROCESSED = WRITE


class UnprocessedKeysError(Exception):
    """DynamoDB kept leaving keys unprocessed (read throttling): this pass fails, the next tries."""


def batch_get(
    dynamodb: Any,
    read: Retrier,
    table: str,
    request: dict[str, Any],
    *,
    stop: threading.Event,
    checkpoint: Callable[[], None] = lambda: None,
) -> Iterator[dict[str, Any]]:
    """Every item `request` (BatchGetItem's per-table request: Keys, projection) finds, in
    DynamoDB's wire format. Raises Stopping at stop, UnprocessedKeysError past the policy."""
    pending: dict[str, Any] = {table: request}
    for send in range(UNPROCESSED.attempts):
        if send:  # back off (full jitter) before sending the rest again
            cap = min(UNPROCESSED.max_wait, UNPROCESSED.initial_wait * 2**send)
            if stop.wait(random.uniform(0, cap)):
                raise Stopping
            checkpoint()
        call = functools.partial(dynamodb.batch_get_item, RequestItems=pending)
        response = read("BatchGetItem", call)
        yield from response.get("Responses", {}).get(table, [])
        pending = response.get("UnprocessedKeys") or {}
        if not pending.get(table, {}).get("Keys"):
            return
    raise UnprocessedKeysError(
        f"BatchGetItem left keys unprocessed {UNPROCESSED.attempts} times (read throttling)"
    )
