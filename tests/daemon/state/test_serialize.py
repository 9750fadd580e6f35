"""The item serializer writes exactly what boto3's TypeSerializer would, and refuses the same;
an item sent pre-encoded is the request botocore would have built."""

from __future__ import annotations

import decimal
import json
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from ecswatch.config import AwsConfig
from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.state.dynamo import UnstorableEventError, serialize_item
from ecswatch.daemon.state.encoded import encode_item, send_encoded_items
from ecswatch.daemon.state.store import Outcome, Store
from ecswatch.dev.simulate import generate
from ecswatch.domain.events import Event, Resource, build_item, parse_message

boto3_serialize = TypeSerializer().serialize
json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def reference(item: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return {k: boto3_serialize(v) for k, v in item.items()}
    except (TypeError, ValueError, decimal.DecimalException):
        return None


# 500 items in two independent shards of 250, so xdist runs them side by side.
@pytest.mark.parametrize("shard", range(2))
@settings(max_examples=250, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_like, max_size=6))
def test_matches_boto3_type_serializer_or_refuses_like_it(shard: int, item: dict[str, Any]) -> None:
    expected = reference(item)
    if expected is None:
        with pytest.raises(UnstorableEventError):
            serialize_item(item)
    else:
        assert serialize_item(item) == expected


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_like, max_size=6))
def test_an_encoded_item_is_the_serialized_item_as_json_or_refused_alike(
    item: dict[str, Any],
) -> None:
    """The one-pass encoder writes what serialize_item builds, and refuses what it refuses."""
    try:
        expected = serialize_item(item)
    except UnstorableEventError:
        with pytest.raises(UnstorableEventError):
            encode_item(item)
        return
    assert json.loads(encode_item(item)) == expected


def test_realistic_items_serialize_like_boto3() -> None:
    for body in generate(tasks=8, seed=5).bodies():
        event = parse_message(body)
        assert isinstance(event, Event)
        item = build_item(event, now=datetime.now(UTC), stopped_task_ttl_days=7)
        assert serialize_item(item) == reference(item)
        assert json.loads(encode_item(item)) == reference(item)
    assert json.dumps(serialize_item({"f": decimal.Decimal("0.0")})) == '{"f": {"N": "0.0"}}'


def sent_bodies(client: Any) -> list[dict[str, Any]]:
    """Every request body `client` sends from now on, answered `{}` without a network."""
    bodies: list[dict[str, Any]] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        bodies.append(json.loads(request.body))
        return AWSResponse(request.url, 200, {}, RawBody(b"{}"))

    client.meta.events.register("before-send.dynamodb.PutItem", answer)
    return bodies


class RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def test_an_encoded_item_is_sent_as_botocore_would_send_the_item() -> None:
    """The store's pre-encoded Item reaches DynamoDB as the very request botocore builds."""
    client = make_client("dynamodb", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    send_encoded_items(client)
    bodies = sent_bodies(client)
    for body in generate(tasks=4, seed=9).bodies():
        event = parse_message(body)
        assert isinstance(event, Event)
        item = build_item(event, now=datetime.now(UTC), stopped_task_ttl_days=7)
        request = {"TableName": "t", "ConditionExpression": "attribute_not_exists(k)"}
        client.put_item(**request, Item=serialize_item(item))
        client.put_item(**request, Item=encode_item(item))
        assert bodies[-1] == bodies[-2]
        assert bodies[-1]["Item"] == serialize_item(item)


def test_an_encoded_item_alone_makes_a_well_formed_body() -> None:
    """Spliced into an otherwise empty request, the Item still makes one JSON object."""
    client = make_client("dynamodb", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    send_encoded_items(client)
    bodies = sent_bodies(client)
    client.put_item(Item=encode_item({"k": "v"}))
    assert bodies == [{"Item": {"k": {"S": "v"}}}]


@pytest.mark.parametrize("validating", [False, True])
def test_the_store_hands_botocore_its_item_pre_encoded(validating: bool) -> None:
    """botocore is handed only the empty placeholder (it never walks the item), on ecswatch's
    clients and on a caller's own client that validates parameters alike."""
    aws = AwsConfig(region="us-east-1", endpoint_url="http://x:1")
    client = make_client("dynamodb", aws)
    if validating:
        client = boto3.session.Session().client(
            "dynamodb", region_name="us-east-1", endpoint_url="http://x:1"
        )
    store = Store(client, {Resource.TASK: "tasks"}, Retrier(WRITE, abort=threading.Event()))
    handed: list[Any] = []
    client.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", lambda params, **_: handed.append(params["Item"])
    )
    bodies = sent_bodies(client)
    events = map(parse_message, generate(tasks=1, seed=3).bodies())
    event = next(e for e in events if isinstance(e, Event) and e.resource is Resource.TASK)
    item = build_item(event, now=datetime.now(UTC), stopped_task_ttl_days=7)
    assert store.apply(event, item).outcome is Outcome.APPLIED
    assert handed == [{}]
    assert bodies[0]["Item"] == serialize_item(item)
