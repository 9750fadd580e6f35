"""SQS: receive, delete in batches, release (visibility 0), extend visibility, dead-letter.

FIFO queues (`.fifo`) work as sources unchanged; their DLQ copies carry a MessageGroupId (the
source message's group, else one fixed group) and the source message id as deduplication id,
so a copy retried after a crash within SQS's 5-minute window is stored once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from ecswatch.daemon.aws.retry import Retrier

log = structlog.get_logger("ecswatch.daemon.pipeline.queue")

BATCH = 10  # SQS batch APIs take at most ten entries
ENTRY_ATTEMPTS = 3  # sends of a batch entry that failed on SQS's side
#: message attributes set on dead-lettered messages
REASON_ATTRIBUTE = "ecswatch-reason"
ERROR_ATTRIBUTE = "ecswatch-error"
SOURCE_ID_ATTRIBUTE = "ecswatch-source-message-id"
#: SQS's limit on body plus message attributes (1 MiB since 2025; a queue may set less)
MAX_MESSAGE_BYTES = 1024 * 1024
DEAD_LETTER_GROUP = "ecswatch-dead-letters"


class TooLargeToCopyError(Exception):
    """The body and its reason attributes do not fit in one SQS message of the DLQ."""


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    group_id: str = ""  # FIFO queues only


class Queue:
    """One source queue and an optional dead-letter queue, behind a narrow interface."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        dead_letter_queue_url: str = "",
        retrier: Retrier,
    ) -> None:
        self._client = client
        self.url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self._retrier = retrier

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[Message]:
        """One long poll. Not retried here: the worker loop backs off and polls again."""
        response = self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
        )
        return [
            Message(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw.get("Body", ""),
                receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                group_id=raw.get("Attributes", {}).get("MessageGroupId", ""),
            )
            for raw in response.get("Messages", [])
        ]

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        """Delete in batches of ten; returns the messages SQS did not delete."""
        refused, failed = self._batched(
            "DeleteMessageBatch",
            self._client.delete_message_batch,
            messages,
            lambda m: {"ReceiptHandle": m.receipt_handle},
        )
        return refused + failed

    def change_visibility(self, messages: Sequence[Message], seconds: int) -> list[Message]:
        """Extend (heartbeat) or, with 0, release messages; returns the ones that failed."""
        refused, failed = self.set_visibility(messages, seconds)
        return refused + failed

    def set_visibility(
        self, messages: Sequence[Message], seconds: int
    ) -> tuple[list[Message], list[Message]]:
        """Like change_visibility, telling apart the entries SQS refused as the sender's fault
        (asking again is refused again: past the 12-hour cap, an unknown receipt handle) from
        those that failed on its side."""
        return self._batched(
            "ChangeMessageVisibilityBatch",
            self._client.change_message_visibility_batch,
            messages,
            lambda m: {"ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds},
        )

    def dead_letter(self, message: Message, reason: str, error: str) -> None:
        """Copy the body to the DLQ, with why, as message attributes. The caller deletes.

        Raises TooLargeToCopyError when the copy cannot fit (checked here against SQS's
        limit, or refused by a DLQ whose MaximumMessageSize is lower): the caller then leaves
        the message to the source queue's redrive policy, which moves it whole.
        """
        body = message.body or "(empty body)"
        attributes = {
            REASON_ATTRIBUTE: reason,
            ERROR_ATTRIBUTE: error[:1000] or reason,
            SOURCE_ID_ATTRIBUTE: message.message_id,
        }
        size = len(body.encode()) + sum(len(k) + len("String") + len(v.encode())
                                        for k, v in attributes.items())  # fmt: skip
        if size > MAX_MESSAGE_BYTES:
            raise TooLargeToCopyError(f"{size} bytes with attributes, over {MAX_MESSAGE_BYTES}")
        request: dict[str, Any] = {
            "QueueUrl": self.dead_letter_queue_url,
            "MessageBody": body,
            "MessageAttributes": {
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            },
        }
        if self.dead_letter_queue_url.endswith(".fifo"):
            request["MessageGroupId"] = message.group_id or DEAD_LETTER_GROUP
            request["MessageDeduplicationId"] = message.message_id[:128]
        try:
            self._retrier("SendMessage", lambda: self._client.send_message(**request))
        except ClientError as exc:
            text = str(exc.response.get("Error", {}).get("Message", ""))
            if "must be shorter than" in text or "too long" in text.lower():
                raise TooLargeToCopyError(text[:200]) from exc
            raise

    def _batched(
        self,
        operation: str,
        call: Callable[..., dict[str, Any]],
        messages: Sequence[Message],
        entry: Callable[[Message], dict[str, Any]],
    ) -> tuple[list[Message], list[Message]]:
        """Batches of ten; entries that failed on SQS's side (SenderFault false: throttled,
        internal error) are sent again, alone in a smaller batch, up to ENTRY_ATTEMPTS times;
        the caller gets (refused as the sender's fault, still failed on SQS's side), and one
        WARNING line per call says how many, with SQS's codes."""
        refused: list[Message] = []
        failed: list[Message] = []
        codes: set[str] = set()
        for start in range(0, len(messages), BATCH):
            pending = list(messages[start : start + BATCH])
            for attempt in range(1, ENTRY_ATTEMPTS + 1):
                entries = [{"Id": str(i), **entry(m)} for i, m in enumerate(pending)]
                response = self._retrier(
                    operation, functools.partial(call, QueueUrl=self.url, Entries=entries)
                )
                retry: list[Message] = []
                for failure in response.get("Failed", []):
                    message = pending[int(failure["Id"])]
                    transient = not failure.get("SenderFault", False)
                    if transient and attempt < ENTRY_ATTEMPTS:
                        retry.append(message)
                        continue
                    (failed if transient else refused).append(message)
                    codes.add(str(failure.get("Code")))
                if not retry:
                    break
                pending = retry
        if refused or failed:
            log.warning(
                "sqs_batch_entries_failed",
                operation=operation,
                messages=len(refused) + len(failed),
                codes=sorted(codes),
                message_ids=[m.message_id for m in (refused + failed)[:BATCH]],
            )
        return refused, failed
