"""The consumers ecswatch is compared with, each run as its own process by bench/compare.py.

    python bench/contenders.py seed  --endpoint URL --sqs-endpoint URL --queue-url URL --table T --count N
    python bench/contenders.py floor --endpoint URL --sqs-endpoint URL --queue-url URL --table T --count N --threads 16
    python bench/contenders.py puts  --endpoint URL --table T --count N --threads 32

seed:  AWS's example logic in a loop: receive one message, get_item, put_item if newer,
       delete; one thread, botocore defaults. (It races with itself across replicas; here it
       runs alone, which is the best case for it.)
floor: the bare boto3 pipeline, the yardstick of issue 13: N threads, each receives ten, writes
       each event with one conditional PutItem (plain boto3: TypeSerializer, default client
       config) and deletes the ten with one DeleteMessageBatch. No metrics, logs, retries,
       redaction or heartbeat.
puts:  bare concurrent PutItem calls of the same realistic items, serialized up front, no SQS:
       the most anything could write against this endpoint (the "emulator ceiling").
sqs:   receive ten / delete ten in N threads, no writes: the emulator's SQS ceiling.
Each prints one JSON line: {"events": n, "seconds": s, "cpu_seconds": c} for the measured loop
(the floor adds "put_ms", its mean PutItem round trip).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from ecswatch.dev.simulate import generate

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def client(service: str, endpoint: str, pool: int = 10) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(max_pool_connections=pool),
    )


def seed(args: argparse.Namespace) -> int:
    sqs, dynamodb = client("sqs", args.sqs_endpoint), client("dynamodb", args.endpoint)
    done = 0
    started, cpu = time.monotonic(), time.process_time()
    while done < args.count:
        messages = sqs.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            detail = json.loads(message["Body"], parse_float=Decimal)["detail"]
            key = {"taskArn": {"S": detail["taskArn"]}}
            stored = dynamodb.get_item(TableName=args.table, Key=key).get("Item")
            if stored is None or int(stored["version"]["N"]) < detail["version"]:
                detail["writtenAt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
                item = {k: _serialize(v) for k, v in detail.items()}
                dynamodb.put_item(TableName=args.table, Item=item)
            sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
            done += 1
    report(done, started, cpu)
    return 0


def floor(args: argparse.Namespace) -> int:
    sqs = client("sqs", args.sqs_endpoint, pool=args.threads + 2)
    dynamodb = client("dynamodb", args.endpoint, pool=args.threads + 2)
    done = 0
    lock = threading.Lock()
    round_trips: list[float] = []
    # Looked up once, before the threads: botocore builds a client's exception classes lazily,
    # and threads racing to build them can each hold a different ConditionalCheckFailed class,
    # so the one raised escapes the suppress and kills that thread (seen: 25 events/s).
    conflict = dynamodb.exceptions.ConditionalCheckFailedException

    def write(message: dict[str, Any]) -> None:
        envelope = json.loads(message["Body"], parse_float=Decimal)
        detail = envelope["detail"]
        item = {k: _serialize(v) for k, v in detail.items()}
        item["eventId"] = {"S": envelope["id"]}
        item["writtenAt"] = {"S": datetime.now(UTC).isoformat(timespec="milliseconds")}
        started = time.perf_counter()
        with contextlib.suppress(conflict):
            dynamodb.put_item(
                TableName=args.table,
                Item=item,
                ConditionExpression="attribute_not_exists(taskArn) OR version < :v",
                ExpressionAttributeValues={":v": {"N": str(detail["version"])}},
            )
        round_trips.append(time.perf_counter() - started)

    def consume() -> None:
        nonlocal done
        while True:
            with lock:
                if done >= args.count:
                    return
            messages = sqs.receive_message(
                QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                continue
            for message in messages:
                write(message)
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ]
            sqs.delete_message_batch(QueueUrl=args.queue_url, Entries=entries)
            with lock:
                done += len(messages)

    started, cpu = run_threads(consume, args.threads)
    report(done, started, cpu, put_ms=1000 * statistics.fmean(round_trips))
    return 0


def puts(args: argparse.Namespace) -> int:
    dynamodb = client("dynamodb", args.endpoint, pool=args.threads + 2)
    per_thread = args.count // args.threads
    # The same realistic task events ecswatch writes (~1.5 KB each), serialized up front.
    details: list[dict[str, Any]] = []
    round_number = 0
    while len(details) < per_thread * args.threads:
        stream = generate(tasks=50, container_instances=0, copies=1, seed=100 + round_number)
        details += [
            json.loads(json.dumps(e["detail"]), parse_float=Decimal) for e in stream.envelopes
        ]
        round_number += 1
    serialized = [{k: _serialize(v) for k, v in d.items()} for d in details]
    items = [serialized[t * per_thread : (t + 1) * per_thread] for t in range(args.threads)]

    round_trips: list[float] = []

    def write(batch: list[dict[str, Any]]) -> None:
        for item in batch:
            started = time.perf_counter()
            dynamodb.put_item(TableName=args.table, Item=item)
            round_trips.append(time.perf_counter() - started)

    threads = [threading.Thread(target=write, args=(batch,)) for batch in items]
    started, cpu = time.monotonic(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report(per_thread * args.threads, started, cpu, put_ms=1000 * statistics.fmean(round_trips))
    return 0


def sqs_only(args: argparse.Namespace) -> int:
    """The SQS half of any consumer: receive ten, delete ten, no writes. The emulator's SQS
    ceiling at this depth, next to which ecswatch's throughput should be read."""
    sqs = client("sqs", args.sqs_endpoint, pool=args.threads + 2)
    done = 0
    lock = threading.Lock()

    def consume() -> None:
        nonlocal done
        while True:
            with lock:
                if done >= args.count:
                    return
            messages = sqs.receive_message(
                QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if messages:
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ]
                sqs.delete_message_batch(QueueUrl=args.queue_url, Entries=entries)
                with lock:
                    done += len(messages)

    started, cpu = run_threads(consume, args.threads)
    report(done, started, cpu)
    return 0


def run_threads(target: Callable[[], None], count: int) -> tuple[float, float]:
    """Run `count` threads of `target` to the end; the wall and CPU clocks at their start."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    started, cpu = time.monotonic(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started, cpu


def report(events: int, started: float, cpu: float, **extra: float) -> None:
    """The measured loop only: start-up (imports, clients) is not the contender's per-event cost."""
    print(
        json.dumps(
            {
                "events": events,
                "seconds": time.monotonic() - started,
                "cpu_seconds": time.process_time() - cpu,
                **extra,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=("seed", "floor", "puts", "sqs"))
    parser.add_argument("--endpoint", default="", help="DynamoDB's")
    parser.add_argument("--sqs-endpoint", default="")
    parser.add_argument("--queue-url", default="")
    parser.add_argument("--table", default="ECSTaskState")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    return {"seed": seed, "floor": floor, "puts": puts, "sqs": sqs_only}[args.contender](args)


if __name__ == "__main__":
    sys.exit(main())
