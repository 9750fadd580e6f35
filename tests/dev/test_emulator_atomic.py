"""The embedded emulator keeps DynamoDB's per-item atomicity, which moto alone does not."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from ecswatch.dev.emulator import Emulator


def test_two_concurrent_conditional_puts_of_one_version_let_exactly_one_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two writers of the same version race; DynamoDB applies one and refuses the other.

    moto reads the current item, evaluates the condition and stores in three Python steps; the
    read is slowed here so that, without the emulator's lock, both writers see no item and win.
    """
    read = Table.get_item

    def slow_read(self: Table, *args: Any, **kwargs: Any) -> Any:
        found = read(self, *args, **kwargs)
        time.sleep(0.2)
        return found

    monkeypatch.setattr(Table, "get_item", slow_read)
    with Emulator() as emulator:
        client = boto3.client(
            "dynamodb",
            endpoint_url=emulator.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        outcomes: list[str] = []

        def write() -> None:
            try:
                client.put_item(
                    TableName="t",
                    Item={"k": {"S": "task"}, "version": {"N": "3"}},
                    ConditionExpression="attribute_not_exists(k) OR version < :v",
                    ExpressionAttributeValues={":v": {"N": "3"}},
                )
                outcomes.append("applied")
            except ClientError as error:
                outcomes.append(error.response["Error"]["Code"])

        writers = [threading.Thread(target=write) for _ in range(2)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    assert sorted(outcomes) == ["ConditionalCheckFailedException", "applied"]
