"""Batch calls: entries that failed on SQS's side are sent again, alone; the sender's are not."""

from __future__ import annotations

import threading
from typing import Any

from ecswatch.daemon.aws.retry import QUEUE_OP, Retrier
from ecswatch.daemon.pipeline.queue import Queue
from tests.daemon.pipeline.test_worker import messages


class PartlyFailing:
    """DeleteMessageBatch that fails m1 (server side) once and m2 (sender side) always."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        handles = [e["ReceiptHandle"] for e in Entries]
        self.sent.append(handles)
        failed = []
        for e in Entries:
            if e["ReceiptHandle"] == "rh1" and len(self.sent) == 1:
                failed.append({"Id": e["Id"], "SenderFault": False, "Code": "InternalError"})
            if e["ReceiptHandle"] == "rh2":
                failed.append(
                    {"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}
                )
        return {"Failed": failed}


def test_server_side_entry_failures_are_retried_per_entry_sender_faults_are_not() -> None:
    """m1 is deleted on its second send; m2's invalid handle is reported, never resent."""
    client = PartlyFailing()
    queue = Queue(client, "http://q", retrier=Retrier(QUEUE_OP, abort=threading.Event()))
    failed = queue.delete(messages(3))
    assert [m.message_id for m in failed] == ["m2"]
    assert client.sent == [["rh0", "rh1", "rh2"], ["rh1"]]
